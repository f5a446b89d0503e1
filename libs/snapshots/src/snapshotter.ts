import { mkdir, readFile, rename, rm, readdir, lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BerthError, isErrno } from '@berth/cli-kit';
import { writeFileAtomic, withFileLock, fsyncDir } from '@berth/content';
import type { WhiteoutFormat } from '@berth/archive';
import type { Mount } from './mount.ts';

/**
 * containerd's snapshotter model on overlayfs
 * (https://github.com/containerd/containerd/blob/main/docs/snapshotters/README.md):
 *
 * - a *committed* snapshot has a `name` and is read-only forever; image layers
 *   are committed snapshots named by their chainID, so every image that shares
 *   a base shares its directories;
 * - an *active* snapshot has a `key`, a parent (or none) and a writable upper
 *   directory; `commit` turns it into a committed one under a new name;
 * - a *view* is a read-only active snapshot: no upper, nothing to commit.
 *
 * Mounts are data: `mounts(key)` says what to mount, someone else mounts it.
 * See README.md for the directory layout.
 */
export type SnapshotKind = 'committed' | 'active' | 'view';

export interface SnapshotInfo {
  /** directory number under ROOT/snapshots: short, so 128 lowerdirs fit a page */
  id: string;
  kind: SnapshotKind;
  parent?: string;
  created: string;
  /** how this snapshot's whiteouts are written (absent = chardev) */
  whiteouts?: WhiteoutFormat;
  labels?: Record<string, string>;
}

export interface SnapshotMetadata {
  version: 1;
  nextId: number;
  snapshots: Record<string, SnapshotInfo>;
}

export class Snapshotter {
  readonly root: string;
  constructor(dataRoot: string) {
    this.root = join(dataRoot, 'snapshots');
  }

  get metadataPath(): string { return join(this.root, 'metadata.json'); }
  private get lockPath(): string { return join(this.root, 'metadata.json.lock'); }
  get tmpRoot(): string { return join(this.root, 'tmp'); }
  dir(info: SnapshotInfo): string { return join(this.root, info.id); }
  fsDir(info: SnapshotInfo): string { return join(this.root, info.id, 'fs'); }

  async init(): Promise<this> {
    await mkdir(this.tmpRoot, { recursive: true });
    return this;
  }

  async read(): Promise<SnapshotMetadata> {
    try {
      const doc = JSON.parse(await readFile(this.metadataPath, 'utf8')) as SnapshotMetadata;
      if (doc.version !== 1 || typeof doc.snapshots !== 'object') throw new Error('unknown format');
      return doc;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return { version: 1, nextId: 1, snapshots: {} };
      throw new BerthError('E_SNAPSHOT_METADATA', `snapshot metadata ${this.metadataPath} is unreadable: ${(err as Error).message}`);
    }
  }

  /** Change the metadata under the lock; written atomically (temp, fsync, rename). */
  async update<T>(fn: (m: SnapshotMetadata) => T | Promise<T>): Promise<T> {
    await this.init();
    return withFileLock(this.lockPath, async () => {
      const m = await this.read();
      const out = await fn(m);
      await writeFileAtomic(this.metadataPath, JSON.stringify(m, null, 1));
      return out;
    }, { timeoutMs: 120_000 });
  }

  async stat(keyOrName: string): Promise<SnapshotInfo> {
    const info = (await this.read()).snapshots[keyOrName];
    if (!info) throw new BerthError('E_NO_SNAPSHOT', `snapshot "${keyOrName}" does not exist in ${this.root}`);
    return info;
  }

  async exists(keyOrName: string): Promise<boolean> {
    return (await this.read()).snapshots[keyOrName] !== undefined;
  }

  /** All snapshots, oldest first, each with its key or name. */
  async list(): Promise<Array<SnapshotInfo & { name: string }>> {
    const m = await this.read();
    return Object.entries(m.snapshots).map(([name, info]) => ({ name, ...info })).sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** The committed chain from `name` down to the base layer: nearest first. */
  chain(m: SnapshotMetadata, name: string | undefined): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    for (let cur = name; cur !== undefined; cur = m.snapshots[cur]?.parent) {
      const info = m.snapshots[cur];
      if (!info) throw new BerthError('E_NO_SNAPSHOT', `snapshot "${cur}" (a parent) does not exist`);
      if (out.length > 1000) throw new BerthError('E_SNAPSHOT_METADATA', `snapshot chain of "${name}" loops`);
      out.push(info);
    }
    return out;
  }

  /** A fresh private directory for building a snapshot's content before it exists. */
  async tempDir(purpose: string): Promise<string> {
    await this.init();
    const dir = join(this.tmpRoot, `${purpose}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(dir, 'fs'), { recursive: true, mode: 0o755 });
    return dir;
  }

  /**
   * Remove what crashed writers left in tmp/ (their pid is dead) and
   * directories no metadata points at (kill -9 between rename and metadata write).
   */
  async cleanup(): Promise<number> {
    let removed = 0;
    let names: string[] = [];
    try { names = await readdir(this.tmpRoot); } catch { /* none */ }
    for (const n of names) {
      const pid = Number(/-(\d+)-[0-9a-f]+$/.exec(n)?.[1]);
      if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
        await rm(join(this.tmpRoot, n), { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * Make a prepared directory (from tempDir) the committed snapshot `name`.
   * The rename is what makes it visible, so a crash before it leaves only tmp/.
   */
  async commitDirectory(tmp: string, name: string, parent: string | undefined, extra: Partial<SnapshotInfo> = {}): Promise<SnapshotInfo> {
    return this.update(async (m) => {
      const have = m.snapshots[name];
      if (have) {
        await rm(tmp, { recursive: true, force: true });
        return have;
      }
      if (parent !== undefined && m.snapshots[parent]?.kind !== 'committed') {
        throw new BerthError('E_NO_SNAPSHOT', `parent snapshot "${parent}" of "${name}" is not committed`);
      }
      const info: SnapshotInfo = { id: String(m.nextId++), kind: 'committed', ...(parent ? { parent } : {}), created: new Date().toISOString(), ...extra };
      const final = this.dir(info);
      // A directory here with no metadata is an orphan of a crash between rename and metadata write.
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      await fsyncDir(this.root);
      m.snapshots[name] = info;
      return info;
    });
  }

  /** An active snapshot (writable upper) or a view (read-only) on top of `parent`. */
  async prepare(key: string, parent: string | undefined, opts: { readonly?: boolean; labels?: Record<string, string> } = {}): Promise<Mount[]> {
    validateKey(key);
    const kind: SnapshotKind = opts.readonly ? 'view' : 'active';
    await this.update(async (m) => {
      if (m.snapshots[key]) throw new BerthError('E_SNAPSHOT_EXISTS', `snapshot "${key}" already exists (${m.snapshots[key]!.kind})`);
      if (parent !== undefined) {
        const p = m.snapshots[parent];
        if (!p) throw new BerthError('E_NO_SNAPSHOT', `parent snapshot "${parent}" does not exist`);
        if (p.kind !== 'committed') throw new BerthError('E_SNAPSHOT_KIND', `parent "${parent}" is ${p.kind}: only a committed snapshot can be a parent (commit it first)`);
      }
      const info: SnapshotInfo = { id: String(m.nextId++), kind, ...(parent ? { parent } : {}), created: new Date().toISOString(), ...(opts.labels ? { labels: opts.labels } : {}) };
      await rm(this.dir(info), { recursive: true, force: true });
      if (kind === 'active') {
        await mkdir(join(this.dir(info), 'fs'), { recursive: true, mode: 0o755 });
        await mkdir(join(this.dir(info), 'work'), { recursive: true, mode: 0o700 });
      } else {
        await mkdir(this.dir(info), { recursive: true, mode: 0o700 });
      }
      m.snapshots[key] = info;
    });
    return this.mounts(key);
  }

  /**
   * The mounts of an active snapshot or view. overlayfs takes lowerdir
   * top-most first, so the nearest parent comes first.
   */
  async mounts(key: string): Promise<Mount[]> {
    const m = await this.read();
    const info = m.snapshots[key];
    if (!info) throw new BerthError('E_NO_SNAPSHOT', `snapshot "${key}" does not exist in ${this.root}`);
    if (info.kind === 'committed') throw new BerthError('E_SNAPSHOT_KIND', `snapshot "${key}" is committed: mount a view of it (prepare KEY --parent ${key} --readonly)`);
    const lowers = this.chain(m, info.parent);
    const userxattr = lowers.some((l) => l.whiteouts === 'xattr');
    const extra = userxattr ? ['userxattr'] : [];
    if (info.kind === 'view') {
      if (lowers.length === 0) return [{ type: 'bind', source: join(this.dir(info)), options: ['rbind', 'ro'] }];
      if (lowers.length === 1) return [{ type: 'bind', source: this.fsDir(lowers[0]!), options: ['rbind', 'ro'] }];
      return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lowers.map((l) => this.fsDir(l)).join(':')}`, ...extra, 'ro'] }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: this.fsDir(info), options: ['rbind', 'rw'] }];
    return [{
      type: 'overlay',
      source: 'overlay',
      options: [
        `lowerdir=${lowers.map((l) => this.fsDir(l)).join(':')}`,
        `upperdir=${this.fsDir(info)}`,
        `workdir=${join(this.dir(info), 'work')}`,
        // index=off: the inode index would tie the upper to these exact lowers.
        'index=off',
        ...extra,
      ],
    }];
  }

  /** Turn the active snapshot `key` into the committed snapshot `name`. */
  async commit(name: string, key: string, labels?: Record<string, string>): Promise<SnapshotInfo> {
    validateKey(name);
    const info = await this.update(async (m) => {
      const active = m.snapshots[key];
      if (!active) throw new BerthError('E_NO_SNAPSHOT', `snapshot "${key}" does not exist`);
      if (active.kind !== 'active') throw new BerthError('E_SNAPSHOT_KIND', `snapshot "${key}" is ${active.kind}: only an active snapshot can be committed`);
      if (m.snapshots[name]) throw new BerthError('E_SNAPSHOT_EXISTS', `snapshot "${name}" already exists`);
      const committed: SnapshotInfo = { ...active, kind: 'committed', created: new Date().toISOString(), ...(labels ? { labels: { ...active.labels, ...labels } } : {}) };
      delete m.snapshots[key];
      m.snapshots[name] = committed;
      return committed;
    });
    // The workdir belongs to a mount; a committed snapshot is never an upper again.
    await rm(join(this.dir(info), 'work'), { recursive: true, force: true }).catch(() => {});
    return info;
  }

  /** Remove a snapshot that no other snapshot builds on and no overlay in this mount namespace uses. */
  async remove(keyOrName: string): Promise<SnapshotInfo> {
    const current = (await this.read()).snapshots[keyOrName];
    if (current) {
      const where = await this.mountedAt(current);
      if (where) throw new BerthError('E_SNAPSHOT_IN_USE', `snapshot "${keyOrName}" is mounted at ${where}: unmount it first (berth-store unmount ${where})`);
    }
    const info = await this.update((m) => {
      const s = m.snapshots[keyOrName];
      if (!s) throw new BerthError('E_NO_SNAPSHOT', `snapshot "${keyOrName}" does not exist`);
      const children = Object.entries(m.snapshots).filter(([, c]) => c.parent === keyOrName).map(([k]) => k);
      if (children.length > 0) throw new BerthError('E_SNAPSHOT_IN_USE', `snapshot "${keyOrName}" has children (${children.join(', ')}): remove them first`);
      delete m.snapshots[keyOrName];
      return s;
    });
    // Metadata first: once the entry is gone nobody can mount it; the directory is then garbage.
    await rm(this.dir(info), { recursive: true, force: true });
    return info;
  }

  /**
   * Where an overlay names this snapshot's directory in its options
   * (/proc/self/mountinfo, super options). Mounts made with relative paths
   * (over 4000 bytes of options) and mounts in other namespaces are not seen.
   */
  async mountedAt(info: SnapshotInfo): Promise<string | undefined> {
    const fs = this.fsDir(info);
    const text = await readFile('/proc/self/mountinfo', 'utf8');
    for (const line of text.split('\n')) {
      const sep = line.indexOf(' - ');
      if (sep < 0) continue;
      const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
      if (fstype !== 'overlay') continue;
      const paths = superOptions.split(',').filter((o) => /^(lowerdir|upperdir)=/.test(o)).flatMap((o) => o.slice(o.indexOf('=') + 1).split(':'));
      if (paths.includes(fs)) return line.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    }
    return undefined;
  }

  /** Disk use of the snapshot's own directory (parents excluded): bytes in blocks, and inodes; hardlinks count once. */
  async usage(keyOrName: string): Promise<{ size: number; inodes: number }> {
    const info = await this.stat(keyOrName);
    const seen = new Set<string>();
    let size = 0;
    let inodes = 0;
    const walk = async (p: string): Promise<void> => {
      const st = await lstat(p);
      const k = `${st.dev}:${st.ino}`;
      if (!seen.has(k)) {
        seen.add(k);
        inodes++;
        size += st.blocks * 512;
      }
      if (st.isDirectory()) for (const n of await readdir(p)) await walk(join(p, n));
    };
    const fs = this.fsDir(info);
    try { await stat(fs); } catch { return { size: 0, inodes: 0 }; }
    await walk(fs);
    return { size, inodes };
  }

  /** Directories under ROOT/snapshots that no metadata points at (for GC and tests). */
  async orphans(): Promise<string[]> {
    const ids = new Set(Object.values((await this.read()).snapshots).map((s) => s.id));
    let names: string[] = [];
    try { names = await readdir(this.root); } catch { return []; }
    return names.filter((n) => /^\d+$/.test(n) && !ids.has(n)).map((n) => join(this.root, n));
  }
}

function validateKey(key: string): void {
  if (key === '' || key.length > 512 || /[\0\n]/.test(key)) throw new BerthError('E_USAGE', `invalid snapshot key "${key}": 1-512 characters, no NUL or newline`, { exitCode: 2 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isErrno(err, 'ESRCH');
  }
}

