/**
 * One style for every command's `--help`: commander's layout, descriptions that start in lower
 * case without a closing period, the defaults of `--data-dir` and of ports spelt out, and an
 * Examples section at the end — two or three commands a user can paste, kept here in one table
 * so they are written alike (`help.test.ts` checks that every command has some).
 */
import type { Command } from 'commander';
import { Option } from 'commander';

export const DATA_DIR_DEFAULT =
  '$CONTAINMENT_DATA_DIR, else $XDG_DATA_HOME/containment or ~/.local/share/containment';

/** `--data-dir <dir>` with its default, the same on every command that takes it. */
export function dataDirOption(): Option {
  return new Option('--data-dir <dir>', `data directory (default: ${DATA_DIR_DEFAULT})`);
}

/** For `up`: the three ports it listens on, from the one given. */
export function portDefaultNote(port: number): string {
  return `the runtime uses port+1 (${port + 1}), the action API port+2 (${port + 2})`;
}

type Example = readonly [command: string, what: string];

/** The Examples section: what each example does as a comment, then the command. */
export function examples(list: readonly Example[]): string {
  return `\nExamples:\n${list.map(([c, what]) => `  # ${what}\n  $ ${c}`).join('\n\n')}\n`;
}

/** Keyed by the command's path without `containment` ('' is the program itself). */
export const EXAMPLES: Readonly<Record<string, readonly Example[]>> = {
  '': [
    ['containment up', 'scanner, policies, enforcer and agent on this machine (monitor mode)'],
    ['containment scan container:web', 'scan a running container'],
    ['containment db import ./osv', 'load OSV advisories'],
  ],
  scan: [
    ['containment scan /mnt/rootfs', 'a root filesystem on disk'],
    ['containment scan container:web --format json -o web.json', 'a running container, as JSON'],
    ['containment scan image.tar --severity HIGH --exit-code 1', 'a CI gate on an image export'],
  ],
  db: [
    ['containment db import ./osv', 'OSV records from a directory'],
    ['containment db status', 'what the database holds'],
  ],
  'db import': [
    ['containment db import ./osv', 'every *.json below ./osv'],
    [
      'containment db import npm-all.zip --data-dir /srv/containment',
      'an osv.dev all.zip into another data dir',
    ],
  ],
  'db update': [
    ['containment db update', 'download and import the default ecosystems'],
    ['containment db update --ecosystem npm --ecosystem PyPI', 'only these two'],
  ],
  'db status': [
    ['containment db status', 'the database of the default data dir'],
    ['containment db status --format json', 'the same as JSON'],
  ],
  server: [
    ['containment server', 'on 127.0.0.1:8080 with the default data dir'],
    [
      'containment server --host 0.0.0.0 --port 9090 --data-dir /srv/containment',
      'reachable by agents on other nodes',
    ],
  ],
  cluster: [
    ['containment cluster add prod', 'register a cluster, print its agent token'],
    ['containment cluster list', 'the clusters you may see'],
  ],
  'cluster add': [
    ['containment cluster add prod --server http://127.0.0.1:8080 --token "$ADMIN"', 'register prod'],
    ['CONTAINMENT_TOKEN="$ADMIN" containment cluster add staging', 'server from CONTAINMENT_SERVER'],
  ],
  'cluster list': [
    ['containment cluster list', 'as a table'],
    ['containment cluster list --format json', 'as JSON'],
  ],
  'cluster remove': [
    ['containment cluster remove staging', 'with its workloads, scans, triggers and tokens'],
    ['containment cluster remove staging --server http://10.0.0.5:8080', 'on another scanner'],
  ],
  token: [
    ['containment token create --role analyst --namespace shop', 'a read-and-act token for one namespace'],
    ['containment token list', 'the tokens you may see'],
  ],
  'token create': [
    ['containment token create --role agent --cluster prod', "an agent's token"],
    [
      'containment token create --role analyst --namespace shop --expires-at 2027-01-01T00:00:00Z',
      'limited in scope and time',
    ],
  ],
  'token list': [
    ['containment token list', 'as a table'],
    ['containment token list --format json', 'as JSON'],
  ],
  'token revoke': [
    ['containment token revoke 12', 'the token with id 12 (from token list)'],
    ['containment token revoke 12 --server http://10.0.0.5:8080', 'on another scanner'],
  ],
  trigger: [
    [
      'containment trigger add --cluster prod --url https://hooks.example/ce --secret "$SECRET"',
      'CloudEvents to a URL',
    ],
    ['containment trigger list', 'the triggers you may see'],
  ],
  'trigger add': [
    [
      'containment trigger add --cluster prod --url https://hooks.example/ce --secret "$SECRET"',
      'every event of prod',
    ],
    [
      'containment trigger add --cluster prod --namespace shop --every-scan --url http://127.0.0.1:9000/ --secret "$SECRET"',
      'one namespace, every scan',
    ],
  ],
  'trigger list': [
    ['containment trigger list', 'as a table'],
    ['containment trigger list --format json', 'as JSON'],
  ],
  'trigger remove': [
    ['containment trigger remove 3', 'the trigger with id 3 (from trigger list)'],
    ['containment trigger remove 3 --server http://10.0.0.5:8080', 'on another scanner'],
  ],
  agent: [
    ['containment agent --server http://127.0.0.1:8080 --token "$AGENT_TOKEN"', "this machine's containers"],
    ['containment agent --label app=web --rescan-interval 1m', 'only containers labelled app=web'],
    ['containment agent --kubernetes --cluster prod', 'a Kubernetes node (in a DaemonSet)'],
  ],
  functions: [
    ['containment functions', 'on 127.0.0.1:3233 with the default data dir'],
    ['containment functions --port 3300 --sdk-config sdk.yaml', 'policies may call the scanner and enforcer'],
  ],
  policy: [
    [
      'containment policy deploy my-policy.ts --apihost http://127.0.0.1:3233 --auth "$AUTH"',
      'deploy a policy',
    ],
    ['containment policy list', 'what is deployed'],
  ],
  'policy deploy': [
    [
      'containment policy deploy policies/examples/quarantine-or-terminate.ts',
      'to the runtime in CONTAINMENT_FUNCTIONS_URL',
    ],
    [
      'containment policy deploy my-policy.ts --dry-run --param gracePeriodSeconds=10',
      'record decisions only',
    ],
    ['containment policy deploy my-policy.ts --target knative --output manifests/', 'Knative manifests'],
  ],
  'policy list': [
    ['containment policy list', 'policies and their rules'],
    ['containment policy list --namespace local --format json', 'as JSON'],
  ],
  'policy web-auth': [
    [
      'containment policy web-auth --issuer https://id.example.com --audience shop --jwks-url https://id.example.com/jwks',
      'JWT web actions of this namespace accept tokens of that issuer',
    ],
    ['containment policy web-auth', 'show the setting'],
    ['containment policy web-auth --remove', 'remove it: JWT web actions then refuse every caller'],
  ],
  runtime: [
    ['containment runtime watch', 'detections on this node as JSON lines (as root)'],
    ['containment runtime rules', 'the rules and whether each is enabled'],
  ],
  'runtime watch': [
    ['containment runtime watch', 'eBPF when possible, else /proc polling'],
    [
      'containment runtime watch --rules my-rules.yaml --learn 10m',
      'own rules, and baselines learned for ten minutes',
    ],
  ],
  'runtime rules': [
    ['containment runtime rules', 'built-in rules'],
    ['containment runtime rules --rules my-rules.yaml', 'with your rule file applied'],
  ],
  baseline: [
    ['containment baseline show --cluster prod', "every image's baseline in prod"],
    [
      'containment baseline lock registry.local/web:1.4 --cluster prod',
      'end learning: new behaviour is an anomaly',
    ],
  ],
  'baseline show': [
    [
      'containment baseline show registry.local/web:1.4 --cluster prod',
      'what the image learned, item by item',
    ],
    ['containment baseline show --cluster prod --format json', 'every baseline of prod as JSON'],
  ],
  'baseline lock': [
    ['containment baseline lock registry.local/web:1.4 --cluster prod', 'protect: anomalies may be blocked'],
    [
      'containment baseline lock sha256:4f1c… --cluster prod --monitor',
      'monitor: anomalies are only reported',
    ],
  ],
  'baseline reset': [
    ['containment baseline reset registry.local/web:1.4 --cluster prod', 'forget it: the image learns again'],
    ['containment baseline reset sha256:4f1c… --cluster prod --format json', 'the emptied baseline as JSON'],
  ],
  'policy remove': [
    ['containment policy remove my-policy', 'the policy and its rules'],
    ['containment policy remove my-policy --namespace local', 'in namespace local'],
  ],
  up: [
    ['containment up', 'watch every container; decisions are printed, nothing is changed'],
    ['containment up --enforce --label app=web', 'quarantine or stop only containers labelled app=web'],
    ['containment up --json > decisions.jsonl', 'one JSON object per decision, for scripts'],
  ],
  operator: [
    ['containment operator --node "$NODE_NAME"', 'in the DaemonSet the Helm chart installs'],
    ['containment operator --kubeconfig ~/.kube/config --node kind-worker', 'from outside the cluster'],
  ],
  admission: [
    [
      'containment admission --tls-cert tls.crt --tls-key tls.key --server http://scanner:8080',
      'deny failing images',
    ],
    [
      'containment admission --mode warn --level restricted --tls-cert tls.crt --tls-key tls.key',
      'warn only',
    ],
  ],
  harden: [
    ['containment harden -f deploy.yaml', 'a patch for a manifest'],
    ['containment harden shop/deployment/web --kubeconfig ~/.kube/config', 'a patch for a live workload'],
    [
      'containment harden -f deploy.yaml --seccomp-profile web.json',
      'with a recorded seccomp profile (Localhost) instead of RuntimeDefault',
    ],
  ],
  profile: [
    [
      'containment profile record container:web --duration 60s -o web.json',
      'record a container, write its profile',
    ],
    [
      'containment profile record pod shop/web-0 --spo-name web -o web.json',
      'a pod on this node, plus a SeccompProfile',
    ],
  ],
  'profile record': [
    ['containment profile record container:web --duration 60s -o web.json', 'a local container for a minute'],
    [
      'containment profile record pod shop/web-0 --container app --spo-name web -o web.json',
      'one container of a pod on this node, plus an SPO SeccompProfile (web.spo.yaml)',
    ],
  ],
  posture: [
    ['containment posture -f manifests/', 'score manifests'],
    ['containment posture --kubeconfig --fail-below 80', 'a live cluster, as a CI gate'],
    ['containment posture --engine', 'the containers of the local engine'],
  ],
};

/** `db import` for the `containment db import` command. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds each command's Examples (the table above) and the shared help layout, recursively. */
export function applyHelpStyle(cmd: Command): void {
  cmd.configureHelp({ sortSubcommands: false, showGlobalOptions: false });
  const list = EXAMPLES[commandPath(cmd)];
  if (list !== undefined) cmd.addHelpText('after', examples(list));
  for (const sub of cmd.commands) applyHelpStyle(sub);
}
