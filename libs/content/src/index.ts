export { ImageLayout, BlobWriter } from './layout.ts';
export { writeFileAtomic, fsyncDir } from './atomic.ts';
export { withFileLock } from './lock.ts';
export { acquireLease, listLeases, withLeaseLock, leaseIsLive, pidAlive, leaseDir, type Lease, type LeaseRecord, type LeaseResource, type LeaseResourceType } from './lease.ts';
