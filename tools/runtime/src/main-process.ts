/**
 * The runtime side of a container's life: createContainer reads like the OCI
 * lifecycle (runtime.md#lifecycle) top to bottom, then startContainer,
 * execProcess, and destroyContainer. The numbered sync points match
 * init-process.ts.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { chmodSync, closeSync, openSync, readSync, statSync, unlinkSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { constants as osConstants, userInfo } from 'node:os';
import { BerthError, log } from '@berth/cli-kit';
import { OCI_RUNTIME_VERSION, type ContainerState, type DeviceCgroupRule, type IdMapping, type LinuxResources, type Namespace, type Process, type RuntimeSpec } from '@berth/oci-spec';
import { DEFAULT_ALLOWED_DEVICES } from '@berth/cgroups';
import * as sys from '@berth/sys';
import { loadBundle } from './bundle.ts';
import { containerCgroup, newContainerCgroup, type Cgroup } from './cgroup.ts';
import { Channel } from './channel.ts';
import { runHooks } from './hooks.ts';
import { callerNotifySocket, NOTIFY_SOCKET_IN_CONTAINER, NotifyListener, prepareNotifyDir } from './notify.ts';
import { nsenterCredentialFlags, openInitBinary, userNamespacesHint, writeIdMapsRootless } from './rootless.ts';
import { isRootlessCaller } from './rootless-state.ts';
import type { InitMessage, MainMessage, SetupMessage } from './messages.ts';
import {
  claimId, fifoPath, isAlive, loadRecord, procStat, removeContainerDir, saveRecord, statusOf, writeFileAtomicSync,
  type ContainerRecord,
} from './state.ts';

type MainChannel = Channel<InitMessage, MainMessage>;

/** Undo steps registered as things are made; run in reverse when a step fails (crun's `goto fail`). */
class Cleanup {
  private steps: Array<[string, () => void | Promise<void>]> = [];
  add(what: string, step: () => void | Promise<void>): void {
    this.steps.push([what, step]);
  }
  async run(): Promise<void> {
    for (const [what, step] of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        log.warn(`cleanup: ${what}: ${(err as Error).message}`);
      }
    }
    this.steps = [];
  }
}

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds: number;
  noPivot: boolean;
  /** `run` in the foreground: a terminal without a console socket is the caller's. */
  foreground: boolean;
}

export interface Created { record: ContainerRecord; launcher: ChildProcess }

function stateFor(rec: Pick<ContainerRecord, 'id' | 'bundle' | 'config'>, status: ContainerState['status'], pid: number): ContainerState {
  return {
    ociVersion: OCI_RUNTIME_VERSION, id: rec.id, status, pid, bundle: rec.bundle,
    ...(rec.config.annotations ? { annotations: rec.config.annotations } : {}),
  };
}

/**
 * create: config.json checked, id claimed, gate (exec.fifo) made, cgroup made,
 * init stage launched in its namespaces, id maps written, cgroup joined,
 * rootfs built, hooks run, process set up, resources applied, state saved.
 * Anything made is undone when a later step fails.
 */
export async function createContainer(opts: CreateOptions): Promise<Created> {
  const t0 = performance.now();
  const step = (what: string) => log.debug(`t+${Math.round(performance.now() - t0)}ms (${Math.round(performance.now())}ms since node start): ${what}`);
  const { dir: bundle, spec, rootfs } = loadBundle(opts.bundle);
  step('config.json read and checked');
  const proc = spec.process!;
  if (proc.terminal && !opts.consoleSocket && !opts.foreground) {
    throw new BerthError('E_TTY', 'cannot allocate tty if berth-runtime will detach without setting console socket');
  }
  if (opts.consoleSocket && !proc.terminal) {
    throw new BerthError('E_TTY', 'cannot use console socket if the container will not allocate a tty (process.terminal is false)');
  }
  const cleanup = new Cleanup();
  claimId(opts.id);
  cleanup.add('remove state directory', () => removeContainerDir(opts.id));
  try {
    step('id claimed');
    // Readiness goes through a socket of the runtime's own (notify.ts).
    const notifyMount = callerNotifySocket() !== undefined ? prepareNotifyDir(opts.id) : undefined;
    // World-writable (not readable): the init may write it as a user
    // namespace's root, which is not the host's root; chmod because of umask.
    sys.mkfifo(fifoPath(opts.id), 0o622);
    chmodSync(fifoPath(opts.id), 0o622);
    const cgroupsPath = spec.linux?.cgroupsPath ?? '';
    const cgroup = newContainerCgroup(cgroupsPath, opts.id);
    cgroup.create();
    step('cgroup made');
    cleanup.add('remove cgroup', () => cgroup.destroy());
    const namespaces = spec.linux?.namespaces ?? [];
    // Namespaces joined by path other than user and pid: the init joins them
    // itself with setns(2) on fds opened here, with the runtime's privileges.
    const joinLater = namespaces.filter((n) => n.path !== undefined && n.type !== 'user' && n.type !== 'pid');
    const nsFds = joinLater.map((n) => {
      try {
        return openSync(n.path!, 'r');
      } catch (err) {
        throw new BerthError('E_CONFIG', `config.json: linux.namespaces (${n.type}): open ${n.path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    });
    const join = namespaces.filter((n) => n.path !== undefined);
    const create = namespaces.filter((n) => n.path === undefined).map((n) => n.type);
    let holder: { process: ChildProcess; path: string } | undefined;
    if (create.includes('user')) {
      holder = newUserNamespace(spec.linux?.uidMappings ?? [], spec.linux?.gidMappings ?? []);
      const h = holder;
      cleanup.add('stop the user namespace holder', () => killLauncher(h.process));
      join.unshift({ type: 'user', path: h.path });
      create.splice(create.indexOf('user'), 1);
    }
    const { launcher, channel, fdBase } = launchInit({ join, create, preserveFds: opts.preserveFds, extraFds: nsFds });
    for (const fd of nsFds) closeSync(fd);
    const joinFds: Record<string, number> = {};
    joinLater.forEach((n, i) => { joinFds[n.type] = fdBase + i; });
    cleanup.add('stop init', () => killLauncher(launcher));
    step('init stage launched');
    const initPid = await expectHello(channel);
    step('sync 1: init stage (node) is up');
    cleanup.add('stop init', () => killPid(initPid));
    // The init is in the user namespace now and keeps it alive.
    if (holder) killLauncher(holder.process);
    cgroup.addProcess(initPid);
    const extraEnv = socketActivationEnv(opts.preserveFds);
    /* sync 2. */
    const forInit = notifyMount ? { ...spec, mounts: [...(spec.mounts ?? []), notifyMount] } : spec;
    const env = notifyMount ? [...extraEnv, `NOTIFY_SOCKET=${NOTIFY_SOCKET_IN_CONTAINER}`] : extraEnv;
    await channel.send(setupMessage('create', forInit, bundle, rootfs, opts, namespaces, env, joinFds));
    /* sync 3. */
    await expect(channel, 'RootfsReady');
    step('sync 3: rootfs mounted');
    const creating = stateFor({ id: opts.id, bundle, config: spec }, 'creating', initPid);
    runHooks(spec.hooks, 'prestart', creating);
    runHooks(spec.hooks, 'createRuntime', creating);
    // createContainer hooks run in the init, inside the container's namespaces.
    /* sync 4. */
    await channel.send({ type: 'Continue' });
    /* sync 5. */
    await expect(channel, 'InitReady');
    step('sync 5: init ready at the gate');
    // Resources last: Node's own threads count against pids.max and its heap
    // against memory limits while the init stage runs.
    cgroup.apply(withDefaultDevices(spec));
    const record: ContainerRecord = {
      ociVersion: OCI_RUNTIME_VERSION, id: opts.id, pid: initPid, pidStartTime: procStat(initPid)?.startTime ?? '',
      bundle, rootfs, created: new Date().toISOString(), owner: ownerName(), config: spec, cgroupsPath,
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    saveRecord(record);
    if (opts.pidFile) writeFileAtomicSync(opts.pidFile, String(initPid));
    channel.destroy();
    step('cgroup limits applied, state saved');
    return { record, launcher };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

/**
 * The device cgroup rules to apply: the spec's own, then the devices every
 * container gets (null, zero, full, random, urandom, tty, console, ptmx, pts)
 * and the spec's linux.devices, as runc allows them after the spec's rules.
 */
function withDefaultDevices(spec: RuntimeSpec): LinuxResources {
  const r = spec.linux?.resources ?? {};
  const specDevices: DeviceCgroupRule[] = (spec.linux?.devices ?? [])
    .filter((d) => d.type === 'c' || d.type === 'b')
    .map((d) => ({ allow: true, type: d.type as 'c' | 'b', major: d.major ?? null, minor: d.minor ?? null, access: 'rwm' }));
  return { ...r, devices: [...(r.devices ?? []), ...DEFAULT_ALLOWED_DEVICES, ...specDevices] };
}

function ownerName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

/** LISTEN_FDS from the caller passes that many sockets (3..) on, as systemd socket activation asks. */
function socketActivationEnv(preserveFds: number): string[] {
  const env: string[] = [];
  const listen = Number(process.env.LISTEN_FDS);
  if (Number.isInteger(listen) && listen > 0 && listen <= preserveFds) env.push(`LISTEN_FDS=${listen}`, 'LISTEN_PID=1');
  return env;
}

function setupMessage(
  mode: 'create' | 'exec', spec: RuntimeSpec, bundle: string, rootfs: string,
  opts: { id: string; consoleSocket?: string; preserveFds: number; noPivot?: boolean },
  namespaces: Namespace[], extraEnv: string[], joinFds: Record<string, number> = {}, proc?: Process,
): SetupMessage {
  const spawned = mode === 'create' ? namespaces.filter((n) => n.path === undefined && n.type !== 'user' && n.type !== 'pid').map((n) => n.type) : [];
  return {
    type: 'Setup', mode, id: opts.id, spec, bundle, rootfs, fifo: mode === 'create' ? fifoPath(opts.id) : undefined,
    joinFds, unshare: spawned, preserveFds: opts.preserveFds, consoleSocket: opts.consoleSocket,
    extraEnv,
    noPivot: opts.noPivot ?? false, ...(proc ? { process: proc } : {}),
  };
}

/**
 * Start the init stage. The user and pid namespaces must exist before Node
 * starts (the kernel refuses CLONE_NEWUSER in a threaded process, and a new pid
 * namespace takes a fork), so util-linux `nsenter` (join by path) and
 * `unshare` (new) set them up and exec node; Node itself does the rest.
 * Node runs from a detached read-only bind mount of its binary (open_tree), so
 * a container that gets hold of /proc/PID/exe cannot write the host's node.
 */
function launchInit(o: {
  join: Namespace[]; create: string[]; preserveFds: number; extraFds?: number[];
}): { launcher: ChildProcess; channel: MainChannel; fdBase: number } {
  const exeFd = openInitBinary(process.execPath);
  const syncIndex = 3 + o.preserveFds;
  const exeIndex = syncIndex + 1;
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < syncIndex; fd++) stdio.push(fd);
  stdio.push('pipe', exeFd, ...(o.extraFds ?? []));
  const chain: string[] = [];
  const preNode = (t: string) => t === 'user' || t === 'pid';
  const joins = o.join.filter((n) => preNode(n.type));
  const creates = o.create.filter(preNode);
  const newPidNs = creates.includes('pid') || joins.some((n) => n.type === 'pid');
  // nsenter forks by default after joining a pid namespace and stays as the
  // child's parent; --no-fork leaves the fork to setsid below.
  if (joins.length > 0) chain.push('nsenter', ...joins.map((n) => `--${n.type}=${n.path}`), ...nsenterCredentialFlags(joins), ...(newPidNs ? ['--no-fork'] : []), '--');
  if (creates.length > 0) chain.push('unshare', ...creates.map((t) => `--${t}`), '--');
  if (newPidNs) {
    // A (new or joined) pid namespace takes a fork. `unshare --fork` or
    // nsenter's own fork would stay as the init's parent (and util-linux 2.38
    // turns a death by signal into exit 1); `setsid -f` forks and leaves, so
    // the process is re-parented to this one (a child subreaper) and `run` or
    // `exec` can waitid() its real status, and after a detached create or
    // exec to whoever reaps for the caller (conmon, containerd's shim), as
    // with runc: they wait for the pid in the pid file as their own child.
    sys.setChildSubreaper();
    chain.push('setsid', '-f');
  }
  chain.push(`/proc/self/fd/${exeIndex}`, ...initNodeFlags, initScript());
  const launcher = spawn(chain[0]!, chain.slice(1), {
    stdio,
    env: { UV_THREADPOOL_SIZE: '1', PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', BERTH_INIT_SYNC_FD: String(syncIndex), BERTH_INIT_EXE_FD: String(exeIndex) },
  });
  closeSync(exeFd);
  launcher.on('error', () => { /* reported through the closed channel */ });
  const channel = new Channel<InitMessage, MainMessage>(launcher.stdio[syncIndex] as Socket);
  return { launcher, channel, fdBase: exeIndex + 1 };
}

/**
 * V8 flags that keep the waiting init small and its thread count low (pids.max
 * counts them): a small young generation, one V8 worker, and no JIT — the init
 * runs its code about once, and without code space it holds ~1.8 MB less
 * (--no-expose-wasm: --jitless would otherwise warn on the container's stderr).
 * UV_THREADPOOL_SIZE=1 in its environment: libuv's pool would add four threads.
 */
const initNodeFlags = ['--max-semi-space-size=1', '--v8-pool-size=1', '--stack-size=984', '--jitless', '--no-expose-wasm'];

function initScript(): string {
  return fileURLToPath(new URL('./init.js', import.meta.url));
}

async function expect(channel: MainChannel, type: InitMessage['type']): Promise<void> {
  const msg = await channel.next();
  if (msg === undefined) throw new BerthError('E_INIT', 'container init exited before it was ready (see its stderr above)');
  if (msg.type === 'ExecFailed') throw new BerthError('E_INIT', `container init failed: ${msg.reason}`);
  if (msg.type !== type) throw new BerthError('E_SYNC', `container init: expected ${type}, got ${msg.type}`);
}

/** sync 1: node is up in its namespaces and says its host pid. */
async function expectHello(channel: MainChannel): Promise<number> {
  /* sync 1. */
  const msg = await channel.next();
  if (msg === undefined) throw new BerthError('E_INIT', 'container init exited before it was ready (see its stderr above)');
  if (msg.type !== 'Hello') throw new BerthError('E_SYNC', `container init: expected Hello, got ${msg.type}`);
  return msg.pid;
}

/**
 * A new user namespace with its id maps written, for the init to join. The
 * maps must exist before the init's execve, or the kernel takes every
 * capability away (an unmapped uid is not root in the namespace) — and
 * `unshare --user` execs right after unshare(2). So a holder process makes the
 * namespace, the runtime writes /proc/HOLDER/{uid,gid}_map, and `nsenter
 * --user` (setns gives full capabilities, then uid 0) starts the init in it.
 */
function newUserNamespace(uid: IdMapping[], gid: IdMapping[]): { process: ChildProcess; path: string } {
  // The holder is `cat` on a pipe from us: should the runtime die before it
  // kills the holder, the pipe closes and the holder goes with it, instead of
  // a stray process keeping the namespace (and its user) alive.
  const holder = spawn('unshare', ['--user', '--', 'cat'], { stdio: ['pipe', 'ignore', 'ignore'] });
  holder.on('error', () => { /* seen below as a namespace that never appears */ });
  holder.stdin?.on('error', () => { /* the holder is gone: nothing to tell it */ });
  const pid = holder.pid;
  const path = `/proc/${pid}/ns/user`;
  const ours = nsInode('/proc/self/ns/user');
  const deadline = Date.now() + 5000;
  while (pid === undefined || nsInode(path) === ours) {
    if (Date.now() > deadline || holder.exitCode !== null) {
      killLauncher(holder);
      throw new BerthError('E_USERNS', `unshare --user: no new user namespace appeared${userNamespacesHint()}`);
    }
    sleepMs(1);
  }
  // An ordinary user maps its subordinate range through newuidmap/newgidmap.
  try {
    if (isRootlessCaller()) writeIdMapsRootless(pid!, uid, gid);
    else writeIdMaps(pid!, uid, gid);
  } catch (err) {
    killLauncher(holder);
    throw err;
  }
  return { process: holder, path };
}

function writeIdMaps(pid: number, uid: IdMapping[], gid: IdMapping[]): void {
  const text = (m: IdMapping[]) => m.map((x) => `${x.containerID} ${x.hostID} ${x.size}\n`).join('');
  for (const [file, maps] of [['uid_map', uid], ['gid_map', gid]] as const) {
    try {
      writeFileSync(`/proc/${pid}/${file}`, text(maps));
    } catch (err) {
      throw new BerthError('E_IDMAP', `write /proc/${pid}/${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
}

function killLauncher(launcher: ChildProcess): void {
  if (launcher.exitCode === null && launcher.signalCode === null) launcher.kill('SIGKILL');
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  waitGone(pid, 2000);
  try {
    sys.waitExited(pid);
  } catch {
    // Not our child (nsenter's): its parent reaps it.
  }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Wait (bounded) until `pid` no longer runs. */
export function waitGone(pid: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = procStat(pid);
    if (st === undefined || st.state === 'Z' || st.state === 'X') return true;
    if (Date.now() > deadline) return false;
    sleepMs(2);
  }
}

/**
 * start: open the gate. Opening exec.fifo for reading releases the init
 * stage's blocked open for writing; it writes one byte and goes on to execve.
 * With NOTIFY_SOCKET the readiness socket is bound first, so the container
 * cannot report before anyone listens; the caller then awaits relayReady.
 */
export function startContainer(id: string): { record: ContainerRecord; notify?: NotifyListener } {
  const rec = loadRecord(id);
  const status = statusOf(rec);
  if (status === 'stopped') throw new BerthError('E_STATE', 'cannot start a container that has stopped');
  if (status !== 'created') throw new BerthError('E_STATE', `cannot start an already ${status} container`);
  const notify = NotifyListener.open(id);
  try {
    openGate(rec);
  } catch (err) {
    notify?.close();
    throw err;
  }
  rec.started = true;
  saveRecord(rec);
  runHooks(rec.config.hooks, 'poststart', stateFor(rec, 'running', rec.pid), { warnOnly: true });
  return { record: rec, ...(notify ? { notify } : {}) };
}

function openGate(rec: ContainerRecord): void {
  const id = rec.id;
  const fifo = fifoPath(id);
  const fd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    const deadline = Date.now() + 10_000;
    for (;;) {
      let n = 0;
      try {
        n = readSync(fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n === 1) break;
      if (!isAlive(rec)) throw new BerthError('E_STATE', 'cannot start a container that has stopped');
      if (Date.now() > deadline) throw new BerthError('E_START', `start ${id}: the container's init did not answer on ${fifo}`);
      sleepMs(1);
    }
  } finally {
    closeSync(fd);
  }
  unlinkSync(fifo);
}

/** All processes of the container: its cgroup's, or at least the init. */
export function containerPids(rec: ContainerRecord): number[] {
  try {
    const pids = containerCgroup(rec.cgroupsPath, rec.id).pids();
    if (pids.length > 0) return pids;
  } catch {
    // No cgroup (already removed): fall back to the init.
  }
  return isAlive(rec) ? [rec.pid] : [];
}

export function signalContainer(rec: ContainerRecord, signal: number, all: boolean): void {
  const targets = all ? containerPids(rec) : [rec.pid];
  for (const pid of targets) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new BerthError('E_KILL', `kill ${pid}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
}

/** delete: every process gone, cgroup removed, poststop hooks run, state removed. */
export async function destroyContainer(rec: ContainerRecord): Promise<void> {
  if (isAlive(rec)) {
    signalContainer(rec, 9, true);
    if (!waitGone(rec.pid, 5000)) throw new BerthError('E_DELETE', `delete ${rec.id}: init ${rec.pid} did not die after SIGKILL`);
  }
  let cgroup: Cgroup | undefined;
  try {
    cgroup = containerCgroup(rec.cgroupsPath, rec.id);
  } catch {
    cgroup = undefined;
  }
  if (cgroup) {
    if (rec.paused) await cgroup.thaw();
    await cgroup.destroy();
  }
  runHooks(rec.config.hooks, 'poststop', stateFor(rec, 'stopped', 0), { warnOnly: true });
  removeContainerDir(rec.id);
}

export interface ExecOptions {
  process: Process;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds: number;
}

function nsInode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

const procNsName: Record<string, string> = { user: 'user', pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup', mount: 'mnt', time: 'time' };

/**
 * exec: a new process in a running container. nsenter joins the user and pid
 * namespaces before Node starts; the init stage joins the others itself (the
 * mount namespace after unshare(CLONE_FS), last, once everything it needs from
 * the host is loaded), takes the container's cgroup, and execs.
 */
export async function execProcess(rec: ContainerRecord, opts: ExecOptions): Promise<{ launcher: ChildProcess; pid: number }> {
  const status = statusOf(rec);
  if (status === 'stopped') throw new BerthError('E_STATE', 'cannot exec in a stopped container');
  if (status === 'paused') throw new BerthError('E_STATE', 'cannot exec in a paused container');
  if (opts.process.terminal && !opts.consoleSocket && opts.detach) {
    throw new BerthError('E_TTY', 'cannot allocate tty if berth-runtime will detach without setting console socket');
  }
  const join: Namespace[] = [];
  const fds: number[] = [];
  const fdTypes: string[] = [];
  for (const type of ['user', 'pid', 'network', 'ipc', 'uts', 'cgroup', 'time', 'mount'] as const) {
    const theirs = `/proc/${rec.pid}/ns/${procNsName[type]}`;
    const a = nsInode(theirs);
    if (a === undefined || (type !== 'mount' && a === nsInode(`/proc/self/ns/${procNsName[type]}`))) continue;
    if (type === 'user' || type === 'pid') {
      join.push({ type, path: theirs });
    } else {
      fds.push(openSync(theirs, 'r'));
      fdTypes.push(type);
    }
  }
  const cleanup = new Cleanup();
  try {
    const { launcher, channel, fdBase } = launchInit({ join, create: [], preserveFds: opts.preserveFds, extraFds: fds });
    for (const fd of fds) closeSync(fd);
    cleanup.add('stop exec init', () => killLauncher(launcher));
    const joinFds: Record<string, number> = {};
    fdTypes.forEach((t, i) => { joinFds[t] = fdBase + i; });
    const pid = await expectHello(channel);
    try {
      containerCgroup(rec.cgroupsPath, rec.id).addProcess(pid);
    } catch (err) {
      log.debug(`exec: joining the container's cgroup: ${(err as Error).message}`);
    }
    /* sync 2. */
    await channel.send(setupMessage('exec', rec.config, rec.bundle, rec.rootfs, { id: rec.id, consoleSocket: opts.consoleSocket, preserveFds: opts.preserveFds }, [], socketActivationEnv(opts.preserveFds), joinFds, opts.process));
    /* sync 5. */
    await expect(channel, 'InitReady');
    if (opts.pidFile) writeFileAtomicSync(opts.pidFile, String(pid));
    // The socket is close-on-exec: EOF without ExecFailed means execve worked.
    const after = await channel.next();
    if (after?.type === 'ExecFailed') throw new BerthError('E_EXEC', after.reason);
    return { launcher, pid };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

/**
 * Wait for the container's process to end; its exit status the way a shell
 * reports it (128+N after signal N). When the init is not the launcher itself
 * (setsid -f forked it into its pid namespace), it is an orphan re-parented to
 * this subreaper, waited for with waitid().
 */
export function waitExit(launcher: ChildProcess, pid: number): Promise<number> {
  if (pid !== launcher.pid) {
    return new Promise((resolve) => {
      // Backing off from 1 ms: a container that exits at once (`run ... true`)
      // is seen within a few ms, a long-running one is polled 20 times a second.
      let delay = 1;
      const poll = () => {
        let r: sys.WaitResult | undefined;
        try {
          r = sys.waitExited(pid);
        } catch (err) {
          // ECHILD until setsid's parent has exited and the init is re-parented here.
          const alive = procStat(pid);
          r = alive && alive.state !== 'Z' ? undefined : { pid, code: 255 };
          if (r === undefined && !(err instanceof sys.SysError && err.errnoName === 'ECHILD')) throw err;
        }
        if (r === undefined) {
          delay = Math.min(delay * 2, 50);
          return void setTimeout(poll, delay);
        }
        resolve(r.code !== undefined ? r.code : 128 + (r.signal ?? 0));
      };
      poll();
    });
  }
  return new Promise((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? sysSignal(signal) : 0));
    };
    if (launcher.exitCode !== null || launcher.signalCode !== null) done(launcher.exitCode, launcher.signalCode);
    else launcher.on('exit', done);
  });
}

function sysSignal(name: NodeJS.Signals): number {
  return osConstants.signals[name] ?? 0;
}

/** Forward the signals a user sends to `run`/`exec` to the container's process. */
export function forwardSignals(pid: number): () => void {
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
  const handler = (s: NodeJS.Signals) => {
    try { process.kill(pid, s); } catch { /* gone */ }
  };
  for (const s of sigs) process.on(s, handler);
  return () => { for (const s of sigs) process.off(s, handler); };
}

