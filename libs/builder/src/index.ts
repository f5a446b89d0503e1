export type { BuildOptions, BuiltImage, ImageFormat, PushOptions, PushResult, RegistryAccess, TagResult } from './types.ts';
export { buildImage } from './build.ts';
export { tagImage } from './tag.ts';
export { pushImage } from './push.ts';
export { localReference, storeCandidates, findImage } from './names.ts';
export { parseContainerfile, type Instruction, type ParsedContainerfile } from './containerfile.ts';
export { booleanFlag, keyValueFlags, pullFlag, networkFlag } from './flags.ts';
export { commitContainer, parseChanges, applyChanges, type CommitOptions, type CommittedImage, type ContainerSettings } from './commit-image.ts';
export { importTarball, rfc3339Nano, type ImportOptions, type ImportedImage } from './import.ts';
