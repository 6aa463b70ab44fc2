/**
 * Discovery through the container engine (Podman or Docker API): the list API, the event stream,
 * and inspect. Infra (pause) containers and containers the label selector excludes are ignored.
 */
import type { ContainerEngine, ContainerInfo, WorkloadFacts } from '../engine/container-engine.js';
import { selectedBy } from '../engine/managed-set.js';
import { ErrorCodes, isContainmentError } from '../errors.js';
import type {
  CgroupContainer,
  Identification,
  Resolution,
  WorkloadDiscovery,
  WorkloadEvent,
} from './discovery.js';
import { workloadIdentity } from './workload-identity.js';

/** Lifecycle events after which a container has no process to scan any more. */
const ENDED = new Set(['die', 'stop', 'kill', 'destroy', 'remove', 'died']);
const REMOVED = new Set(['destroy', 'remove']);

export interface EngineDiscoveryOptions {
  engine: ContainerEngine;
  place: { cluster: string; node: string };
  /** Only containers carrying all these labels (default: every container). */
  labels?: Record<string, string>;
}

export class EngineDiscovery implements WorkloadDiscovery {
  private readonly engine: ContainerEngine;
  /** Podman pod, infra flag, image digest: fixed for a container's life, asked once. */
  private readonly facts = new Map<string, WorkloadFacts>();

  constructor(private readonly options: EngineDiscoveryOptions) {
    this.engine = options.engine;
  }

  get endpoint(): string {
    return this.engine.endpoint;
  }

  async start(): Promise<void> {
    await this.engine.ping();
  }

  async running(): Promise<string[]> {
    return (await this.engine.list()).filter((c) => c.running && this.selected(c)).map((c) => c.id);
  }

  async *events(signal: AbortSignal): AsyncIterable<WorkloadEvent> {
    for await (const event of this.engine.events(signal)) {
      if (event.action === 'start') yield { kind: 'started', id: event.id };
      else if (ENDED.has(event.action))
        yield { kind: REMOVED.has(event.action) ? 'removed' : 'ended', id: event.id };
    }
  }

  async resolve(id: string): Promise<Resolution> {
    let info: ContainerInfo;
    try {
      info = await this.engine.inspect(id);
      if (!info.running || !info.pid) return 'gone';
      if (!this.selected(info)) return 'ignore';
      let facts = this.facts.get(id);
      if (!facts) {
        facts = await this.engine.workloadFacts(id);
        this.facts.set(id, facts);
      }
      if (facts.infra) return 'ignore';
      return {
        id: info.id,
        name: info.name,
        pid: info.pid,
        ...(info.user === undefined ? {} : { user: info.user }),
        ...(info.upperDir === undefined ? {} : { upperDir: info.upperDir }),
        identity: workloadIdentity(info, facts, this.options.place),
      };
    } catch (e) {
      if (isContainmentError(e) && e.code === ErrorCodes.CONTAINER_NOT_FOUND) return 'gone';
      throw e;
    }
  }

  async identify(ref: CgroupContainer): Promise<Identification> {
    const r = await this.resolve(ref.containerId);
    return typeof r === 'string' ? r : r.identity;
  }

  forget(id: string): void {
    this.facts.delete(id);
  }

  async close(): Promise<void> {}

  private selected(c: Pick<ContainerInfo, 'labels'>): boolean {
    return selectedBy(this.options.labels, c);
  }
}
