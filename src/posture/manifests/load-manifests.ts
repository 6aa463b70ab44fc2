/**
 * Reads Kubernetes manifests from files and directories: multi-document YAML (Helm's rendered
 * output included, whose `# Source:` comments name each document's template), JSON, and `List`
 * kinds. Every document must be a Kubernetes object; anything else is refused with the file and
 * document number, before any evaluation (nothing accepted then dropped).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { PostureInput } from '../types.js';

const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/i;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function filesOf(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `manifest path ${path} does not exist`);
  }
  if (stat.isFile()) return [path];
  if (!stat.isDirectory())
    throw new ContainmentError(ErrorCodes.TARGET_UNSUPPORTED, `${path} is neither a file nor a directory`);
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && MANIFEST_EXTENSIONS.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function invalid(where: string, why: string): ContainmentError {
  return new ContainmentError(ErrorCodes.MANIFEST_INVALID, `${where}: ${why}`);
}

/** Adds one document (flattening `List` kinds) to `out`, or throws MANIFEST_INVALID. */
function addObject(doc: unknown, where: string, out: PostureInput[]): void {
  if (!isObj(doc))
    throw invalid(where, 'not a Kubernetes object (expected a mapping with apiVersion and kind)');
  if (
    typeof doc.kind !== 'string' ||
    doc.kind === '' ||
    typeof doc.apiVersion !== 'string' ||
    doc.apiVersion === ''
  ) {
    throw invalid(where, 'a Kubernetes object needs string apiVersion and kind');
  }
  if (doc.kind === 'List' || (doc.kind.endsWith('List') && Array.isArray(doc.items))) {
    if (!Array.isArray(doc.items)) throw invalid(where, `${doc.kind} without an items array`);
    doc.items.forEach((item, i) => addObject(item, `${where} items[${i}]`, out));
    return;
  }
  if (!isObj(doc.metadata) || typeof doc.metadata.name !== 'string' || doc.metadata.name === '') {
    if (!(isObj(doc.metadata) && typeof doc.metadata.generateName === 'string'))
      throw invalid(where, `${doc.kind} without metadata.name`);
  }
  out.push({ object: doc, source: where });
}

/** Parses one file's text. `file` names it in messages and sources. */
export function parseManifests(text: string, file: string): PostureInput[] {
  const out: PostureInput[] = [];
  if (/\.json$/i.test(file)) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw invalid(file, `not valid JSON (${(e as Error).message})`);
    }
    addObject(doc, file, out);
    return out;
  }
  // Split on document markers ourselves, so each document keeps its number and Helm source.
  const chunks = text.split(/^---[ \t]*(?:#.*)?$/m);
  chunks.forEach((chunk, i) => {
    const helmSource = /^# Source: (.+)$/m.exec(chunk)?.[1]?.trim();
    const where = `${file}#${i}${helmSource ? ` (${helmSource})` : ''}`;
    let doc: unknown;
    try {
      // CORE_SCHEMA: no timestamps or other implicit types that would change values.
      doc = yaml.load(chunk, { schema: yaml.CORE_SCHEMA, filename: file });
    } catch (e) {
      throw invalid(where, `not valid YAML (${((e as Error).message.split('\n')[0] ?? '').trim()})`);
    }
    if (doc === undefined || doc === null) return; // empty document (comments only)
    addObject(doc, where, out);
  });
  return out;
}

/** Reads every manifest under the given files and directories. */
export function loadManifests(paths: readonly string[]): PostureInput[] {
  const out: PostureInput[] = [];
  for (const path of paths) {
    const files = filesOf(path);
    if (files.length === 0)
      throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `no .yaml, .yml or .json files under ${path}`);
    for (const file of files) {
      const size = statSync(file).size;
      if (size > MAX_FILE_BYTES)
        throw new ContainmentError(
          ErrorCodes.FILE_TOO_LARGE,
          `${file} is ${size} bytes; manifests are limited to ${MAX_FILE_BYTES}`,
        );
      out.push(...parseManifests(readFileSync(file, 'utf8'), file));
    }
  }
  return out;
}
