/** The STS's own GitLab credential: sources, the swappable holder, rotation. See README.md. */
export { CredentialError, CredentialSourceError, RotationError } from './errors.ts';
export {
  type CredentialHolder,
  createCredentialHolder,
  type HolderOptions,
  type PendingLookup,
} from './holder.ts';
export { azureErrorText, IMDS_HOST_VARIABLE } from './keyvault.ts';
export {
  type CredentialManager,
  type CredentialManagerOptions,
  type CredentialState,
  createCredentialManager,
  expiryInstant,
  rotationDue,
} from './manager.ts';
export {
  completePendingRotation,
  type LogLike,
  ownerIsGone,
  ROTATION_OUTCOMES,
  ROTATION_STEPS,
  type RotationDeps,
  type RotationOutcome,
  type RotationResult,
  type RotationStep,
  rotateCredential,
  rotationExpiryDate,
  rotationOwner,
  stopHookFromEnv,
} from './rotation.ts';
export { openSealedToken, sealToken } from './seal.ts';
export {
  type CredentialSource,
  type OpenSourceOptions,
  openCredentialSource,
  replaceFileAtomically,
} from './source.ts';
export {
  type CredentialSourceSpec,
  describeSource,
  type KeyVaultSpec,
  type RotationSettings,
} from './types.ts';
