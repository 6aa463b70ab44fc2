/** `runs_as_root`: an image whose default user is root. */
import type { ConfigCheck } from '../context.js';
import { readPasswd } from './accounts.js';
import { finding } from './common.js';
import type { CheckInfo } from './common.js';

const RUNS_AS_ROOT: CheckInfo = {
  id: 'runs_as_root',
  severity: 'MEDIUM',
  title: 'The image runs as root',
};

/**
 * Only for targets with an image configuration. `User` is `user[:group]`; the user part decides
 * (a root group alone does not give root's privileges). An empty user, `0`, `root`, or a name
 * that the image's /etc/passwd maps to uid 0 is root.
 */
export const runsAsRoot: ConfigCheck = {
  ...RUNS_AS_ROOT,
  async check(ctx) {
    if (!ctx.image) return undefined;
    const raw = (ctx.image.User ?? '').trim();
    const user = raw.split(':', 1)[0] ?? '';
    let why: string | undefined;
    if (user === '')
      why = raw === '' ? 'User is not set: the container runs as root' : `User "${raw}" names no user`;
    else if (/^\d+$/.test(user)) why = Number(user) === 0 ? `User "${raw}" is uid 0` : undefined;
    else if (user === 'root') why = `User "${raw}" is root`;
    else {
      const entry = (await readPasswd(ctx)).find((e) => e.name === user);
      if (entry?.uid === 0) why = `User "${raw}": ${user} has uid 0 in /etc/passwd`;
    }
    return why === undefined ? undefined : finding(RUNS_AS_ROOT, ['config.User'], why);
  },
};
