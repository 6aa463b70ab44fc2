/**
 * Compiles a policy (JS or TS, ES module syntax) into the one script the sandbox evaluates. The script
 * defines a global `__policy` holding the module's exports; the sandbox calls `main` (or the default
 * export). The only import allowed is the policy SDK, which becomes the `__sdk` global the sandbox injects:
 * everything else is refused here, so bundling never reads a file from the host.
 */
import { build, transform, type Message, type Plugin } from 'esbuild';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { SDK_EXPORTS, SDK_MODULE } from './sdk-methods.js';

export interface CompileOptions {
  /** Shown in compile errors and stack traces. */
  filename: string;
  loader: 'ts' | 'js';
}

const SDK_NAMESPACE = 'containment-policy-sdk';
/** The global the compiled script assigns the policy module's exports to (read by the sandbox harness). */
export const POLICY_GLOBAL = '__policy';

const sdkShim = [
  'const sdk = globalThis.__sdk;',
  ...SDK_EXPORTS.map((name) => `export const ${name} = sdk.${name};`),
  'export default sdk;',
].join('\n');

const onlyTheSdk: Plugin = {
  name: 'containment-policy-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) =>
      args.path === SDK_MODULE
        ? { path: SDK_MODULE, namespace: SDK_NAMESPACE }
        : {
            errors: [
              { text: `import of "${args.path}" is not allowed; a policy may import only ${SDK_MODULE}` },
            ],
          },
    );
    b.onLoad({ filter: /.*/, namespace: SDK_NAMESPACE }, () => ({ contents: sdkShim, loader: 'js' }));
  },
};

export async function compilePolicy(source: string, options: CompileOptions): Promise<{ code: string }> {
  let code: string | undefined;
  let exportsFound: string[];
  try {
    const result = await build({
      stdin: { contents: source, loader: options.loader, sourcefile: options.filename },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      tsconfigRaw: '{}',
      logLevel: 'silent',
      metafile: true,
      plugins: [onlyTheSdk],
    });
    code = result.outputFiles[0]?.text;
    exportsFound = Object.values(result.metafile.outputs)[0]?.exports ?? [];
  } catch (e) {
    const first = (e as { errors?: Message[] }).errors?.[0];
    throw new ContainmentError(ErrorCodes.POLICY_COMPILE_FAILED, first ? describe(first) : String(e), {
      cause: e,
    });
  }
  if (code === undefined)
    throw new ContainmentError(ErrorCodes.POLICY_COMPILE_FAILED, 'esbuild produced no output');
  if (!exportsFound.includes('main') && !exportsFound.includes('default')) {
    throw new ContainmentError(
      ErrorCodes.POLICY_COMPILE_FAILED,
      `${options.filename}: a policy must export a function main(params) or a default export`,
    );
  }
  // A second pass turns the bundled module into a plain script: QuickJS then evaluates it without a
  // module loader, and the exports land on one global.
  const script = await transform(code, { format: 'iife', globalName: POLICY_GLOBAL, target: 'es2022' });
  return { code: script.code };
}

function describe(m: Message): string {
  const where = m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : '';
  return `${where}${m.text}`.split('\n', 1)[0] ?? m.text;
}
