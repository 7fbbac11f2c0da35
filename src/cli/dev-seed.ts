/**
 * What the dev stack (and the tests built on it) need to know about a running
 * Entra ID emulator: tenant, pipeline app, its secret and certificate, the STS's
 * resource URI and the test OIDC issuer. The CLI reads these through this one
 * function so that it does not depend on the emulator's config layout.
 */

import { type DevSeedSummary, summarizeDevSeed } from '../emulators/entra/dev-seed.ts';
import type { EntraEmulatorHandle } from '../emulators/entra/index.ts';

export type { DevSeedSummary };

export function devSeedOf(entra: Pick<EntraEmulatorHandle, 'config'>): DevSeedSummary {
  return summarizeDevSeed(entra.config);
}
