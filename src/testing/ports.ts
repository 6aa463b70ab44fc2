/**
 * A base port for a server that listens on several consecutive ports (`containment up`: port,
 * +1, +2). Ports from the kernel's ephemeral range (32768–60999 here) can be taken between the
 * check and the listen by any outgoing connection's source port, so the base is drawn below it,
 * and every port of the run is checked free on loopback.
 */
import { createServer } from 'node:net';

const LOW = 20_000;
const HIGH = 32_000;

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function freePortRun(count = 3): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await isFree(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${LOW} and ${HIGH}`);
}
