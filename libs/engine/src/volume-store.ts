import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { OBJECT_NAME_RE, log } from '@berth/cli-kit';
import { fsyncDir, withFileLock, writeFileAtomic } from '@berth/content';
import { at, O_DIR } from './cp-path.ts';
import { EngineError } from './errors.ts';
import type { EngineEnv } from './paths.ts';
import { listRecords, type ContainerRecord } from './records.ts';
import { isRootlessCaller, unshareArgs } from './rootless.ts';

/**
 * Named volumes as podman keeps them: ROOT/volumes/NAME/_data is the
 * directory containers get bind-mounted, and ROOT/volumes/NAME/volume.json
 * is what podman keeps in its database (labels, options, the copy-up and
 * chown flags). A volume appears whole or not at all: it is built in a
 * hidden `.new-*` directory beside the others and renamed to its name, and
 * it disappears by a rename into a hidden `.trash-*` directory before
 * anything in it is deleted. Hidden names cannot clash with a volume's,
 * since a volume name starts with a letter or a digit.
 */
export interface VolumeRecord {
  name: string;
  driver: 'local';
  createdAt: string;
  labels: Record<string, string>;
  /** `--opt` as given (podman shows `o`), plus the UID/GID it read from `o=uid=N,gid=N`. */
  options: Record<string, string>;
  uid?: number;
  gid?: number;
  /** Made by `-v /dst` or `--mount type=volume,target=/dst`: removed with a `--rm` container or `rm -v`. */
  anonymous: boolean;
  /** The image's content at the mount point is still to be copied in (podman's copy-up). */
  needsCopyUp: boolean;
  /** _data still takes the owner and mode of its first container's mount point. */
  needsChown: boolean;
}

/** podman's rule for volume names; it keeps `/`, `..` and option-looking names out of every path built from one. */
/** NAME_MAX: the name is one directory entry. */
const MAX_NAME = 255;

/** The name, or podman's refusal naming the rule; every path built from a name goes through here first. */
export function validateVolumeName(name: string): string {
  if (!OBJECT_NAME_RE.test(name) || name.length > MAX_NAME) {
    throw new EngineError('E_VOLUME_NAME', `volume name ${JSON.stringify(name)}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (letters, digits, '_', '.', '-', starting with a letter or digit; at most ${MAX_NAME} characters): invalid argument`);
  }
  return name;
}

/** Where a volume's parts are; a name that is not a valid one throws before any path is made. */
export const volumePaths = {
  root: (env: EngineEnv) => join(env.dataRoot, 'volumes'),
  dir: (env: EngineEnv, name: string) => join(env.dataRoot, 'volumes', validateVolumeName(name)),
  /** What containers see: podman's Mountpoint. */
  data: (env: EngineEnv, name: string) => join(env.dataRoot, 'volumes', validateVolumeName(name), '_data'),
  meta: (env: EngineEnv, name: string) => join(env.dataRoot, 'volumes', validateVolumeName(name), 'volume.json'),
  lock: (env: EngineEnv) => join(env.dataRoot, 'volumes', '.lock'),
};

/** podman's words for a missing volume. */
export function noSuchVolume(name: string): EngineError {
  return new EngineError('E_NO_VOLUME', `no volume with name ${JSON.stringify(name)} found: no such volume`);
}

/**
 * Everything that creates, changes or removes volumes holds this one lock, so
 * `volume rm` checking the container records cannot interleave with a
 * `create` making the same volume, or a copy-up filling it.
 */
export async function withVolumeLock<T>(env: EngineEnv, fn: () => Promise<T>): Promise<T> {
  await mkdir(volumePaths.root(env), { recursive: true, mode: 0o700 });
  return withFileLock(volumePaths.lock(env), fn, { timeoutMs: 120_000 });
}

/** A volume's record, or undefined when there is none (or the name cannot be one). */
export function readVolume(env: EngineEnv, name: string): VolumeRecord | undefined {
  if (!OBJECT_NAME_RE.test(name) || name.length > MAX_NAME) return undefined;
  try {
    return JSON.parse(readFileSync(volumePaths.meta(env, name), 'utf8')) as VolumeRecord;
  } catch {
    return undefined;
  }
}

/** Every volume, by name (podman lists them sorted). */
export function listVolumes(env: EngineEnv): VolumeRecord[] {
  let names: string[];
  try { names = readdirSync(volumePaths.root(env)); } catch { return []; }
  return names.filter((n) => OBJECT_NAME_RE.test(n)).sort()
    .map((n) => readVolume(env, n)).filter((v): v is VolumeRecord => v !== undefined);
}

/** Rewrite a volume's record atomically; the caller holds the volume lock. */
export async function saveVolume(env: EngineEnv, v: VolumeRecord): Promise<void> {
  await writeFileAtomic(volumePaths.meta(env, v.name), JSON.stringify(v, null, 2) + '\n', 0o600);
}

/**
 * `--opt` for the local driver. berth's volumes are plain directories, so
 * the only options it has are the ones that shape that directory: `o=uid=N`
 * and `o=gid=N` (its owner, as podman's UID/GID). Mounts (type=tmpfs,
 * device=, o=bind, size=) are refused by name rather than ignored.
 */
export function parseVolumeOptions(opts: readonly string[]): { options: Record<string, string>; uid?: number; gid?: number } {
  const options: Record<string, string> = {};
  let uid: number | undefined;
  let gid: number | undefined;
  const refuse = (what: string): never => {
    throw new EngineError('E_VOLUME_OPT', `--opt ${what}: berth's local volumes are directories under ROOT/volumes; it takes only o=uid=N and o=gid=N (the directory's owner), not mounts (type=, device=, o=bind, size=...)`);
  };
  for (const opt of opts) {
    const i = opt.indexOf('=');
    const key = i < 0 ? opt : opt.slice(0, i);
    const value = i < 0 ? '' : opt.slice(i + 1);
    if (key !== 'o') refuse(opt);
    for (const part of value.split(',').filter((p) => p !== '')) {
      const m = /^(uid|gid)=(.*)$/.exec(part);
      if (!m) refuse(`o=${part}`);
      const n = Number(m![2]);
      if (!/^\d+$/.test(m![2]!) || n > 0xfffffffe) throw new EngineError('E_VOLUME_OPT', `--opt o=${part}: ${m![1]} must be a number (0 to 4294967294)`);
      if (m![1] === 'uid') { uid = n; options.UID = String(n); } else { gid = n; options.GID = String(n); }
    }
    options.o = options.o === undefined ? value : `${options.o},${value}`;
  }
  return { options, ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
}

/** What `volume create` and a first use ask for. */
export interface NewVolume {
  /** Without a name, a random 64-hex one, as podman gives. */
  name?: string;
  labels?: Record<string, string>;
  opts?: readonly string[];
  anonymous?: boolean;
}

/** podman's name for a volume made without one. */
export function newVolumeName(): string {
  return randomBytes(32).toString('hex');
}

/** `volume create`: a new volume, or podman's "already exists" error. */
export async function createVolume(env: EngineEnv, spec: NewVolume): Promise<VolumeRecord> {
  const name = validateVolumeName(spec.name ?? newVolumeName());
  const parsed = parseVolumeOptions(spec.opts ?? []);
  if ((parsed.uid !== undefined || parsed.gid !== undefined) && env.rootless && isRootlessCaller()) {
    // The owner would have to be set from inside the user's namespace; containers already see the user as root there.
    throw new EngineError('E_VOLUME_OPT', '--opt o=uid=,gid= is not supported for an ordinary user\'s volumes: their directory belongs to you, which is root in the container');
  }
  return withVolumeLock(env, async () => {
    if (readVolume(env, name)) throw new EngineError('E_VOLUME_EXISTS', `volume with name ${name} already exists: volume already exists`);
    return makeVolumeLocked(env, name, { ...spec, ...parsed });
  });
}

/**
 * The volume a container names, made on first use as podman does. Returns
 * whether this call made it, so a create that fails later can take it back.
 */
export async function ensureVolume(env: EngineEnv, name: string, anonymous: boolean): Promise<{ volume: VolumeRecord; created: boolean }> {
  validateVolumeName(name);
  return withVolumeLock(env, async () => {
    const existing = readVolume(env, name);
    if (existing) return { volume: existing, created: false };
    return { volume: await makeVolumeLocked(env, name, { anonymous, options: {} }), created: true };
  });
}

async function makeVolumeLocked(env: EngineEnv, name: string, spec: NewVolume & { options: Record<string, string>; uid?: number; gid?: number }): Promise<VolumeRecord> {
  const root = volumePaths.root(env);
  const stage = await mkdtemp(join(root, '.new-'));
  try {
    mkdirSync(join(stage, '_data'), { mode: 0o755 });
    if (spec.uid !== undefined || spec.gid !== undefined) lchownSync(join(stage, '_data'), spec.uid ?? -1, spec.gid ?? -1);
    const v: VolumeRecord = {
      name, driver: 'local', createdAt: new Date().toISOString(), labels: spec.labels ?? {}, options: spec.options,
      ...(spec.uid !== undefined ? { uid: spec.uid } : {}), ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      anonymous: spec.anonymous === true, needsCopyUp: true,
      // An owner given with --opt is kept; otherwise the first container's mount point gives one (podman's NeedsChown).
      needsChown: spec.uid === undefined && spec.gid === undefined,
    };
    await writeFileAtomic(join(stage, 'volume.json'), JSON.stringify(v, null, 2) + '\n', 0o600);
    // rename(2) onto an existing non-empty directory fails: two creators cannot both win.
    await rename(stage, join(root, name));
    await fsyncDir(root);
    return v;
  } catch (err) {
    await rm(stage, { recursive: true, force: true }).catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new EngineError('E_VOLUME_EXISTS', `volume with name ${name} already exists: volume already exists`);
    if (err instanceof EngineError) throw err;
    throw new EngineError('E_VOLUME', `creating volume directory ${join(root, name)}: ${code ?? (err as Error).message}`, { cause: err });
  }
}

/** The containers whose records name the volume: podman's "in use", whatever their state. */
export function volumeUsers(env: EngineEnv, name: string, records: ContainerRecord[] = listRecords(env)): ContainerRecord[] {
  return records.filter((r) => (r.mounts ?? []).some((m) => m.type === 'volume' && m.name === name));
}

/**
 * Remove a volume the caller holds the lock for and has found unused: out of
 * sight first (a rename into `.trash-*`), then its files. Nothing under
 * _data is ever followed: what containers put there (a symlink to /, a
 * directory swapped for one) is unlinked, never walked into. An ordinary
 * user's volume may hold files of the subordinate range, which only root of
 * the user's namespace may delete, so there `rm -rf` runs in it.
 */
export async function removeVolumeLocked(env: EngineEnv, name: string): Promise<void> {
  const dir = volumePaths.dir(env, name);
  const trash = join(volumePaths.root(env), `.trash-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await rename(dir, trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noSuchVolume(name);
    throw new EngineError('E_VOLUME', `removing volume ${name}: rename ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
  }
  await fsyncDir(volumePaths.root(env)).catch(() => {});
  if (env.rootless && isRootlessCaller()) await removeInUserNamespace(env, trash);
  else removeTreeNoFollow(trash);
}

/**
 * What a berth killed mid-way left in the volumes directory: a `.new-*`
 * stage of a volume being made, or a `.trash-*` one being removed. Both
 * exist only while their maker holds the volume lock, so with the lock held
 * any that is there belongs to a process that is gone. `volume prune` clears
 * them; they are removed as a volume is, never followed into.
 */
export async function reclaimVolumeLeftovers(env: EngineEnv): Promise<string[]> {
  return withVolumeLock(env, async () => {
    const root = volumePaths.root(env);
    const left = readdirSync(root).filter((n) => n.startsWith('.new-') || n.startsWith('.trash-'));
    for (const n of left) {
      if (env.rootless && isRootlessCaller()) await removeInUserNamespace(env, join(root, n));
      else removeTreeNoFollow(join(root, n));
    }
    return left;
  });
}

/** `volume rm` of one volume: refused while a container uses it (exit 2, podman's), unless the caller removed them. */
export async function removeVolume(env: EngineEnv, name: string): Promise<void> {
  await withVolumeLock(env, async () => {
    if (!readVolume(env, name)) throw noSuchVolume(name);
    const users = volumeUsers(env, name);
    if (users.length > 0) throw volumeInUse(name, users);
    await removeVolumeLocked(env, name);
  });
}

/** The refusal `volume rm` gives for a volume in use (podman's words; exit 2 at the command). */
export function volumeInUse(name: string, users: ContainerRecord[]): EngineError {
  return new EngineError('E_VOLUME_IN_USE', `volume ${name} is being used by the following container(s): ${users.map((u) => u.id).join(', ')}: volume is being used (berth volume rm -f removes those containers first)`);
}

/**
 * The anonymous volumes of a container that is gone (`run --rm`, `rm -v`),
 * unless another container names one of them too.
 */
export async function removeAnonymousVolumes(env: EngineEnv, rec: ContainerRecord): Promise<void> {
  const names = (rec.mounts ?? []).filter((m) => m.type === 'volume' && m.anonymous && m.name !== undefined).map((m) => m.name!);
  if (names.length === 0) return;
  await withVolumeLock(env, async () => {
    const records = listRecords(env).filter((r) => r.id !== rec.id);
    for (const name of names) {
      if (!readVolume(env, name)) continue;
      const users = volumeUsers(env, name, records);
      if (users.length > 0) { log.debug(`anonymous volume ${name} kept: used by ${users.map((u) => u.name).join(', ')}`); continue; }
      await removeVolumeLocked(env, name).catch((e: unknown) => log.warn(`removing anonymous volume ${name}: ${(e as Error).message}`));
    }
  });
}

/** rm -r through descriptors, on one filesystem: a symlink is unlinked, a mount point is not descended into. */
export function removeTreeNoFollow(path: string): void {
  const top = lstatSync(path, { throwIfNoEntry: false });
  if (!top) return;
  if (!top.isDirectory()) { unlinkSync(path); return; }
  const fd = openSync(path, O_DIR);
  try {
    removeChildren(fd, top.dev);
  } finally {
    closeSync(fd);
  }
  rmdirSync(path);
}

function removeChildren(fd: number, dev: number): void {
  for (const name of readdirSync(at(fd))) {
    const st = lstatSync(at(fd, name));
    if (!st.isDirectory()) { unlinkSync(at(fd, name)); continue; }
    if (st.dev !== dev) throw new EngineError('E_VOLUME', `${name}: a mount point inside a volume being removed; unmount it first`);
    // O_NOFOLLOW: a directory swapped for a symlink since the lstat fails here instead of being walked.
    const child = openSync(at(fd, name), O_DIR);
    try {
      removeChildren(child, dev);
    } finally {
      closeSync(child);
    }
    rmdirSync(at(fd, name));
  }
}

async function removeInUserNamespace(env: EngineEnv, path: string): Promise<void> {
  const child = spawn('/usr/bin/unshare', unshareArgs(env.rootless?.plan(), ['/bin/rm', '-rf', '--one-file-system', path]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (c) => resolve(c ?? -1));
  });
  // The volume is gone already (renamed aside); what is left is hidden garbage, named here.
  if (code !== 0) log.warn(`removing ${path} in the user namespace: ${stderr.trim() || `exit status ${code}`}`);
}
