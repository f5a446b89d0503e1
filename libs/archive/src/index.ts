export { applyLayer, applyLayerFile, entryComponents, UnsafeEntryError, type ApplyOptions, type ApplyResult, type WhiteoutFormat } from './apply.ts';
export { at, O_DIR, openRegularFile } from './fd-path.ts';
export { diffTar, treeTar, walkUpper, type TreeTarOptions, type UpperEntry, type WalkOptions } from './diff.ts';
export { TarReader, TarFormatError, encodeHeader, parsePax, type TarHeader, type TarSink, type WriteHeader, type EntryType } from './tar.ts';
export { compressionOf, detectCompression, type Compression } from './compression.ts';
export { lsetxattr, lgetxattr, llistxattr, readXattrs, mknod, makedev } from './xattr.ts';
