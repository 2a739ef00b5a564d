/**
 * The application usages of the XDMS (RFC 4825 section 5), by AUID.
 */
import type { ApplicationUsage } from './usage.js';
import { resourceListsUsage } from './resource-lists.js';
import { rlsServicesUsage } from './rls-services.js';
import { presRulesUsage } from './pres-rules.js';
import { pidfManipulationUsage } from './pidf-manipulation.js';
import { groupsUsage } from './groups.js';
import { imPolicyUsage } from './im-policy.js';
import { xcapCapsUsage } from './xcap-caps.js';
import { xcapDirectoryUsage } from './xcap-directory.js';

export type { ApplicationUsage, ValidationContext, ValidationProblem } from './usage.js';

const USAGES: readonly ApplicationUsage[] = [
  xcapCapsUsage,
  resourceListsUsage,
  rlsServicesUsage,
  presRulesUsage,
  pidfManipulationUsage,
  groupsUsage,
  imPolicyUsage,
  xcapDirectoryUsage,
];
const BY_AUID = new Map(USAGES.map((u) => [u.auid, u]));

/** Every supported usage (xcap-caps first). A fresh array. */
export function allUsages(): ApplicationUsage[] {
  return [...USAGES];
}

/** The usage of an AUID (exact, case-sensitive), or undefined. */
export function usageByAuid(auid: string): ApplicationUsage | undefined {
  return BY_AUID.get(auid);
}
