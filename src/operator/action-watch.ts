/**
 * List-then-watch of SecurityActions matching one label selector, kept alive for as long as the
 * operator runs. Why not client-node's ListWatch: in 1.4.0 it stops for good on any error other
 * than 410 (a dropped connection ends the informer), and it keeps every object in memory.
 * Here: a paged list, then a watch from the list's resourceVersion; a watch the server closes
 * normally resumes from the last resourceVersion seen; `410 Gone` (an ERROR event or an HTTP
 * status) and any connection failure lead to a fresh list (with backoff for failures), so no
 * event is lost across reconnects. Objects are handed on, not cached.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiMessage, apiStatus } from '../kubernetes/api-errors.js';
import type { SecurityActionApi, SecurityActionObject } from '../kubernetes/security-action-api.js';
import { WATCH_PATH } from '../kubernetes/security-action-api.js';

export type WatchEventType = 'LISTED' | 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ActionWatchOptions {
  kubeConfig: k8s.KubeConfig;
  api: SecurityActionApi;
  labelSelector: string;
  onEvent: (type: WatchEventType, action: SecurityActionObject) => void;
  logger: Logger;
  /** Start by watching from this resourceVersion instead of listing (tests: a too-old one). */
  resourceVersion?: string;
  pageSize?: number;
  /** Asks the server to end each watch after this long, so a silently dead connection is noticed. */
  watchTimeoutSeconds?: number;
  maxBackoffMs?: number;
}

export interface ActionWatchStats {
  lists: number;
  watches: number;
  events: number;
  /** 410 Gone answers (ERROR events or HTTP status) that forced a relist. */
  gone: number;
  /** Connection or server failures that forced a relist after a backoff. */
  failures: number;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

export class ActionWatch {
  readonly stats: ActionWatchStats = { lists: 0, watches: 0, events: 0, gone: 0, failures: 0 };
  private readonly watch: k8s.Watch;
  private readonly stopper = new AbortController();
  private current: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resourceVersion: string | undefined;
  private readonly synced: Promise<void>;
  private markSynced!: () => void;

  constructor(private readonly options: ActionWatchOptions) {
    this.watch = new k8s.Watch(options.kubeConfig);
    this.resourceVersion = options.resourceVersion;
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves once the first list has been handed on (or the first watch began, when given an RV). */
  whenSynced(): Promise<void> {
    return this.synced;
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.current?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { logger, labelSelector } = this.options;
    let failures = 0;
    while (!this.stopper.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) this.resourceVersion = await this.list();
        const outcome = await this.watchOnce(this.resourceVersion);
        failures = 0;
        if (outcome === 'gone') {
          this.stats.gone++;
          logger.info({ labelSelector }, 'watch: resourceVersion too old (410 Gone), relisting');
          this.resourceVersion = undefined;
        }
      } catch (e) {
        if (this.stopper.signal.aborted) break;
        if (apiStatus(e) === 410) {
          this.stats.gone++;
          logger.info({ labelSelector }, 'watch: 410 Gone, relisting');
          this.resourceVersion = undefined;
          continue;
        }
        this.stats.failures++;
        failures++;
        const delay = Math.min(this.options.maxBackoffMs ?? 5000, 100 * 2 ** Math.min(failures - 1, 10));
        logger.warn(
          { labelSelector, err: apiMessage(e), retryInMs: delay },
          'watch: failed, relisting after backoff',
        );
        this.resourceVersion = undefined;
        await sleep(delay, this.stopper.signal);
      }
    }
  }

  private async list(): Promise<string> {
    const { api, labelSelector, onEvent } = this.options;
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      // Every page is of one snapshot (an expired continue token is a 410: relist).
      const page = await api.listPage(labelSelector, this.options.pageSize ?? 500, cont);
      resourceVersion ??= page.resourceVersion;
      for (const item of page.items) {
        if (this.stopper.signal.aborted) return resourceVersion;
        onEvent('LISTED', item);
      }
      cont = page.continue;
    } while (cont !== undefined);
    this.stats.lists++;
    this.markSynced();
    return resourceVersion;
  }

  /** One watch request; resolves when it ends normally ('closed') or with 410 ('gone'). */
  private watchOnce(resourceVersion: string): Promise<'closed' | 'gone'> {
    const { labelSelector, onEvent } = this.options;
    return new Promise((resolve, reject) => {
      let gone = false;
      let failed: unknown;
      this.stats.watches++;
      this.watch
        .watch(
          WATCH_PATH,
          {
            resourceVersion,
            labelSelector,
            allowWatchBookmarks: true,
            timeoutSeconds: this.options.watchTimeoutSeconds ?? 300,
          },
          (type: string, object: unknown) => {
            if (type === 'ERROR') {
              const status = object as { code?: number; message?: string };
              if (status.code === 410) gone = true;
              else failed = Object.assign(new Error(status.message ?? 'watch error'), { code: status.code });
              return;
            }
            const action = object as SecurityActionObject;
            if (action.metadata?.resourceVersion) this.resourceVersion = action.metadata.resourceVersion;
            if (type === 'BOOKMARK') return;
            this.stats.events++;
            onEvent(type as WatchEventType, action);
          },
          (err: unknown) => {
            this.current = undefined;
            if (gone) resolve('gone');
            else if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else if (failed) reject(failed as Error);
            else resolve('closed');
          },
        )
        .then((controller) => {
          this.current = controller;
          this.markSynced();
          if (this.stopper.signal.aborted) controller.abort();
        })
        .catch(reject);
    });
  }
}
