import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BerthError, isErrno } from '@berth/cli-kit';
import { writeFileAtomic } from './atomic.ts';
import { withFileLock } from './lock.ts';

/**
 * Leases: what a pull, unpack or build in progress holds so that berth-gc
 * leaves it alone (containerd's leases, as files). A lease is
 * ROOT/leases/<id>.json; it names the content it protects and dies either when
 * released, when it expires, or when the process that took it is gone — so a
 * process killed with -9 does not pin content forever.
 *
 * Protocol for writers: take the lease on every digest you will refer to
 * BEFORE you check whether it exists (hasBlob) and release it AFTER the tag
 * that refers to it is in index.json. acquireLease writes under the lease lock
 * that berth-gc holds from listing leases to its last removal, so either GC
 * sees the lease, or the lease is taken after GC removed what it removed and
 * the writer's existence check sees the removal.
 */
export type LeaseResourceType = 'blob' | 'layer' | 'snapshot' | 'image';

export interface LeaseResource {
  type: LeaseResourceType;
  /** a digest for blob, a chainID for layer, a key for snapshot, a ref or manifest digest for image */
  id: string;
}

export interface LeaseRecord {
  id: string;
  pid: number;
  /** RFC 3339 */
  created: string;
  /** RFC 3339 */
  expires: string;
  resources: LeaseResource[];
}

export interface Lease {
  id: string;
  /** Remove the lease file (idempotent). */
  release(): Promise<void>;
}

const resourceTypes: readonly string[] = ['blob', 'layer', 'snapshot', 'image'];
const DEFAULT_TTL_MS = 60 * 60 * 1000;

export function leaseDir(root: string): string {
  return join(root, 'leases');
}

/** Run `fn` holding the lease lock (berth-gc holds it for its mark and sweep). */
export async function withLeaseLock<T>(root: string, fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  await mkdir(leaseDir(root), { recursive: true });
  return withFileLock(join(leaseDir(root), '.lock'), fn, opts);
}

export async function acquireLease(root: string, resources: LeaseResource[], opts: { ttlMs?: number; pid?: number } = {}): Promise<Lease> {
  for (const r of resources) {
    if (!resourceTypes.includes(r.type) || typeof r.id !== 'string' || r.id === '') {
      throw new BerthError('E_LEASE', `lease resource ${JSON.stringify(r)}: type must be one of ${resourceTypes.join(', ')} and id a non-empty string`);
    }
  }
  const ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttlMs > 0)) throw new BerthError('E_LEASE', `lease ttl ${ttlMs} ms: must be positive`);
  const now = Date.now();
  const id = `${now.toString(36)}-${randomBytes(6).toString('hex')}`;
  const record: LeaseRecord = {
    id,
    pid: opts.pid ?? process.pid,
    created: new Date(now).toISOString(),
    expires: new Date(now + ttlMs).toISOString(),
    resources: resources.map((r) => ({ type: r.type, id: r.id })),
  };
  const path = join(leaseDir(root), `${id}.json`);
  await withLeaseLock(root, () => writeFileAtomic(path, JSON.stringify(record)));
  return {
    id,
    release: async () => {
      await unlink(path).catch((err: unknown) => { if (!isErrno(err, 'ENOENT')) throw err; });
    },
  };
}

/** Is a lease still in force at `now`, with `alive` telling whether its pid runs? */
export function leaseIsLive(l: LeaseRecord, now: number, alive: (pid: number) => boolean): boolean {
  const expires = Date.parse(l.expires);
  return Number.isFinite(expires) && expires > now && alive(l.pid);
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return isErrno(err, 'EPERM');
  }
}

function parseLease(text: string, file: string): LeaseRecord | undefined {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return undefined; }
  if (typeof v !== 'object' || v === null) return undefined;
  const l = v as Partial<LeaseRecord>;
  if (typeof l.id !== 'string' || `${l.id}.json` !== file || typeof l.pid !== 'number' || typeof l.expires !== 'string' || !Array.isArray(l.resources)) return undefined;
  const resources = l.resources.filter((r): r is LeaseResource => typeof r === 'object' && r !== null && resourceTypes.includes(r.type) && typeof r.id === 'string');
  return { id: l.id, pid: l.pid, created: typeof l.created === 'string' ? l.created : '', expires: l.expires, resources };
}

/**
 * The live leases under ROOT/leases. Expired ones and those whose process is
 * gone are dropped; with `removeStale` their files are deleted too (berth-gc
 * does that). An unreadable lease file is skipped: it is being written
 * (writes are atomic renames, so that is a leftover temp name) or is garbage.
 */
export async function listLeases(root: string, opts: { now?: number; removeStale?: boolean; alive?: (pid: number) => boolean } = {}): Promise<LeaseRecord[]> {
  const dir = leaseDir(root);
  let names: string[];
  try { names = await readdir(dir); } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const now = opts.now ?? Date.now();
  const alive = opts.alive ?? pidAlive;
  const out: LeaseRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    let text: string;
    try { text = await readFile(join(dir, name), 'utf8'); } catch { continue; }
    const l = parseLease(text, name);
    if (l && leaseIsLive(l, now, alive)) out.push(l);
    else if (l && opts.removeStale) await unlink(join(dir, name)).catch(() => {});
  }
  return out;
}
