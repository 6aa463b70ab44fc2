/** `containment trigger add|list|remove`: event targets on a scanner server, through its API. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { renderTable } from '../report/text-cells.js';
import type { TriggerKind } from '../scanner/scanner-store.js';
import { addApiOptions, addFormatOption, clientFrom, printJson } from './api-flags.js';
import type { ApiFlags } from './api-flags.js';

interface FormatFlags extends ApiFlags {
  format: 'table' | 'json';
}

interface AddFlags extends FormatFlags {
  cluster: string;
  url: string;
  kind: TriggerKind;
  secret: string;
  namespace: string[];
  everyScan: boolean;
  auth?: string;
}

export function registerTriggerCommands(program: Command): void {
  const trigger = program.command('trigger').description('register, list and remove event targets');

  addFormatOption(
    addApiOptions(
      trigger
        .command('add')
        .description(
          'send dev.containment.* CloudEvents of a cluster (or some namespaces) to a URL; prints its id',
        )
        .requiredOption('--cluster <name>', 'cluster whose events it receives')
        .requiredOption(
          '--url <url>',
          'CloudEvents endpoint, or for openwhisk <apihost>/api/v1/namespaces/<ns>/triggers/<name>',
        )
        .addOption(
          new Option('--kind <kind>', 'target kind')
            .choices(['cloudevents', 'openwhisk'])
            .default('cloudevents'),
        )
        .addOption(
          new Option(
            '--secret <secret>',
            'secret the deliveries are signed with as Standard Webhooks (whsec_…; several, space-separated, while rotating)',
          )
            .env('CONTAINMENT_TRIGGER_SECRET')
            .makeOptionMandatory(),
        )
        .addOption(
          new Option('--namespace <name>', 'only events of this namespace (repeatable; default: all)')
            .argParser((value: string, previous: string[] = []) => [...previous, value])
            .default([]),
        )
        .option('--every-scan', 'an event for every scan, not only first scans and changed findings', false)
        .option('--auth <uuid:key>', 'OpenWhisk API key (required for --kind openwhisk)'),
    ),
  ).action(async (flags: AddFlags) => {
    const created = await clientFrom(flags).createTrigger({
      cluster: flags.cluster,
      namespaces: flags.namespace.length === 0 ? '*' : flags.namespace,
      url: flags.url,
      kind: flags.kind,
      secret: flags.secret,
      ...(flags.auth === undefined ? {} : { auth: flags.auth }),
      options: { everyScan: flags.everyScan },
    });
    if (flags.format === 'json') printJson(created);
    else process.stdout.write(`${created.id}\n`);
  });

  addFormatOption(addApiOptions(trigger.command('list').description('list the triggers you may see'))).action(
    async (flags: FormatFlags) => {
      const triggers = await clientFrom(flags).listTriggers();
      if (flags.format === 'json') return printJson(triggers);
      const lines = renderTable(
        [
          { header: 'ID' },
          { header: 'CLUSTER' },
          { header: 'NAMESPACES', max: 40 },
          { header: 'KIND' },
          { header: 'EVERY SCAN' },
          { header: 'URL' },
        ],
        triggers.map((t) => [
          t.id,
          t.cluster,
          t.namespaces === '*' ? '*' : t.namespaces.join(','),
          t.kind,
          t.everyScan ? 'yes' : 'no',
          t.url,
        ]),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );

  addApiOptions(
    trigger
      .command('remove')
      .description('remove a trigger')
      .argument('<id>', 'trigger id (from trigger list)'),
  ).action(async (id: string, flags: ApiFlags) => {
    await clientFrom(flags).removeTrigger(id);
    process.stderr.write(`removed trigger ${id}\n`);
  });
}
