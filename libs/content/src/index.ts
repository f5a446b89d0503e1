export { ImageLayout, BlobWriter } from './layout.ts';
export { writeFileAtomic, fsyncDir } from './atomic.ts';
export { withFileLock } from './lock.ts';
