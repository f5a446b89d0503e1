export { RegistryClient, type RegistryClientOptions, type BlobSink, type Response } from './client.ts';
export { registryTls, certsDirCandidates, connectOptions, type RegistryTls, type RegistryTlsOptions } from './certs.ts';
export { parseChallenges, type Challenge } from './challenge.ts';
export { findCredentials, parseCredsFlag, authFileCandidates, authKeys, readAuthFile, type Credentials } from './credentials.ts';
export { RegistryError, decodeErrorBody, isTransientNetworkError, isTransientStatus, type DistributionError } from './errors.ts';
export { PushClient, type PushClientOptions, type BlobSource, type UploadOutcome, type UploadResult } from './push.ts';
export {
  loadRegistriesConf, registriesConfFiles, mergeFile, resolvePullCandidates, pullSources, registryFor, isShortName,
  type RegistriesConf, type RegistryEntry, type MirrorEntry, type PullCandidate, type PullSource, type ShortNameMode,
} from './registries-conf.ts';
