/**
 * bench:loop's agent-only process: the Agent with the engine and the scanner client and nothing
 * else, so its CPU and memory can be told apart from what the whole CLI loads (`containment
 * agent` imports every command module). Args: <scanner URL> <label key=value> <rescan ms>;
 * the token comes in CONTAINMENT_TOKEN. Runs until SIGTERM.
 */
import pino from 'pino';
import { Agent } from '../src/agent/agent.js';
import { ScannerClient } from '../src/clients/scanner-client.js';
import { DockerEngine } from '../src/engine/docker/docker-engine.js';
import { findEngineSocket } from '../src/engine/socket.js';

const [server = '', label = '', rescan = '10000'] = process.argv.slice(2);
const socket = findEngineSocket(undefined, process.env);
if (socket === undefined) throw new Error('no engine socket');
const [key = '', value = ''] = label.split('=');
const agent = new Agent({
  engine: new DockerEngine(socket),
  sink: new ScannerClient({ server, token: process.env.CONTAINMENT_TOKEN ?? '' }),
  logger: pino({ level: 'warn' }, pino.destination(2)),
  rescanIntervalMs: Number(rescan),
  labels: { [key]: value },
});
await agent.start();
process.once('SIGTERM', () => void agent.stop().then(() => process.exit(0)));
