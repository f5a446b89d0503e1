import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inBerthUserNamespace, isRoot, log, makePrivateRoot, rootlessPlan, type UserNamespacePlan } from '@berth/cli-kit';
import { EngineError } from './errors.ts';
import { mark } from './proc.ts';
import { checkExecutable } from './executable.ts';
import type { EngineEnv } from './paths.ts';

/**
 * berth for an ordinary user (issue 12). podman re-executes itself into the
 * user's namespace and calls the runtime from inside it; berth splits the
 * work the other way round, because every stage already knows how to run as
 * the user:
 *
 * - what touches layers — unpack, the active snapshot, the bundle (which reads
 *   the image's /etc/passwd through the overlay), removing a snapshot — runs
 *   in a child `berth container storage` re-executed inside the user's
 *   namespace (unshare + newuidmap/newgidmap over the /etc/subuid range), as
 *   berth-store and berth-bundle do, so image owners land in the range;
 * - everything else — records, conmon, the runtime, exec, signals — runs as the
 *   user, outside any namespace. The runtime then makes the container's user
 *   namespace itself (berth-runtime's rootless mode); were it called from
 *   inside berth's namespace it would see uid 0, take itself for root and try
 *   to map ids that namespace does not have.
 *
 * Only one namespace is ever made per step, and none is nested in another.
 */

/** An ordinary user, not (yet) inside the namespace berth re-executes into. */
export function isRootlessCaller(): boolean {
  return !isRoot() && !inBerthUserNamespace();
}

/** What the engine needs to move a storage step into the user's namespace. */
export interface RootlessEnv {
  /**
   * The user's subordinate ranges; undefined without an /etc/subuid entry
   * (own id only, as berth-bundle does). A function, computed on first use:
   * it warns about a missing range, which `ps` has no reason to say.
   */
  plan: () => UserNamespacePlan | undefined;
  /** argv of this berth (node + launcher), which has the hidden `container storage` verb. */
  self: string[];
}

/**
 * Data and run roots of an ordinary user are private (0700), made before
 * anything is written into them: another user must not list the records,
 * read the images or reach the runtime's state. /tmp/berth-run-UID, the
 * fallback without $XDG_RUNTIME_DIR, is made 0700 too.
 */
export function makePrivateRoots(env: EngineEnv): void {
  makePrivateRoot(env.dataRoot);
  const tmpBase = /^\/tmp\/berth-run-\d+/.exec(env.runRoot)?.[0];
  if (tmpBase) makePrivateRoot(tmpBase);
  makePrivateRoot(env.runRoot);
}

/**
 * A rootless bundle leaves root.path empty and hands the overlay to the
 * runtime in an annotation (berth-bundle's Rootless section); only
 * berth-runtime mounts it from there.
 */
export function checkRootlessRuntime(runtimePath: string): void {
  const name = basename(runtimePath);
  if (name.startsWith('berth-runtime')) return;
  throw new EngineError('E_ROOTLESS',
    `--runtime ${runtimePath}: ${name} cannot run berth's rootless bundle (root.path is an empty directory; the overlay rootfs is mounted inside the container's user namespace from the io.berth.rootfs.mounts annotation, which only berth-runtime reads, and an ordinary user cannot mount it on the host beforehand); use the default runtime, berth-runtime`);
}

/** The rootless environment of this invocation; the plan reads /etc/subuid and checks the helpers once. */
export function rootlessEnv(self: string[]): RootlessEnv {
  let plan: { value: UserNamespacePlan | undefined } | undefined;
  return { self, plan: () => (plan ??= { value: rootlessPlan() }).value };
}

/** The unshare command line that runs argv as root of the user's namespace (the range mapped when there is one). */
export function unshareArgs(plan: UserNamespacePlan | undefined, argv: string[]): string[] {
  if (!plan) return ['--map-root-user', '--', ...argv];
  // Root in the namespace is the user; ids 1..count are the range (cli-kit's reexecInUserNamespace makes the same map).
  const count = Math.min(plan.uids.count, plan.gids.count);
  return [
    '--map-root-user', `--map-users=${plan.uids.start},1,${count}`, `--map-groups=${plan.gids.start},1,${count}`,
    '--setgroups', 'allow', '--', ...argv,
  ];
}

export type StorageRequest = { op: 'create'; runtimePath: string; runtimeRoot: string; req: unknown };

/**
 * Run one storage step in `berth container storage -` inside the user's
 * namespace and return what it printed (one JSON document). Its stderr (the
 * stages' warnings) is the user's to see; its own error comes back as ours.
 */
export async function runInUserNamespace<T>(env: EngineEnv, request: StorageRequest): Promise<T> {
  if (!env.rootless) throw new EngineError('E_ROOTLESS', 'internal: no user namespace plan for a rootless storage step');
  const argv = [...env.rootless.self, 'container', 'storage', '--root', env.dataRoot, '--runroot', env.runRoot, ...(log.level === 'debug' ? ['--debug'] : []), '-'];
  const child = spawn('/usr/bin/unshare', unshareArgs(env.rootless.plan(), argv), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, BERTH_IN_USERNS: '1', BERTH_ROOT: env.dataRoot, BERTH_RUN_ROOT: env.runRoot },
    cwd: dirname(env.dataRoot),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new EngineError('E_ROOTLESS', `unshare: ${(err as NodeJS.ErrnoException).code ?? err.message}: install Debian's util-linux`)));
    child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? 9 : 0)));
    child.stdin.end(JSON.stringify(request));
  });
  mark(`storage step ${request.op} done in the user's namespace`);
  // The child reports its own failure as `Error: ...` on stderr (berth's format); pass the rest on.
  const lines = stderr.split('\n').filter((l) => l !== '');
  const errorLine = lines.find((l) => l.startsWith('Error: '));
  for (const l of lines) if (l !== errorLine) process.stderr.write(`${l}\n`);
  if (code !== 0) {
    const message = errorLine?.slice('Error: '.length) ?? (stderr.trim() || `exit status ${code}`);
    throw new EngineError('E_ROOTLESS', message, { exitCode: code === 126 || code === 127 ? code : 125 });
  }
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new EngineError('E_ROOTLESS', `berth container storage printed ${JSON.stringify(stdout.slice(0, 200))}, expected one JSON document`);
  }
}

/**
 * Remove a container's snapshot as an ordinary user. Its upper directory
 * holds files the container gave range owners (and overlayfs's work/work,
 * mode 000), which only root of the user's namespace may delete; but a whole
 * node started in that namespace for one `rm -rf` costs half a second. So:
 * the directory is renamed into the snapshotter's tmp/ (the user owns its
 * parent, so the rename needs no namespace), the metadata entry is removed
 * as the user (the snapshotter then finds no directory to delete), and
 * `rm -rf` runs in the namespace. In that order a crash leaves either an
 * entry whose directory is gone (the next remove drops it) or garbage in tmp/.
 */
export async function removeSnapshotRootless(env: EngineEnv, snapshotter: SnapshotterLike, key: string): Promise<void> {
  const info = await snapshotter.stat(key);
  await mkdir(snapshotter.tmpRoot, { recursive: true });
  const trash = join(snapshotter.tmpRoot, `remove-${process.pid}-${randomBytes(4).toString('hex')}`);
  let moved = true;
  try {
    await rename(snapshotter.dir(info), trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EngineError('E_SNAPSHOT', `rename ${snapshotter.dir(info)} to ${trash}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    moved = false;
  }
  await snapshotter.remove(key);
  if (!moved) return;
  const plan = env.rootless?.plan();
  const child = spawn('/usr/bin/unshare', unshareArgs(plan, ['/bin/rm', '-rf', '--one-file-system', trash]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (c) => resolve(c ?? -1));
  });
  // The snapshot is gone already; what is left in tmp/ is garbage berth-gc sweeps from the namespace.
  if (code !== 0) log.warn(`removing ${trash} in the user namespace: ${stderr.trim() || `exit status ${code}`}`);
  mark('snapshot removed in the user\'s namespace');
}

/** The part of @berth/snapshots' Snapshotter this file uses (the light half of the engine does not load it). */
export interface SnapshotterLike {
  readonly tmpRoot: string;
  stat(key: string): Promise<{ id: string }>;
  dir(info: { id: string }): string;
  remove(key: string): Promise<unknown>;
}

/** The annotation a rootless berth-bundle hands the rootfs mounts over in (berth-runtime mounts them). */
export const ROOTFS_MOUNTS_ANNOTATION = 'io.berth.rootfs.mounts';

/**
 * The layer directories of a rootless bundle's rootfs, top first: the
 * overlay's upperdir, then its lowerdirs in order (a bind mount is its
 * source). They are readable by the user outside the namespace: the image's
 * root-owned files are the user's own on disk.
 */
export function rootfsLayers(annotation: string): string[] {
  let mounts: Array<{ type?: string; source?: string; target?: string; options?: string[] }>;
  try {
    mounts = JSON.parse(annotation) as typeof mounts;
  } catch {
    throw new EngineError('E_BUNDLE', `config.json: annotations["${ROOTFS_MOUNTS_ANNOTATION}"] is not JSON`);
  }
  const root = mounts.filter((m) => m.target === undefined || m.target === '/' || m.target === '');
  const layers: string[] = [];
  for (const m of root.reverse()) {
    const opts = m.options ?? [];
    if (m.type === 'overlay') {
      const upper = opts.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
      const lower = opts.find((o) => o.startsWith('lowerdir='))?.slice('lowerdir='.length);
      if (upper) layers.push(upper);
      if (lower) layers.push(...lower.split(':'));
    } else if (m.source) {
      layers.push(m.source);
    }
  }
  return layers;
}

export function checkExecutableInLayers(annotation: string, args: string[], env: string[]): void {
  const layers = rootfsLayers(annotation);
  // A rootfs the engine cannot see through is the runtime's to report.
  if (layers.length === 0) return;
  checkExecutable(layers, args, env);
}

/**
 * Where a running container's files can be read from the host, for exec's
 * command and user lookups: the mounted rootfs under the bundle, or for a
 * rootless bundle (nothing mounted on the host) the init's own root,
 * /proc/PID/root, which the user may read as the owner of its namespace.
 */
export function runningRootfs(bundleRootfs: string, spec: { annotations?: Record<string, string> }, pid: number | undefined): string {
  if (spec.annotations?.[ROOTFS_MOUNTS_ANNOTATION] === undefined || pid === undefined) return bundleRootfs;
  return `/proc/${pid}/root`;
}
