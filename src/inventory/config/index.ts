/**
 * The insecure-configuration checks, by stable id. Each check has a usual severity; a finding
 * may carry a different one when the case is worse or milder (root with an empty password is
 * CRITICAL, a root login allowed only under a `Match` block is HIGH …), as each check documents.
 */
import type { ConfigCheck, ConfigCheckContext } from '../context.js';
import type { InsecureConfiguration } from '../types.js';
import { emptyPasswordAccount } from './accounts.js';
import { remoteShellInstalled, remoteShellPermissive } from './remote-shell.js';
import { runsAsRoot } from './runs-as-root.js';
import { cloudCredentialsPresent, privateKeyPresent } from './secrets.js';
import { setuidBinaries } from './setuid.js';
import { worldWritableSystemDirs, worldWritableSystemFiles } from './world-writable.js';

export const configChecks: readonly ConfigCheck[] = [
  remoteShellInstalled,
  remoteShellPermissive,
  emptyPasswordAccount,
  privateKeyPresent,
  cloudCredentialsPresent,
  setuidBinaries,
  worldWritableSystemDirs,
  worldWritableSystemFiles,
  runsAsRoot,
];

/**
 * Runs every check in registry order and returns the findings. `contextFor` gives a check its own
 * view of `ctx` (an incremental rescan records what each one reads).
 */
export async function runConfigChecks(
  ctx: ConfigCheckContext,
  contextFor: (check: ConfigCheck) => ConfigCheckContext = () => ctx,
): Promise<InsecureConfiguration[]> {
  const findings: InsecureConfiguration[] = [];
  for (const check of configChecks) {
    const found = await check.check(contextFor(check));
    if (found) findings.push(found);
  }
  return findings;
}
