#!/usr/bin/env node
// `npm run build`: compiles src/ into dist/ and stamps dist/ with the sources it was built from
// (bin/source-stamp.mjs). The stamp is taken before compiling, so an edit made during the build
// leaves dist/ stale rather than wrongly current, and written last, so a half-built dist/ is never run.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STAMP_FILE, sourceStamp, writeStamp } from '../bin/source-stamp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, STAMP_FILE), { force: true });
const stamp = sourceStamp(root);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
// Files the compiled code reads beside itself, which tsc does not copy:
// every non-TypeScript file of src/ outside test fixtures.
for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
  const path = join(entry.parentPath, entry.name);
  if (entry.isFile() && !entry.name.endsWith('.ts') && !/[/\\]fixtures[/\\]/.test(path))
    cpSync(path, join(root, 'dist', path.slice(join(root, 'src').length)));
}
// The runtime sensor's native engine (dist/native/containment-sensor) where its tools are here:
// Go, clang and bpftool, and the kernel's BTF to compile against. Without them the agent says so
// at start and polls /proc instead (src/runtime/sensor/preflight.ts).
const goPath = [process.env.PATH, '/usr/local/go/bin'].filter(Boolean).join(':');
const has = (cmd) =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH: goPath } })
    .status === 0;
if (['go', 'clang', 'bpftool'].every(has) && existsSync('/sys/kernel/btf/vmlinux')) {
  const s = spawnSync('sh', [join(root, 'native', 'sensor', 'build.sh')], {
    stdio: 'inherit',
    env: { ...process.env, PATH: goPath },
  });
  if (s.status !== 0) process.exit(s.status ?? 1);
} else {
  console.warn(
    'build: the native runtime sensor is not built (needs go, clang, bpftool and /sys/kernel/btf/vmlinux)',
  );
}
// The dashboard's static assets (web/) into dist/web/, served by the scanner at /ui/.
const { build } = await import('vite');
await build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
writeStamp(root, stamp);
