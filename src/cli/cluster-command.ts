/** `containment cluster add|list|remove`: clusters on a scanner server, through its API. */
import type { Command } from 'commander';
import { renderTable } from '../report/text-cells.js';
import { addApiOptions, addFormatOption, clientFrom, printJson } from './api-flags.js';
import type { ApiFlags } from './api-flags.js';

interface FormatFlags extends ApiFlags {
  format: 'table' | 'json';
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('register, list and remove clusters on a scanner');

  addFormatOption(
    addApiOptions(
      cluster
        .command('add')
        .description('register a cluster; prints its agent token (shown only once)')
        .argument('<name>', 'cluster name'),
    ),
  ).action(async (name: string, flags: FormatFlags) => {
    const created = await clientFrom(flags).createCluster(name);
    if (flags.format === 'json') printJson(created);
    else process.stdout.write(`${created.agentToken}\n`);
  });

  addFormatOption(addApiOptions(cluster.command('list').description('list clusters'))).action(
    async (flags: FormatFlags) => {
      const clusters = await clientFrom(flags).listClusters();
      if (flags.format === 'json') return printJson(clusters);
      const lines = renderTable(
        [{ header: 'NAME' }, { header: 'WORKLOADS' }, { header: 'CREATED' }],
        clusters.map((c) => [c.name, String(c.workloads), c.createdAt]),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );

  addApiOptions(
    cluster
      .command('remove')
      .description('remove a cluster with its workloads, scans and triggers, and revoke its tokens')
      .argument('<name>', 'cluster name'),
  ).action(async (name: string, flags: ApiFlags) => {
    await clientFrom(flags).removeCluster(name);
    process.stderr.write(`removed cluster ${name}\n`);
  });
}
