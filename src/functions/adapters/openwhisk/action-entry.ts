/**
 * Entry of a policy bundled as an Apache OpenWhisk `nodejs:20` action (see ../policy-bundle.ts): the
 * configuration arrives as the package's default parameter `__containment`, the rest of the
 * parameters (the CloudEvent the trigger was fired with) go to the policy.
 */
// @ts-expect-error resolved by the bundler to the policy's source
import * as policy from 'containment:policy';
import { CONFIG_PARAM, bundledConfigSchema, runPolicy } from '../bundled-host.js';

declare const __CONTAINMENT_POLICY_NAME__: string;
/** `event` or `namespace`, fixed when bundled (`policy deploy --enforcement-scope`). */
declare const __CONTAINMENT_ENFORCEMENT_SCOPE__: 'event' | 'namespace';

export async function main(params: Record<string, unknown>): Promise<unknown> {
  const { [CONFIG_PARAM]: raw, ...rest } = params;
  const config = bundledConfigSchema.safeParse(raw);
  if (!config.success)
    return {
      error: `the action's ${CONFIG_PARAM} parameter is missing or invalid: ${config.error.issues[0]?.message ?? ''}`,
    };
  const activationId =
    process.env.__OW_ACTIVATION_ID ??
    `local-${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  return runPolicy(
    policy as object,
    __CONTAINMENT_POLICY_NAME__,
    activationId,
    config.data,
    rest,
    __CONTAINMENT_ENFORCEMENT_SCOPE__,
  );
}
