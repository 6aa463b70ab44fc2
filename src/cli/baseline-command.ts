/**
 * `containment baseline show|lock|reset`: the behaviour baselines the scanner keeps per cluster and
 * image (learned by the agents' runtime sensors), through its API. Agents apply a lock or reset on
 * their next sync.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { StoredBaseline } from '../runtime/contracts.js';
import { renderTable } from '../report/text-cells.js';
import { addApiOptions, addFormatOption, clientFrom, printJson } from './api-flags.js';
import type { ApiFlags } from './api-flags.js';

interface BaselineFlags extends ApiFlags {
  cluster?: string;
  format: 'table' | 'json';
  monitor?: boolean;
}

function clusterOption(): Option {
  return new Option('--cluster <name>', "cluster (default: the token's own)").env('CONTAINMENT_CLUSTER');
}

function stateOf(b: StoredBaseline): string {
  return b.state === 'learning' ? `learning since ${new Date(b.learningStartedAt).toISOString()}` : b.state;
}

/** One baseline in full: its state, then every item. */
function describe(b: StoredBaseline): string {
  const lines = [
    `image:       ${b.image}${b.imageRef !== undefined && b.imageRef !== b.image ? ` (${b.imageRef})` : ''}`,
    `cluster:     ${b.cluster}`,
    `state:       ${stateOf(b)}`,
    `learned:     ${b.eventsLearned} events; generation ${b.generation}, updated ${b.updatedAt}`,
  ];
  for (const [title, items] of [
    ['executables', b.executables],
    ['listeners', b.listeners],
    ['outbound', b.outbound],
  ] as const) {
    lines.push(`${title} (${items.length}):`, ...items.map((i) => `  ${i}`));
  }
  return lines.join('\n');
}

/** Baselines as JSON, item by item, or (`table`) one row per image. */
function print(flags: BaselineFlags, value: StoredBaseline | StoredBaseline[], as: 'items' | 'table'): void {
  if (flags.format === 'json') return printJson(value);
  const list = Array.isArray(value) ? value : [value];
  if (as === 'items') {
    process.stdout.write(`${list.map(describe).join('\n\n')}\n`);
    return;
  }
  const lines = renderTable(
    ['IMAGE', 'STATE', 'EXECUTABLES', 'LISTENERS', 'OUTBOUND'].map((header) => ({ header })),
    list.map((b) => [
      b.imageRef ?? b.image,
      b.state,
      String(b.executables.length),
      String(b.listeners.length),
      String(b.outbound.length),
    ]),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function registerBaselineCommands(program: Command): void {
  const baseline = program
    .command('baseline')
    .description('show, lock and reset the behaviour baselines the agents learned per image');

  addFormatOption(
    addApiOptions(
      baseline
        .command('show')
        .description("an image's baseline (its digest or reference), or every baseline of the cluster")
        .argument('[image]', 'image digest (sha256:…) or reference')
        .addOption(clusterOption()),
    ),
  ).action(async (image: string | undefined, flags: BaselineFlags) => {
    const found = await clientFrom(flags).baselines({
      ...(flags.cluster === undefined ? {} : { cluster: flags.cluster }),
      ...(image === undefined ? {} : { image }),
    });
    if (image !== undefined && found.length === 0) {
      process.stderr.write(`no baseline of ${image} (nothing learned yet)\n`);
      process.exitCode = 1;
      return;
    }
    if (found.length === 0 && flags.format === 'table') {
      process.stderr.write('no baselines\n');
      return;
    }
    print(flags, found, image === undefined ? 'table' : 'items');
  });

  addFormatOption(
    addApiOptions(
      baseline
        .command('lock')
        .description('end learning: what was learned is the baseline, anything else is an anomaly')
        .argument('<image>', 'image digest (sha256:…) or reference')
        .addOption(clusterOption())
        .addOption(
          new Option('--monitor', 'report anomalies only (default: protect, blocking responses may act)'),
        ),
    ),
  ).action(async (image: string, flags: BaselineFlags) => {
    const locked = await clientFrom(flags).lockBaseline({
      image,
      ...(flags.cluster === undefined ? {} : { cluster: flags.cluster }),
      state: flags.monitor ? 'monitor' : 'protect',
    });
    print(flags, locked, 'items');
  });

  addFormatOption(
    addApiOptions(
      baseline
        .command('reset')
        .description("empty an image's baseline: it learns again from now")
        .argument('<image>', 'image digest (sha256:…) or reference')
        .addOption(clusterOption()),
    ),
  ).action(async (image: string, flags: BaselineFlags) => {
    const reset = await clientFrom(flags).resetBaseline({
      image,
      ...(flags.cluster === undefined ? {} : { cluster: flags.cluster }),
    });
    print(flags, reset, 'items');
  });
}
