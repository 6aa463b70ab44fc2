/**
 * A one-layer OCI image archive made from a directory, for a test node whose container runtime
 * cannot pull (no registry is reachable here): `ctr images import` reads it like any `docker save`
 * or `skopeo copy oci-archive:` output. The layer is an uncompressed tar of the directory (the
 * system `tar`, owners kept as root), the layout is the OCI image-layout spec's
 * (oci-layout, index.json, blobs/sha256/…), and `io.containerd.image.name` names the image.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageConfig {
  /** The image's full name as the runtime will know it, e.g. `localhost/containment:test`. */
  name: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** sha256 of a file, streamed through `sha256sum` so a layer of hundreds of MB is never held in memory. */
function fileDigest(path: string): string {
  const r = spawnSync('sha256sum', [path], { encoding: 'utf8' });
  const hex = /^([0-9a-f]{64})\s/.exec(r.stdout)?.[1];
  if (r.status !== 0 || !hex) throw new Error(`sha256sum ${path} failed: ${r.stderr}`);
  return `sha256:${hex}`;
}

/**
 * Writes `<out>` (a tar of an OCI image layout) holding `rootfs` as the image's only layer.
 * Returns the manifest's digest.
 */
export function writeOciArchive(rootfs: string, config: ImageConfig, out: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'containment-oci-'));
  try {
    const blobs = join(dir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const layerTmp = join(dir, 'layer.tar');
    // Sorted names and fixed owners/times: the same directory gives the same layer digest.
    run('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-C',
      rootfs,
      '-cf',
      layerTmp,
      '.',
    ]);
    const layerDigest = fileDigest(layerTmp);
    const layerSize = statSync(layerTmp).size;
    renameSync(layerTmp, join(blobs, layerDigest.slice('sha256:'.length)));
    const blob = (json: unknown): { digest: string; size: number } => {
      const bytes = Buffer.from(JSON.stringify(json));
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      writeFileSync(join(blobs, digest.slice('sha256:'.length)), bytes);
      return { digest, size: bytes.length };
    };
    const imageConfig = blob({
      architecture: 'amd64',
      os: 'linux',
      config: {
        ...(config.entrypoint ? { Entrypoint: config.entrypoint } : {}),
        ...(config.cmd ? { Cmd: config.cmd } : {}),
        Env: config.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ...(config.workingDir ? { WorkingDir: config.workingDir } : {}),
      },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    });
    const manifest = blob({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...imageConfig },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layerSize }],
    });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: {
              'io.containerd.image.name': config.name,
              'org.opencontainers.image.ref.name': config.name.slice(config.name.lastIndexOf(':') + 1),
            },
          },
        ],
      }),
    );
    run('tar', ['-C', dir, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
    return manifest.digest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
