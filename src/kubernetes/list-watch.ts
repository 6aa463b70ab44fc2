/**
 * The one list-then-watch of Kubernetes objects, used by the operator (SecurityActions of its
 * node), the cluster agent (this node's pods) and the policy SDK (one action until it is final).
 *
 * Built on client-node 2.x's `ListWatch`, which now does the list, the watch from the list's
 * resourceVersion, the relist on `410 Gone` (HTTP status or ERROR event), the reconnect from the
 * last resourceVersion after a normal close or its own 30 s inactivity timeout (with a 1–30 s
 * backoff), and a cache that turns a relist into add/update/delete callbacks.
 *
 * What 2.0.1 still lacks, and this file adds as a thin loop around it (read in
 * node_modules/@kubernetes/client-node/dist/cache.js, `doneHandler`):
 * - On any other failure — the list fails, the watch answers 403/500, the connection is refused
 *   or reset — it calls its error callbacks and stops for good. Here such a failure is counted,
 *   logged, and followed after a backoff by a fresh list (a new `ListWatch`; objects the new list
 *   no longer has are reported DELETED against the previous one's cache), unless the caller asked
 *   to stop on errors (the SDK's wait, the agent's first list: their callers report them).
 * - Its list function is called once per list: paging (`limit`/`continue`) happens in ours.
 * - It cannot start watching from a given resourceVersion without listing (tests start from a
 *   too-old one to provoke the 410): the first list then answers with that version and no items.
 * - It does not ask for bookmarks: asked for here, so a quiet watch keeps a fresh resourceVersion.
 */
import * as k8s from '@kubernetes/client-node';
import { apiMessage, apiStatus } from './api-errors.js';

export type ListWatchEventType = 'LISTED' | 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ListPage<T> {
  items: T[];
  /** `continue` in raw JSON (custom objects); `_continue` in client-node's typed lists. */
  metadata?: { resourceVersion?: string; continue?: string; _continue?: string };
}

export interface ListWatchOptions<T extends k8s.KubernetesObject> {
  kubeConfig: k8s.KubeConfig;
  /** The watch path, e.g. `/api/v1/pods`. */
  path: string;
  /** One page of the list, with the same selectors as the watch. */
  listPage: (page: { limit: number; continue?: string }) => Promise<ListPage<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  onEvent: (type: ListWatchEventType, object: T) => void;
  logger: ListWatchLogger;
  /** What the logs call this watch (default: the path and selectors). */
  name?: string;
  /** Start by watching from this resourceVersion instead of listing (tests: a too-old one). */
  resourceVersion?: string;
  pageSize?: number;
  /** Backoff after a failure: doubles from `minBackoffMs` up to `maxBackoffMs` (default 100 ms, 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * `never` (default): every failure is retried. `before-sync`: a failure before the first list
   * stops it and rejects `start()`. `always`: any failure stops it and goes to `onStopped`.
   */
  stopOnError?: 'never' | 'before-sync' | 'always';
  /** Called once when a failure stopped it (`stopOnError`), never after `stop()`. */
  onStopped?: (error: unknown) => void;
  /**
   * What is kept of each object, in ListWatch's cache and for `onEvent` (default: all of it).
   * The cache holds every object the selector matches: the operator keeps only the name and
   * phase of finished actions, which it never acts on again.
   */
  slim?: (object: T) => T;
}

export interface ListWatchStats {
  lists: number;
  watches: number;
  events: number;
  /** 410 Gone answers (ERROR events or HTTP status) that forced a relist. */
  gone: number;
  /** Failures ListWatch gives up on (connection, server, list) that forced a relist after a backoff. */
  failures: number;
}

const isGone = (e: unknown): boolean => apiStatus(e) === 410;

export class ListWatcher<T extends k8s.KubernetesObject> {
  readonly stats: ListWatchStats = { lists: 0, watches: 0, events: 0, gone: 0, failures: 0 };
  private informer: k8s.ListWatch<T> | undefined;
  /** What the caller was last told exists, while no ListWatch's cache holds it (between lists). */
  private previous: readonly T[] = [];
  /** The ListWatch whose list succeeded: only its cache replaces `previous` when it fails. */
  private listedBy: k8s.ListWatch<T> | undefined;
  /** True from a list's answer until its items are handed on (ListWatch does so before watching). */
  private listing = false;
  private startAt: string | undefined;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private synced = false;
  private readonly syncedPromise: Promise<void>;
  private settleSync!: (error?: unknown) => void;

  constructor(private readonly options: ListWatchOptions<T>) {
    this.startAt = options.resourceVersion;
    this.backoffMs = options.minBackoffMs ?? 100;
    this.syncedPromise = new Promise((resolve, reject) => {
      this.settleSync = (error) => (error === undefined ? resolve() : reject(error));
    });
    // A caller that only awaits start() must not see an unhandled rejection here.
    this.syncedPromise.catch(() => undefined);
  }

  /** Starts; resolves after the first list (or the first watch, when given a resourceVersion). */
  start(): Promise<void> {
    if (!this.informer && !this.stopped) void this.begin();
    return this.syncedPromise;
  }

  whenSynced(): Promise<void> {
    return this.syncedPromise;
  }

  /** The objects of the current list and watch (ListWatch's cache). */
  list(): readonly T[] {
    return this.informer?.list() ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.informer?.stop();
  }

  private get name(): string {
    const { name, path, labelSelector, fieldSelector } = this.options;
    return name ?? [path, labelSelector, fieldSelector].filter(Boolean).join(' ');
  }

  private async begin(): Promise<void> {
    const informer = new k8s.ListWatch<T>(
      this.options.path,
      new CountingWatch(this.options.kubeConfig, this),
      () => this.listAll(),
      false,
      this.options.labelSelector,
      this.options.fieldSelector,
    );
    this.informer = informer;
    informer.on('add', (o) => this.emit(this.listing ? 'LISTED' : 'ADDED', o));
    informer.on('update', (o) => this.emit(this.listing ? 'LISTED' : 'MODIFIED', o));
    informer.on('delete', (o) => this.emit('DELETED', o));
    informer.on('error', (e: unknown) => this.failed(informer, e));
    await informer.start();
  }

  private emit(type: ListWatchEventType, object: T): void {
    if (this.stopped) return;
    if (type !== 'LISTED') this.stats.events++;
    this.options.onEvent(type, object);
  }

  private async listAll(): Promise<k8s.KubernetesListObject<T>> {
    if (this.startAt !== undefined) {
      // Watch from the given version: an empty "list" at it (see the file comment).
      const resourceVersion = this.startAt;
      this.startAt = undefined;
      this.listedBy = this.informer;
      return { items: [], metadata: { resourceVersion } };
    }
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      // Every page is of one snapshot (an expired continue token is a 410: relist).
      const page = await this.options.listPage({
        limit: this.options.pageSize ?? 500,
        ...(cont === undefined ? {} : { continue: cont }),
      });
      resourceVersion ??= page.metadata?.resourceVersion;
      const { slim } = this.options;
      items.push(...(slim ? page.items.map(slim) : page.items));
      cont = page.metadata?.continue || page.metadata?._continue || undefined;
    } while (cont !== undefined);
    this.stats.lists++;
    this.backoffMs = this.options.minBackoffMs ?? 100;
    this.listing = true;
    // Objects the last list or watch had and this list has not were deleted meanwhile.
    const now = new Set(items.map(keyOf));
    const gone = this.previous.filter((o) => !now.has(keyOf(o)));
    this.previous = [];
    this.listedBy = this.informer;
    for (const o of gone) this.emit('DELETED', o);
    return { items, metadata: { resourceVersion: resourceVersion ?? '' } };
  }

  /** Called by CountingWatch when ListWatch opens a watch (its list items are handed on by then). */
  watching(): void {
    this.listing = false;
    this.stats.watches++;
    if (!this.synced) {
      this.synced = true;
      this.settleSync();
    }
  }

  slimmed(object: T): T {
    return this.options.slim ? this.options.slim(object) : object;
  }

  gone(): void {
    this.stats.gone++;
    this.options.logger.info({ watch: this.name }, 'watch: resourceVersion too old (410 Gone), relisting');
  }

  /** ListWatch stopped for good on `error`: back off, then list afresh with a new one. */
  private failed(informer: k8s.ListWatch<T>, e: unknown): void {
    if (this.stopped || informer !== this.informer) return;
    this.listing = false;
    this.stats.failures++;
    const mode = this.options.stopOnError ?? 'never';
    if (mode === 'always' || (mode === 'before-sync' && !this.synced)) {
      this.stopped = true;
      void informer.stop();
      if (!this.synced) this.settleSync(e);
      this.options.onStopped?.(e);
      return;
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(delay * 2, this.options.maxBackoffMs ?? 5000);
    this.options.logger.warn(
      { watch: this.name, err: apiMessage(e), retryInMs: delay },
      'watch: failed, relisting after backoff',
    );
    // A ListWatch whose list failed has an empty cache: what the caller knows is still `previous`.
    if (this.listedBy === informer) this.previous = informer.list();
    void informer.stop();
    this.informer = undefined;
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) void this.begin();
    }, delay);
  }
}

/** client-node's Watch, asking for bookmarks and telling the ListWatcher what happens. */
class CountingWatch<T extends k8s.KubernetesObject> extends k8s.Watch {
  constructor(
    kubeConfig: k8s.KubeConfig,
    private readonly owner: ListWatcher<T>,
  ) {
    super(kubeConfig);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.owner.watching();
    return super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true },
      (phase, object, raw) => {
        if (phase === 'ERROR' && (object as { code?: number }).code === 410) this.owner.gone();
        const kept = phase === 'ERROR' || phase === 'BOOKMARK' ? object : this.owner.slimmed(object as T);
        callback(phase, kept, raw);
      },
      (err) => {
        if (isGone(err)) this.owner.gone();
        done(err);
      },
    );
  }
}

function keyOf(o: k8s.KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
