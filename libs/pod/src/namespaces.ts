/**
 * A pod's namespaces, held without a process where the kernel allows it.
 *
 * A namespace lives as long as something refers to it: a process, an open fd,
 * or a bind mount of its /proc/PID/ns/X file (namespaces(7)). So the pod's
 * network, IPC and UTS namespaces are created by util-linux unshare(1) with
 * `--net=FILE --ipc=FILE --uts=FILE`, which bind-mounts each new namespace on
 * FILE before its short-lived child exits. Node cannot do this itself: it is
 * multi-threaded and unshare(2) applies to the calling thread only, so the
 * namespaces are made by a separate process (DESIGN.md, "The runtime and
 * Node's threads").
 *
 * A PID namespace is different: when its init (PID 1) exits the kernel kills
 * every other member and refuses new ones (pid_namespaces(7)), so a shared
 * PID namespace needs a holder process. catatonit -P (pause mode) is that
 * holder: a few hundred KiB that sleeps and reaps.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, isErrno, type UserNamespacePlan } from '@berth/cli-kit';

export type SharedNamespace = 'net' | 'ipc' | 'uts' | 'pid';

export interface PodNamespacePaths {
  /** Rootless pods only: the user namespace that owns the others (/proc/HOLDER/ns/user). */
  user?: string;
  network?: string;
  ipc?: string;
  uts?: string;
  pid?: string;
}

export interface PidHolder { pid: number; startTime: string }

export const HOLDER_CANDIDATES = ['/usr/libexec/podman/catatonit', '/usr/bin/catatonit'];

const NS_FILE: Record<SharedNamespace, string> = { net: 'net', ipc: 'ipc', uts: 'uts', pid: 'pid' };
const DOC_KEY: Record<SharedNamespace, keyof PodNamespacePaths> = { net: 'network', ipc: 'ipc', uts: 'uts', pid: 'pid' };

/** Make an empty file for unshare to bind-mount a namespace onto. */
function touch(path: string): void {
  closeSync(openSync(path, 'w', 0o444));
}

/**
 * Create the net/ipc/uts namespaces the pod shares under nsDir, set the
 * hostname in the UTS namespace and bring loopback up in the network
 * namespace, all in one unshare child: the hostname must be set from inside
 * the namespace, and doing it there saves an nsenter.
 */
export async function createNamespaces(nsDir: string, share: SharedNamespace[], hostname: string | undefined): Promise<PodNamespacePaths> {
  const paths: PodNamespacePaths = {};
  const args: string[] = [];
  for (const ns of share) {
    if (ns === 'pid') continue;
    const file = join(nsDir, NS_FILE[ns]);
    touch(file);
    args.push(`--${ns}=${file}`);
    paths[DOC_KEY[ns]] = file;
  }
  if (args.length === 0) return paths;
  const script = [
    // Through /proc rather than hostname(1): the tool refuses names the kernel
    // takes, such as the guide's pod name wp_pod (podman uses it as is).
    share.includes('uts') && hostname !== undefined ? 'printf %s "$1" > /proc/sys/kernel/hostname' : '',
    share.includes('net') ? 'ip link set lo up' : '',
  ].filter(Boolean).join(' && ') || 'true';
  const r = spawnSync('unshare', [...args, '--', '/bin/sh', '-c', script, 'sh', hostname ?? ''], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) {
    throw new BerthError('E_NAMESPACE', isErrno(r.error, 'ENOENT')
      ? 'unshare not found: install the Debian package util-linux'
      : `unshare ${args.join(' ')}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
  }
  if (r.status !== 0) {
    await releaseNamespaces(paths);
    throw new BerthError('E_NAMESPACE', `unshare ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  }
  return paths;
}

/** Field 22 of /proc/PID/stat: the start time that tells a reused pid apart. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function processAlive(pid: number, startTime?: string): boolean {
  const now = procStartTime(pid);
  if (now === undefined) return false;
  // A zombie is gone for our purposes: it runs nothing and holds no namespace open.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false;
  } catch { return false; }
  return startTime === undefined || startTime === now;
}

function findHolderBinary(): string {
  const found = HOLDER_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new BerthError('E_NAMESPACE', `--share pid needs a holder process and none of ${HOLDER_CANDIDATES.join(', ')} exists: install the Debian package catatonit`);
  return found;
}

/**
 * Start the PID namespace holder: `unshare --pid=FILE --fork --kill-child
 * catatonit -P`. unshare forks so that catatonit is PID 1 of the new
 * namespace, bind-mounts the namespace on FILE, and --kill-child ties
 * catatonit's life to unshare's, so killing the recorded pid ends both.
 */
export async function startPidHolder(nsDir: string): Promise<{ path: string; holder: PidHolder }> {
  const binary = findHolderBinary();
  const file = join(nsDir, 'pid');
  touch(file);
  const child = spawn('unshare', [`--pid=${file}`, '--fork', '--kill-child', binary, '-P'], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new BerthError('E_NAMESPACE', 'spawn unshare for the pid namespace holder failed');
  // Bounded wait until catatonit runs as the child: then the namespace has its init.
  const deadline = Date.now() + 5_000;
  for (;;) {
    if (holderChild(pid) !== undefined) break;
    if (!processAlive(pid) || Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new BerthError('E_NAMESPACE', `pid namespace holder (unshare --pid=${file} --fork ${binary} -P) did not start`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { path: file, holder: { pid, startTime: procStartTime(pid)! } };
}

function holderChild(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    if (kids.length === 0) return undefined;
    const comm = readFileSync(`/proc/${kids[0]}/comm`, 'utf8').trim();
    return comm === 'catatonit' ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** Stop the holder (its catatonit dies with it, and so does every process of the namespace). */
export async function stopPidHolder(holder: PidHolder): Promise<void> {
  if (!processAlive(holder.pid, holder.startTime)) return;
  try { process.kill(holder.pid, 'SIGKILL'); } catch { return; }
  const deadline = Date.now() + 5_000;
  while (processAlive(holder.pid, holder.startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/**
 * Unmount the namespace files (the last reference to each namespace goes, and
 * the kernel frees it: the veth's container end with the network namespace).
 * MNT_DETACH, because a container process may still hold the file open.
 */
export async function releaseNamespaces(paths: PodNamespacePaths): Promise<void> {
  const files = Object.values(paths).filter((p): p is string => typeof p === 'string');
  if (files.length === 0) return;
  const { umount2, MNT_DETACH } = await import('@berth/sys');
  for (const file of files) {
    try {
      umount2(file, MNT_DETACH);
    } catch (err) {
      // EINVAL: nothing is mounted there (a create that failed before unshare ran); ENOENT: already gone.
      const errno = (err as { errno?: number }).errno;
      if (errno !== 22 && errno !== 2) throw err;
    }
  }
}

/**
 * A rootless pod's namespaces, kept by one holder process. An ordinary user
 * cannot bind-mount /proc/PID/ns files (that needs CAP_SYS_ADMIN over the
 * host's mount namespace), so, as rootless podman does with its pause
 * process, catatonit -P keeps them alive:
 *
 *   unshare --user --map-root-user --map-users=START,1,COUNT --map-groups=...
 *           --setgroups allow --net --ipc --uts [--pid --fork --kill-child]
 *           -- sh -c 'hostname; lo up; exec catatonit -P'
 *
 * The user namespace comes first and owns the others, so root in it (the
 * user) may set the hostname and bring loopback up, and a container that
 * joins it by path may join the others. Its id maps are the ones berth-bundle
 * and berth-store use (root is the user, 1..COUNT the subordinate range), so
 * the rootfs's owners mean the same inside the pod; without a range only the
 * user's own id is mapped. The holder is detached (its own session) so it
 * outlives berth-pod; its pid and start time are recorded, and the document
 * names /proc/PID/ns/X of the process that is in every namespace (catatonit,
 * PID 1 of the pod's PID namespace with --share pid).
 */
export async function startNamespaceHolder(podDir: string, share: SharedNamespace[], hostname: string | undefined, plan: UserNamespacePlan | undefined, exitFifo?: string): Promise<{ paths: PodNamespacePaths; holder: PidHolder }> {
  const binary = findHolderBinary();
  const count = plan ? Math.min(plan.uids.count, plan.gids.count) : 0;
  const maps = plan
    ? ['--map-root-user', `--map-users=${plan.uids.start},1,${count}`, `--map-groups=${plan.gids.start},1,${count}`, '--setgroups', 'allow']
    : ['--map-root-user'];
  const nsFlags = share.filter((s) => s !== 'pid').map((s) => `--${s}`);
  const withPid = share.includes('pid');
  const script = [
    // sethostname(2) through busybox: util-linux hostname(1) refuses names the
    // kernel takes (the guide's wp_pod), and /proc/sys/kernel/hostname is
    // writable only by the host's root.
    share.includes('uts') && hostname !== undefined ? '{ busybox hostname "$1" 2>/dev/null || hostname "$1"; }' : '',
    share.includes('net') ? 'ip link set lo up' : '',
    // The user-mode network's exit FIFO as catatonit's stdin, opened
    // read-write (no wait for a reader): while the holder lives, slirp4netns
    // has a writer on its --exit-fd; when it ends, so does slirp4netns
    // (slirp.ts). stdin, because catatonit closes every fd above 2.
    exitFifo !== undefined ? 'exec "$2" -P 0<>"$3"' : 'exec "$2" -P',
  ].filter(Boolean).join(' && ');
  const args = ['--user', ...maps, ...nsFlags, ...(withPid ? ['--pid', '--fork', '--kill-child'] : []), '--', '/bin/sh', '-c', script, 'sh', hostname ?? '', binary, exitFifo ?? ''];
  const logFile = join(podDir, 'holder.log');
  const logFd = openSync(logFile, 'w', 0o600);
  let child;
  try {
    child = spawn('unshare', args, { detached: true, stdio: ['ignore', 'ignore', logFd] });
  } finally {
    closeSync(logFd);
  }
  let spawnError: Error | undefined;
  child.on('error', (err) => { spawnError = err; });
  child.unref();
  const pid = child.pid;
  const failed = (why: string): BerthError => {
    if (pid !== undefined) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    let log = '';
    try { log = readFileSync(logFile, 'utf8').trim(); } catch { /* none */ }
    return new BerthError('E_NAMESPACE', `pod namespace holder (unshare ${args.slice(0, args.indexOf('--')).join(' ')} ... ${binary} -P) ${why}${log ? `: ${log}` : ''}`);
  };
  if (pid === undefined) {
    await new Promise((r) => setImmediate(r));
    throw failed(spawnError && isErrno(spawnError, 'ENOENT') ? 'could not start: unshare not found (install util-linux)' : `could not start: ${spawnError?.message ?? 'no pid'}`);
  }
  // Bounded wait until catatonit runs: then every namespace exists and is set up.
  const deadline = Date.now() + 10_000;
  let nsPid: number | undefined;
  for (;;) {
    nsPid = withPid ? holderChild(pid) : readComm(pid) === 'catatonit' ? pid : undefined;
    if (nsPid !== undefined) break;
    if (!processAlive(pid)) throw failed('exited before its namespaces were ready');
    if (Date.now() > deadline) throw failed('did not start within 10s');
    await new Promise((r) => setTimeout(r, 5));
  }
  const paths: PodNamespacePaths = { user: `/proc/${nsPid}/ns/user` };
  for (const ns of share) paths[DOC_KEY[ns]] = `/proc/${nsPid}/ns/${NS_FILE[ns]}`;
  return { paths, holder: { pid, startTime: procStartTime(pid)! } };
}

function readComm(pid: number): string | undefined {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; }
}
