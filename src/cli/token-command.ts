/** `containment token create|list|revoke`: API tokens on a scanner server, through its API. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ROLES } from '../auth/principal.js';
import type { Role } from '../auth/principal.js';
import { renderTable } from '../report/text-cells.js';
import { addApiOptions, addFormatOption, clientFrom, printJson } from './api-flags.js';
import type { ApiFlags } from './api-flags.js';

interface FormatFlags extends ApiFlags {
  format: 'table' | 'json';
}

interface CreateFlags extends FormatFlags {
  role: Role;
  cluster: string;
  namespace: string[];
  name?: string;
  expiresAt?: string;
}

const repeatable = (value: string, previous: string[] = []): string[] => [...previous, value];

function isoTime(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('expected a date/time such as 2026-01-31T00:00:00Z');
  return new Date(ms).toISOString();
}

const when = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('issue, list and revoke API tokens on a scanner');

  addFormatOption(
    addApiOptions(
      token
        .command('create')
        .description('issue a token; prints it alone on stdout (shown only once)')
        .addOption(new Option('--role <role>', 'role').choices(ROLES).makeOptionMandatory())
        .addOption(new Option('--cluster <name>', 'the one cluster it may act in, or * for all').default('*'))
        .addOption(
          new Option('--namespace <name>', 'a namespace it may act in (repeatable; default: all)')
            .argParser(repeatable)
            .default([]),
        )
        .option('--name <name>', 'a label shown in token lists (default: cli:<role>)')
        .option('--expires-at <time>', 'expiry (RFC 3339)', isoTime),
    ),
  ).action(async (flags: CreateFlags) => {
    const namespaces = flags.namespace.length === 0 || flags.namespace.includes('*') ? '*' : flags.namespace;
    const issued = await clientFrom(flags).createToken({
      name: flags.name ?? `cli:${flags.role}`,
      role: flags.role,
      cluster: flags.cluster,
      namespaces,
      ...(flags.expiresAt === undefined ? {} : { expiresAt: flags.expiresAt }),
    });
    if (flags.format === 'json') printJson({ token: issued.token, ...issued.info });
    else process.stdout.write(`${issued.token}\n`);
  });

  addFormatOption(addApiOptions(token.command('list').description('list the tokens you may see'))).action(
    async (flags: FormatFlags) => {
      const tokens = await clientFrom(flags).listTokens();
      if (flags.format === 'json') return printJson(tokens);
      const lines = renderTable(
        [
          { header: 'ID' },
          { header: 'NAME', max: 40 },
          { header: 'ROLE' },
          { header: 'CLUSTER' },
          { header: 'NAMESPACES', max: 40 },
          { header: 'EXPIRES' },
          { header: 'REVOKED' },
        ],
        tokens.map((t) => [
          t.id,
          t.name,
          t.role,
          t.scope.cluster,
          t.scope.namespaces === '*' ? '*' : t.scope.namespaces.join(','),
          when(t.expiresAt),
          when(t.revokedAt),
        ]),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );

  addApiOptions(
    token.command('revoke').description('revoke a token').argument('<id>', 'token id (from token list)'),
  ).action(async (id: string, flags: ApiFlags) => {
    await clientFrom(flags).revokeToken(id);
    process.stderr.write(`revoked token ${id}\n`);
  });
}
