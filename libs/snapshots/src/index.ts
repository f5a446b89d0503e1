export { mountAll, unmountAll, isMountPoint, mountPoints, relativeOverlayOptions, type Mount } from './mount.ts';
export { Snapshotter, type SnapshotInfo, type SnapshotKind, type SnapshotMetadata } from './snapshotter.ts';
export { resolveImage, candidateNames, type ResolvedImage, type ImageDocument } from './image.ts';
export { unpackImage, diffSnapshot, type UnpackedLayer, type DiffResult } from './unpack.ts';
