/**
 * `containment policy deploy|list|remove`: a policy file as an action + trigger + rule on this
 * project's runtime (default) or on a real Apache OpenWhisk (`--target openwhisk`), or as Knative
 * manifests (`--target knative`, written, not applied).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { JsonObject, JsonValue } from '../functions/sandbox/sandbox.js';
import { renderTable } from '../report/text-cells.js';

type Target = 'runtime' | 'openwhisk' | 'knative';

interface ConnectionFlags {
  namespace: string;
  apihost?: string;
  auth?: string;
}

interface DeployFlags extends ConnectionFlags {
  target: Target;
  name?: string;
  trigger?: string;
  dryRun: boolean;
  param: JsonObject;
  timeout?: number;
  parameterSchema?: string;
  enforcementScope: 'event' | 'namespace';
  webAuth?: 'jwt';
  requiredRole: string[];
  inputThreats?: 'report' | 'block';
  scannerUrl?: string;
  scannerToken?: string;
  actionsUrl?: string;
  enforcerToken?: string;
  cluster: string;
  podNamespace: string[];
  secret?: string;
  image?: string;
  broker: string;
  eventType: string[];
  output?: string;
  format: 'text' | 'json';
}

/** `k=v`: the value as JSON when it parses (numbers, booleans, objects), else the text. */
function param(value: string, previous: JsonObject = {}): JsonObject {
  const eq = value.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError('expected key=value');
  const raw = value.slice(eq + 1);
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(raw) as JsonValue;
  } catch {
    parsed = raw;
  }
  return { ...previous, [value.slice(0, eq)]: parsed };
}

const repeat = (value: string, previous: string[] = []): string[] => [...previous, value];

function timeout(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 100 || n > 300_000)
    throw new InvalidArgumentError('expected milliseconds from 100 to 300000');
  return n;
}

function need(value: string | undefined, flag: string, target: Target): string {
  if (value === undefined || value === '')
    throw new ContainmentError(ErrorCodes.USAGE, `--target ${target} needs ${flag}`);
  return value;
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .requiredOption(
      '--namespace <ns>',
      "the OpenWhisk namespace (`_` = the key's own; Knative: the Kubernetes namespace)",
    )
    .addOption(
      new Option('--apihost <url>', 'the function runtime or OpenWhisk API host').env(
        'CONTAINMENT_FUNCTIONS_URL',
      ),
    )
    .addOption(new Option('--auth <uuid:key>', 'its API key').env('CONTAINMENT_FUNCTIONS_AUTH'));
}

async function whiskApi(flags: ConnectionFlags, target: Target) {
  const { WhiskClient } = await import('../clients/whisk-client.js');
  return new WhiskClient({
    apihost: need(flags.apihost, '--apihost (or CONTAINMENT_FUNCTIONS_URL)', target),
    auth: need(flags.auth, '--auth (or CONTAINMENT_FUNCTIONS_AUTH)', target),
    namespace: flags.namespace,
  });
}

function readSchema(file: string | undefined): JsonValue | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.TARGET_NOT_FOUND,
      `${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  try {
    const value = JSON.parse(text) as JsonValue;
    return value;
  } catch (e) {
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `${file}: not JSON: ${(e as Error).message}`);
  }
}

/** Every file is written beside its final name, then renamed: all of them or none appear. */
function writeAll(dir: string, files: { file: string; yaml: string }[]): void {
  mkdirSync(dir, { recursive: true });
  const staged = files.map(({ file, yaml }) => {
    const tmp = join(dir, `.${file}.${process.pid}.tmp`);
    writeFileSync(tmp, yaml, { mode: 0o600 });
    return { tmp, final: join(dir, file) };
  });
  for (const { tmp, final } of staged) renameSync(tmp, final);
}

async function deploy(file: string, flags: DeployFlags): Promise<void> {
  const deployMod = await import('../functions/adapters/openwhisk/policy-deploy.js');
  const bundling = await import('../functions/adapters/policy-bundle.js');
  const { parseParameterSchema } = await import('../functions/parameter-schema.js');
  const source = bundling.readPolicy(file);
  const parameterSchema = readSchema(flags.parameterSchema);
  if (parameterSchema !== undefined) {
    const parsed = parseParameterSchema(parameterSchema);
    if ('error' in parsed)
      throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `${flags.parameterSchema}: ${parsed.error}`);
  }
  const common = {
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.trigger === undefined ? {} : { trigger: flags.trigger }),
    ...(flags.eventType.length === 0 ? {} : { eventTypes: flags.eventType }),
    dryRun: flags.dryRun,
    params: flags.param,
    ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
    ...(parameterSchema === undefined ? {} : { parameterSchema }),
    enforcementScope: flags.enforcementScope,
    ...(flags.webAuth === undefined ? {} : { webAuth: flags.webAuth, requiredRoles: flags.requiredRole }),
    ...(flags.inputThreats === undefined ? {} : { inputThreats: flags.inputThreats }),
  };
  if (flags.requiredRole.length > 0 && flags.webAuth === undefined)
    throw new ContainmentError(ErrorCodes.USAGE, '--required-role needs --web-auth jwt');
  if (flags.target === 'knative' && (flags.webAuth !== undefined || flags.inputThreats !== undefined))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      "--web-auth and --input-threats are enforced by this project's runtime only (--target runtime)",
    );
  const podNamespaces = flags.podNamespace.length > 0 ? flags.podNamespace : [flags.namespace];

  if (flags.target === 'knative') {
    const knative = await import('../functions/adapters/knative/manifests.js');
    const name = bundling.policyName(file, flags.name);
    const objects = knative.knativeManifests({
      name,
      namespace: flags.namespace,
      image: need(flags.image, '--image', 'knative'),
      handler: await bundling.bundlePolicy('knative', source, name, flags.enforcementScope),
      broker: flags.broker,
      ...(flags.eventType.length === 0 ? {} : { eventTypes: flags.eventType }),
      scannerUrl: need(flags.scannerUrl, '--scanner-url', 'knative'),
      actionsUrl: need(flags.actionsUrl, '--actions-url', 'knative'),
      cluster: flags.cluster,
      namespaces: podNamespaces,
      dryRun: flags.dryRun,
      ...(flags.scannerToken === undefined || flags.enforcerToken === undefined
        ? {}
        : { scannerToken: flags.scannerToken, enforcerToken: flags.enforcerToken }),
    });
    if (flags.output === undefined) {
      process.stdout.write(knative.toYaml(objects));
      return;
    }
    const files = knative.manifestFiles(objects);
    writeAll(flags.output, files);
    for (const f of files) process.stdout.write(`${join(flags.output, f.file)}\n`);
    return;
  }

  const api = await whiskApi(flags, flags.target);
  const result =
    flags.target === 'runtime'
      ? await deployMod.deployToRuntime(api, source, common)
      : await deployMod.deployToOpenWhisk(api, source, {
          ...common,
          sdk: {
            scannerUrl: need(flags.scannerUrl, '--scanner-url', 'openwhisk'),
            scannerToken: need(flags.scannerToken, '--scanner-token', 'openwhisk'),
            actionsUrl: need(flags.actionsUrl, '--actions-url', 'openwhisk'),
            enforcerToken: need(flags.enforcerToken, '--enforcer-token', 'openwhisk'),
            cluster: flags.cluster,
            namespaces: podNamespaces,
          },
          ...(flags.secret === undefined ? {} : { secret: flags.secret }),
        });
  if (flags.format === 'json') {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `deployed ${result.action} (${result.codeBytes} bytes${result.dryRun ? ', dry run' : ''}) to ${flags.target} namespace ${flags.namespace}`,
    `rule ${result.rule}: ${result.trigger} -> ${result.action}, active`,
  ];
  if (result.generatedSecret !== undefined) {
    lines.push(
      `installed the ${result.trigger} endpoint; its secret (shown only once): ${result.generatedSecret}`,
    );
    lines.push(
      'register it with the scanner: containment trigger add --cluster <cluster> --secret <that secret> --url ' +
        `${(flags.apihost ?? '').replace(/\/$/, '')}/api/v1/web/${flags.namespace}/security-notices/events`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('deploy, list and remove security policies');
  registerPolicyDeploy(policy);
  registerPolicyWebAuth(policy);
  registerPolicyList(policy);
  registerPolicyRemove(policy);
}

/** `policy deploy`: its many options are the deploy targets' settings. */
function registerPolicyDeploy(policy: Command): void {
  connectionOptions(
    policy
      .command('deploy')
      .description(
        'compile a policy and install it as an action fired by a trigger (default security-notices)',
      )
      .argument('<file>', 'the policy (.ts or .js) importing only @containment/policy-sdk'),
  )
    .addOption(
      new Option('--target <target>', 'where to')
        .choices(['runtime', 'openwhisk', 'knative'])
        .default('runtime'),
    )
    .option('--name <name>', 'action name (default: the file name)')
    .option('--trigger <name>', 'trigger that fires it (default: security-notices)')
    .option('--dry-run', 'enforcement calls only record what they would do', false)
    .addOption(
      new Option('--param <key=value>', 'default parameter (repeatable; JSON values)')
        .argParser(param)
        .default({}),
    )
    .addOption(new Option('--timeout <ms>', 'action time limit').argParser(timeout))
    .option('--parameter-schema <file.json>', 'JSON Schema (subset) the invocation parameters must match')
    .addOption(
      new Option(
        '--enforcement-scope <scope>',
        "workloads enforcement calls may name: the triggering event's, or any in the namespace scope",
      )
        .choices(['event', 'namespace'])
        .default('event'),
    )
    .addOption(
      // `--auth` is the API key: the web action's caller authentication is `--web-auth`.
      new Option(
        '--web-auth <kind>',
        "runtime: also a web action, callable only with a JWT from the namespace's issuer",
      ).choices(['jwt']),
    )
    .addOption(
      new Option('--required-role <role>', 'with --web-auth: a role the JWT must grant (repeatable)')
        .argParser(repeat)
        .default([]),
    )
    .addOption(
      new Option('--input-threats <mode>', "runtime: check web callers' input for attacks").choices([
        'report',
        'block',
      ]),
    )
    .addOption(
      new Option('--scanner-url <url>', 'openwhisk/knative: the scanner (findings API)').env(
        'CONTAINMENT_SCANNER_URL',
      ),
    )
    .addOption(
      new Option('--scanner-token <token>', 'openwhisk/knative: its policy token').env(
        'CONTAINMENT_SCANNER_TOKEN',
      ),
    )
    .addOption(
      new Option('--actions-url <url>', 'openwhisk/knative: the enforcement API').env(
        'CONTAINMENT_ACTIONS_URL',
      ),
    )
    .addOption(
      new Option('--enforcer-token <token>', 'openwhisk/knative: its policy token').env(
        'CONTAINMENT_ENFORCER_TOKEN',
      ),
    )
    .option('--cluster <name>', 'openwhisk/knative: the cluster of the pods', 'local')
    .addOption(
      new Option(
        '--pod-namespace <ns>',
        'openwhisk/knative: a pod namespace the policy may act on (repeatable; default --namespace)',
      )
        .argParser(repeat)
        .default([]),
    )
    .option(
      '--secret <secret>',
      "openwhisk: the web action's require-whisk-auth secret (default: keep or generate)",
    )
    .option('--image <image>', 'knative: container image with Node 20')
    .option('--broker <name>', 'knative: the Broker', 'default')
    .addOption(
      new Option(
        '--event-type <type>',
        'the CloudEvent type the policy gets, repeatable (knative: subscribed; runtime: --trigger fired with these only)',
      )
        .argParser(repeat)
        .default([]),
    )
    .option('--output <dir>', 'knative: write one file per object here instead of stdout')
    .addOption(new Option('--format <format>', 'output').choices(['text', 'json']).default('text'))
    .action(async (file: string, flags: DeployFlags) => deploy(file, flags));
}

/** `policy web-auth`: the JWT issuer of the namespace's web actions. */
function registerPolicyWebAuth(policy: Command): void {
  connectionOptions(
    policy
      .command('web-auth')
      .description("show, set or remove the JWT issuer of the namespace's web actions (--web-auth jwt)"),
  )
    .option('--issuer <url>', "the issuer (the tokens' iss)")
    .option('--audience <aud>', 'the audience the tokens must name (their aud)')
    .option('--jwks-url <url>', "the issuer's JWKS (public keys)")
    .addOption(
      new Option('--algorithm <alg>', 'accepted algorithm (repeatable; default RS256 ES256 PS256 EdDSA)')
        .argParser(repeat)
        .default([]),
    )
    .option('--remove', 'remove the setting: JWT web actions then refuse every caller', false)
    .action(
      async (
        flags: ConnectionFlags & {
          issuer?: string;
          audience?: string;
          jwksUrl?: string;
          algorithm: string[];
          remove: boolean;
        },
      ) => {
        const api = await whiskApi(flags, 'runtime');
        const setting = 'web-auth';
        const given = [flags.issuer, flags.audience, flags.jwksUrl];
        if (flags.remove) await api.putSetting(setting, undefined);
        else if (given.some((v) => v !== undefined)) {
          if (given.some((v) => v === undefined))
            throw new ContainmentError(ErrorCodes.USAGE, '--issuer, --audience and --jwks-url go together');
          await api.putSetting(setting, {
            issuer: flags.issuer as string,
            audience: flags.audience as string,
            jwksUrl: flags.jwksUrl as string,
            ...(flags.algorithm.length === 0 ? {} : { algorithms: flags.algorithm }),
          });
        }
        const current = flags.remove ? undefined : await api.getSetting(setting);
        process.stdout.write(
          `${current === undefined ? 'no web-auth issuer set' : JSON.stringify(current, null, 2)}\n`,
        );
      },
    );
}

/** `policy list`. */
function registerPolicyList(policy: Command): void {
  connectionOptions(policy.command('list').description('deployed policies and the rules that fire them'))
    .addOption(new Option('--format <format>', 'output').choices(['table', 'json']).default('table'))
    .action(async (flags: ConnectionFlags & { format: string }) => {
      const { listPolicies } = await import('../functions/adapters/openwhisk/policy-deploy.js');
      const policies = await listPolicies(await whiskApi(flags, 'runtime'));
      if (flags.format === 'json') {
        process.stdout.write(`${JSON.stringify(policies, null, 2)}\n`);
        return;
      }
      const lines = renderTable(
        [{ header: 'ACTION' }, { header: 'VERSION' }, { header: 'DRY RUN' }, { header: 'RULES', max: 80 }],
        policies.map((p) => [
          p.action,
          p.version,
          p.dryRun ? 'yes' : 'no',
          p.rules.map((r) => `${r.name} (${r.trigger}, ${r.status})`).join(', ') || '-',
        ]),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** `policy remove`. */
function registerPolicyRemove(policy: Command): void {
  connectionOptions(
    policy
      .command('remove')
      .description('delete a deployed policy and its rules (the trigger stays)')
      .argument('<name>', 'the action name'),
  ).action(async (name: string, flags: ConnectionFlags) => {
    const { removePolicy } = await import('../functions/adapters/openwhisk/policy-deploy.js');
    const removed = await removePolicy(await whiskApi(flags, 'runtime'), name);
    process.stdout.write(
      `removed ${removed.action}${removed.rules.length ? ` and rules ${removed.rules.join(', ')}` : ''}\n`,
    );
  });
}
