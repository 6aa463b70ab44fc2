/** `empty_password_account` and the /etc/passwd lookups other checks share. */
import type { ConfigCheck, ConfigCheckContext } from '../context.js';
import { finding, readSmallText } from './common.js';
import type { CheckInfo } from './common.js';

export interface PasswdEntry {
  name: string;
  password: string;
  uid: number;
}

/** Parses `name:password:uid:…` lines; malformed lines are skipped. */
export function parseAccounts(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.replace(/\r$/, '').split(':');
    const name = fields[0];
    if (!name || name.startsWith('#') || name.startsWith('+') || name.startsWith('-') || fields.length < 2) {
      continue; // comments and NIS `+`/`-` compat lines are not local accounts
    }
    entries.push({ name, password: fields[1] as string, uid: Number.parseInt(fields[2] ?? '', 10) });
  }
  return entries;
}

export async function readPasswd(ctx: ConfigCheckContext): Promise<PasswdEntry[]> {
  const text = await readSmallText(ctx, '/etc/passwd');
  return text === undefined ? [] : parseAccounts(text);
}

const EMPTY_PASSWORD: CheckInfo = {
  id: 'empty_password_account',
  severity: 'HIGH',
  title: 'An account has an empty password',
};

/**
 * An empty password field means "no password needed". Locked or disabled fields (`!`, `*`, `!!`,
 * `!*`, `!<hash>`) are not empty. In /etc/passwd only the field `x` (and busybox's `*`) sends the
 * lookup to /etc/shadow (pam_unix and busybox both work this way), so an empty passwd field is an
 * empty password whatever /etc/shadow says. Root (uid 0) with an empty password is CRITICAL.
 * Details name the users, never a hash.
 */
export const emptyPasswordAccount: ConfigCheck = {
  ...EMPTY_PASSWORD,
  async check(ctx) {
    const passwd = await readPasswd(ctx);
    const shadowText = await readSmallText(ctx, '/etc/shadow');
    const shadow = shadowText === undefined ? [] : parseAccounts(shadowText);
    const uidOf = new Map(passwd.map((e) => [e.name, e.uid]));
    const users = new Map<string, Set<string>>(); // user -> files proving it
    const add = (name: string, file: string) => users.set(name, (users.get(name) ?? new Set()).add(file));
    for (const e of shadow) if (e.password === '') add(e.name, '/etc/shadow');
    for (const e of passwd) if (e.password === '') add(e.name, '/etc/passwd');
    if (users.size === 0) return undefined;
    const names = [...users.keys()].sort();
    const root = names.filter((n) => n === 'root' || uidOf.get(n) === 0);
    const evidence = [...new Set([...users.values()].flatMap((files) => [...files]))].sort().reverse();
    return finding(
      EMPTY_PASSWORD,
      evidence, // /etc/shadow first
      `accounts with an empty password field: ${names.map((n) => `${n} (${[...(users.get(n) ?? [])].join(', ')})`).join(', ')}` +
        (root.length > 0 ? `; ${root.join(', ')} ha${root.length > 1 ? 've' : 's'} uid 0` : ''),
      root.length > 0 ? 'CRITICAL' : EMPTY_PASSWORD.severity,
    );
  },
};
