/**
 * Bundles a policy with esbuild for a platform other than this project's runtime: one file holding
 * the policy, its SDK module (sdk/policy-sdk.ts) bound to the SDK host (bundled-host.ts), and an
 * entry, one folder per platform —
 * - `openwhisk`: a plain script declaring a global `main(params)`, as Apache OpenWhisk's Node.js
 *   runtime loads non-binary action code (it evaluates the code and calls `main`);
 * - `openwhisk-notices`: the security-notices web action (no policy in it);
 * - `knative`: a CommonJS program, the CloudEvents HTTP handler a Knative Service runs.
 * As with compilePolicy, a policy may import only `@containment/policy-sdk`: nothing else is read
 * from the host while bundling it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Message, Plugin } from 'esbuild';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { isValidName } from '../entities.js';
import type { EnforcementScopeMode } from '../host/enforcement-scope.js';
import { SDK_MODULE } from '../sandbox/sdk-methods.js';

export type BundleTarget = 'openwhisk' | 'openwhisk-notices' | 'knative';

export interface PolicySource {
  /** Shown in compile errors (`file:line:column: message`). */
  filename: string;
  contents: string;
  loader: 'ts' | 'js';
}

/** Reads a policy file; TARGET_NOT_FOUND / USAGE for a missing file or an unknown extension. */
export function readPolicy(file: string): PolicySource {
  const ext = extname(file).toLowerCase();
  const loader = ext === '.ts' || ext === '.mts' ? 'ts' : ext === '.js' || ext === '.mjs' ? 'js' : undefined;
  if (loader === undefined)
    throw new ContainmentError(ErrorCodes.USAGE, `${file}: a policy is a .ts, .mts, .js or .mjs file`);
  let contents: string;
  try {
    contents = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.TARGET_NOT_FOUND,
      `${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  return { filename: file, contents, loader };
}

export function policyName(file: string, given?: string): string {
  const name = given ?? basename(file).replace(/\.[^.]+$/, '');
  if (!isValidName(name))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `"${name}" is not a valid action name (letters, digits, _ @ . - and spaces)`,
    );
  return name;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const POLICY_MODULE = 'containment:policy';
const POLICY_NAMESPACE = 'containment-policy';
/** The global the OpenWhisk script's exports land on before `main` hands over to them. */
const BUNDLE_GLOBAL = '__containmentAction';

/** A module relative to this folder, as .ts in a checkout (tsx) or .js once built. */
function sibling(name: string): string {
  for (const ext of ['.ts', '.js']) {
    const file = join(HERE, `${name}${ext}`);
    if (existsSync(file)) return file;
  }
  throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `missing bundle part ${name} in ${HERE}`);
}

const ENTRIES: Record<BundleTarget, string> = {
  openwhisk: 'openwhisk/action-entry',
  'openwhisk-notices': 'openwhisk/notices-entry',
  knative: 'knative/handler-entry',
};

function policyPlugin(source: PolicySource | undefined): Plugin {
  // The I/O-free SDK module; the entry binds it to the host (bundled-host.ts).
  const sdk = sibling('../sdk/policy-sdk');
  return {
    name: 'containment-policy',
    setup(b) {
      b.onResolve({ filter: /^containment:policy$/ }, () => ({
        path: POLICY_MODULE,
        namespace: POLICY_NAMESPACE,
      }));
      b.onLoad({ filter: /.*/, namespace: POLICY_NAMESPACE }, () =>
        source === undefined
          ? { errors: [{ text: 'no policy given' }] }
          : { contents: source.contents, loader: source.loader },
      );
      // What the policy imports: the SDK, and nothing else.
      b.onResolve({ filter: /.*/, namespace: POLICY_NAMESPACE }, (args) =>
        args.path === SDK_MODULE
          ? { path: sdk }
          : {
              errors: [
                { text: `import of "${args.path}" is not allowed; a policy may import only ${SDK_MODULE}` },
              ],
            },
      );
    },
  };
}

function describe(m: Message, source: PolicySource | undefined): string {
  const file = m.location?.file.endsWith(POLICY_MODULE)
    ? (source?.filename ?? m.location.file)
    : m.location?.file;
  const where = m.location ? `${file}:${m.location.line}:${m.location.column}: ` : '';
  return `${where}${m.text}`.split('\n', 1)[0] ?? m.text;
}

/**
 * The bundled JavaScript for `target`; POLICY_COMPILE_FAILED says where a policy is wrong. The
 * enforcement scope is compiled in, so no parameter of an activation can widen it.
 */
export async function bundlePolicy(
  target: BundleTarget,
  source: PolicySource | undefined,
  policyName: string,
  enforcementScope: EnforcementScopeMode = 'event',
): Promise<string> {
  const openwhisk = target !== 'knative';
  let code: string | undefined;
  try {
    const result = await build({
      entryPoints: [sibling(ENTRIES[target])],
      bundle: true,
      write: false,
      platform: 'node',
      target: 'node20',
      format: openwhisk ? 'iife' : 'cjs',
      ...(openwhisk ? { globalName: BUNDLE_GLOBAL } : {}),
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      define: {
        __CONTAINMENT_POLICY_NAME__: JSON.stringify(policyName),
        __CONTAINMENT_ENFORCEMENT_SCOPE__: JSON.stringify(enforcementScope),
      },
      plugins: [policyPlugin(source)],
    });
    code = result.outputFiles[0]?.text;
  } catch (e) {
    const first = (e as { errors?: Message[] }).errors?.[0];
    throw new ContainmentError(
      ErrorCodes.POLICY_COMPILE_FAILED,
      first ? describe(first, source) : String(e),
      {
        cause: e,
      },
    );
  }
  if (code === undefined)
    throw new ContainmentError(ErrorCodes.POLICY_COMPILE_FAILED, 'esbuild produced no output');
  if (!openwhisk) return code;
  // OpenWhisk looks for a function named main after evaluating the code.
  return `${code}\nfunction main(params) { return ${BUNDLE_GLOBAL}.main(params); }\n`;
}
