/**
 * Evidence bundle of a Kubernetes pod: `<evidence dir>/<namespace>/<action name>/` holding the pod
 * object, its recent events, the kubelet's log files of its containers (`logs/<container>/<n>.log`)
 * and, for every container of the pod with a process on this node, the processes and sockets read
 * from /proc and a tar of its writable layer (`filesystem-changes.tar`, the overlay upperdir: what
 * differs from the image), plus `manifest.json` with each file's SHA-256 and size. Logs and layer
 * are size-capped; a capped file says `truncated: true` in the manifest. Built in a temporary sibling and renamed into
 * place: a bundle is complete or absent, and never overwritten. A bundle left by an earlier run of
 * the same action (same action UID) is reused, so a resumed action does not collect twice.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { processUpperDir } from '../../linux/process-facts.js';
import { MANIFEST_FILE, sealBundle } from '../../linux/evidence.js';
import { assertPidInContainer, containerProcesses, containerSockets } from '../../linux/proc-inspect.js';
import type { EvidenceItem } from '../security-action.js';
import { validateActionId } from '../security-action.js';
import {
  DEFAULT_MAX_LAYER_BYTES,
  DEFAULT_MAX_LOG_BYTES,
  DEFAULT_POD_LOGS_DIR,
  copyPodLogs,
  tarWritableLayer,
} from './container-files.js';

export const POD_MANIFEST_FORMAT = 'containment.pod-evidence/v1';

export interface PodEvidenceFile {
  kind: 'pod' | 'events' | 'processes' | 'sockets' | 'filesystem-changes' | 'logs';
  path: string;
  sha256: string;
  bytes: number;
  /** A size cap was reached: the file holds less than there was (see notes). */
  truncated?: true;
}

export interface PodEvidenceManifest {
  format: typeof POD_MANIFEST_FORMAT;
  actionId: string;
  actionUid: string;
  namespace: string;
  pod: { name: string; uid: string; node?: string };
  node: string;
  createdAt: string;
  files: PodEvidenceFile[];
  /** Set when any file was cut at a size cap. */
  truncated?: true;
  limits?: { maxLayerBytes: number; maxLogBytes: number };
  /** What could not be collected, and why. */
  notes: string[];
}

export interface PodEvidenceBundle {
  dir: string;
  manifest: PodEvidenceManifest;
  manifestSha256: string;
  manifestBytes: number;
  /** True when an earlier run of the same action had already written it. */
  reused: boolean;
}

export interface LocalContainer {
  containerId: string;
  pid: number;
}

export interface PodEvidenceInput {
  evidenceDir: string;
  namespace: string;
  actionName: string;
  actionUid: string;
  node: string;
  pod: { metadata?: { name?: string; uid?: string }; spec?: { nodeName?: string } };
  /** The pod's events, or the reason they could not be read. */
  events: unknown[] | { error: string };
  /** Containers of the pod with a process on this node (empty: none here). */
  containers: LocalContainer[];
  /** The kubelet's pod log directory (default /var/log/pods). */
  podLogsDir?: string;
  /**
   * Where the node's root filesystem is seen (default `/`): the writable layer's host path from
   * mountinfo is read below it.
   */
  hostRoot?: string;
  /** Caps: the writable-layer tar of each container, and the logs of the whole pod. */
  maxLayerBytes?: number;
  maxLogBytes?: number;
  now?: () => Date;
}

export function bundleDir(evidenceDir: string, namespace: string, actionName: string): string {
  return join(resolve(evidenceDir), validateActionId(namespace), validateActionId(actionName));
}

export async function writePodEvidence(input: PodEvidenceInput): Promise<PodEvidenceBundle> {
  const dir = bundleDir(input.evidenceDir, input.namespace, input.actionName);
  const parent = join(dir, '..');
  const existing = await readManifest(dir);
  if (existing) {
    if (existing.manifest.actionUid === input.actionUid) return { dir, ...existing, reused: true };
    throw bundleExists(dir);
  }
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const tmp = await mkdtemp(join(parent, `.partial-${input.actionName}-`));
  try {
    const files: PodEvidenceFile[] = [];
    const notes: string[] = [];
    const add = async (kind: PodEvidenceFile['kind'], path: string, value: unknown): Promise<void> => {
      const text = `${JSON.stringify(value, null, 2)}\n`;
      await writeFile(join(tmp, path), text, { flag: 'wx', mode: 0o600 });
      files.push({ kind, path, sha256: sha256(text), bytes: Buffer.byteLength(text) });
    };
    await add('pod', 'pod.json', input.pod);
    if (Array.isArray(input.events)) await add('events', 'events.json', input.events);
    else notes.push(`events not collected: ${input.events.error}`);
    if (input.containers.length === 0) {
      notes.push(`no process of this pod runs on node ${input.node}: no per-container processes or sockets`);
    }
    const maxLayerBytes = input.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
    const maxLogBytes = input.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
    for (const c of input.containers) {
      const sub = `containers/${c.containerId}`;
      const short = c.containerId.slice(0, 12);
      try {
        await assertPidInContainer(c.pid, c.containerId);
        const processes = await containerProcesses(c.pid);
        const sockets = await containerSockets(c.pid, processes);
        await mkdir(join(tmp, sub), { recursive: true });
        await add('processes', `${sub}/processes.json`, processes);
        await add('sockets', `${sub}/sockets.json`, sockets);
      } catch (e) {
        notes.push(`container ${short}: processes and sockets not collected: ${(e as Error).message}`);
        continue;
      }
      const upper = await processUpperDir(c.pid);
      // The pid may have exited and been reused while mountinfo was read: check it again.
      const still = await assertPidInContainer(c.pid, c.containerId).then(
        () => true,
        () => false,
      );
      if (upper === undefined || !still) {
        notes.push(
          still
            ? `container ${short}: its root is not an overlay with an upperdir (/proc/${c.pid}/mountinfo): no filesystem-changes.tar`
            : `container ${short}: its process exited while its writable layer was located: no filesystem-changes.tar`,
        );
        continue;
      }
      const path = `${sub}/filesystem-changes.tar`;
      let tar: Awaited<ReturnType<typeof tarWritableLayer>>;
      try {
        tar = await tarWritableLayer(join(input.hostRoot ?? '/', upper), join(tmp, path), maxLayerBytes);
      } catch (e) {
        // Nothing unlisted may stay in the bundle.
        await rm(join(tmp, path), { force: true });
        notes.push(`container ${short}: filesystem-changes.tar not written: ${(e as Error).message}`);
        continue;
      }
      notes.push(...tar.notes.map((n) => `container ${short}: ${n}`));
      if (tar.file) {
        const { truncated, ...sum } = tar.file;
        files.push({ kind: 'filesystem-changes', path, ...sum, ...(truncated ? { truncated: true } : {}) });
      }
    }
    const logs = await copyPodLogs({
      podLogsDir: input.podLogsDir ?? DEFAULT_POD_LOGS_DIR,
      podUid: input.pod.metadata?.uid ?? '',
      bundleDir: tmp,
      maxBytes: maxLogBytes,
    }).catch(async (e: unknown) => {
      await rm(join(tmp, 'logs'), { recursive: true, force: true });
      return { files: [], notes: [`logs not collected: ${(e as Error).message}`] };
    });
    notes.push(...logs.notes);
    for (const l of logs.files) {
      files.push({
        kind: 'logs',
        path: l.path,
        sha256: l.sha256,
        bytes: l.bytes,
        ...(l.truncated ? { truncated: true } : {}),
      });
    }
    const manifest: PodEvidenceManifest = {
      format: POD_MANIFEST_FORMAT,
      actionId: input.actionName,
      actionUid: input.actionUid,
      namespace: input.namespace,
      pod: {
        name: input.pod.metadata?.name ?? '',
        uid: input.pod.metadata?.uid ?? '',
        ...(input.pod.spec?.nodeName === undefined ? {} : { node: input.pod.spec.nodeName }),
      },
      node: input.node,
      createdAt: (input.now?.() ?? new Date()).toISOString(),
      files,
      ...(files.some((f) => f.truncated) ? { truncated: true as const } : {}),
      limits: { maxLayerBytes, maxLogBytes },
      notes,
    };
    return {
      dir,
      manifest,
      ...(await sealBundle(tmp, dir, manifest)),
      reused: false,
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The bundle an earlier run of this action wrote, if any (a bundle of another action: EVIDENCE_EXISTS). */
export async function existingPodEvidence(
  evidenceDir: string,
  namespace: string,
  actionName: string,
  actionUid: string,
): Promise<PodEvidenceBundle | undefined> {
  const dir = bundleDir(evidenceDir, namespace, actionName);
  const existing = await readManifest(dir);
  if (!existing) return undefined;
  if (existing.manifest.actionUid !== actionUid) throw bundleExists(dir);
  return { dir, ...existing, reused: true };
}

/** The bundle as SecurityAction status evidence: the manifest first, then every file. */
export function podEvidenceItems(bundle: PodEvidenceBundle): EvidenceItem[] {
  const uri = (path: string): string => pathToFileURL(join(bundle.dir, path)).href;
  return [
    { kind: 'manifest', uri: uri(MANIFEST_FILE), sha256: bundle.manifestSha256, bytes: bundle.manifestBytes },
    ...bundle.manifest.files.map((f) => ({
      kind: f.kind,
      uri: uri(f.path),
      sha256: f.sha256,
      bytes: f.bytes,
    })),
  ];
}

async function readManifest(dir: string): Promise<Omit<PodEvidenceBundle, 'dir' | 'reused'> | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      // A directory without a manifest is not ours to replace either.
      const present = await readFile(dir).catch((err: NodeJS.ErrnoException) => err.code);
      if (present === 'EISDIR') throw bundleExists(dir);
      return undefined;
    }
    throw e;
  }
  const manifest = JSON.parse(text) as PodEvidenceManifest;
  return { manifest, manifestSha256: sha256(text), manifestBytes: Buffer.byteLength(text) };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function bundleExists(dir: string): ContainmentError {
  return new ContainmentError(
    ErrorCodes.EVIDENCE_EXISTS,
    `an evidence bundle of another action already exists at ${dir}; bundles are never overwritten`,
  );
}
