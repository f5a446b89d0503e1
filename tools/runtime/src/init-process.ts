/**
 * The init stage: a Node process started by `unshare`/`nsenter` already inside
 * the container's user and pid namespaces (those must be entered by a
 * single-threaded process, see DESIGN.md). It builds the rest of the container
 * and becomes the container's process with execve.
 *
 * Sync points match main-process.ts:
 *   sync 1. -> Hello
 *   sync 2. <- Setup
 *   sync 3. -> RootfsReady   (create)
 *   sync 4. <- Continue      (create)
 *   sync 5. -> InitReady | ExecFailed(reason)
 */
import { closeSync, constants as fsConstants, openSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { OCI_RUNTIME_VERSION, type Process } from '@berth/oci-spec';
import * as sys from '@berth/sys';
import { Channel } from './channel.ts';
import type { InitMessage, MainMessage, SetupMessage } from './messages.ts';
import { applyOomScoreAdj, applyRlimits, finalizeAndExec, planExec } from './process-setup.ts';
import { runHooks } from './hooks.ts';
import { bindConsole, createDevices, enterRootfs, finishRootfs, mountAll, prepareRoot, type RootfsContext } from './rootfs.ts';

type InitChannel = Channel<MainMessage, InitMessage>;

/** open(2) flags Node's fs.constants does not export (x86_64 and aarch64 values). */
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

const unshareFlags: Record<string, number> = {
  mount: sys.CLONE_NEWNS, uts: sys.CLONE_NEWUTS, ipc: sys.CLONE_NEWIPC, network: sys.CLONE_NEWNET,
  cgroup: sys.CLONE_NEWCGROUP, time: sys.CLONE_NEWTIME,
};

/** This process's pid in the host's pid namespace (what the state JSON says). */
let hostPid = 0;

export async function initProcess(): Promise<never> {
  // No container process may open this one through /proc while it holds
  // host fds: non-dumpable makes /proc/PID/{fd,root,exe,mem} root-only.
  sys.setDumpable(false);
  const syncFd = Number(process.env.BERTH_INIT_SYNC_FD);
  const exeFd = Number(process.env.BERTH_INIT_EXE_FD);
  delete process.env.BERTH_INIT_SYNC_FD;
  delete process.env.BERTH_INIT_EXE_FD;
  // The node binary was run from this fd (a read-only detached mount); done with it.
  if (Number.isInteger(exeFd) && exeFd > 2) closeSync(exeFd);
  const chan: InitChannel = Channel.fromFd(syncFd);
  let ready = false;
  try {
    /* sync 1. */
    // /proc is still the host's procfs here, so /proc/self names the host pid
    // even inside a new pid namespace.
    hostPid = Number(readlinkSync('/proc/self'));
    await chan.send({ type: 'Hello', pid: hostPid });
    /* sync 2. */
    const setup = await chan.next();
    if (setup?.type !== 'Setup') throw new BerthError('E_SYNC', 'init: the runtime went away before setup');
    if (setup.mode === 'exec') await execStage(chan, setup, () => { ready = true; });
    else await createStage(chan, setup, () => { ready = true; });
  } catch (err) {
    const reason = (err as Error)?.message ?? String(err);
    if (!ready) {
      await chan.send({ type: 'ExecFailed', reason });
    } else {
      // After InitReady the runtime may be gone (a detached create); the
      // container's stderr is the only place left to say why.
      try { writeSync(2, `berth-runtime init: ${reason}\n`); } catch { /* stderr closed */ }
    }
    process.exit(ready ? 127 : 1);
  }
  throw new Error('unreachable');
}

function joinNamespaces(setup: SetupMessage): void {
  // The mount namespace last: after it, paths mean the container's paths.
  for (const [type, fd] of Object.entries(setup.joinFds)) {
    if (type !== 'mount') sys.setns(fd, 0, `${type} namespace`);
  }
  let flags = 0;
  for (const t of setup.unshare) flags |= unshareFlags[t] ?? 0;
  if (flags) sys.unshare(flags);
  if (setup.unshare.includes('time')) writeTimeOffsets(setup);
  const mnt = setup.joinFds.mount;
  if (mnt !== undefined) sys.joinMountNamespace(mnt, 'mount namespace');
}

/**
 * linux.timeOffsets of a new time namespace (time_namespaces(7)): written to
 * /proc/self/timens_offsets, which describes the namespace this process's
 * children (and, since Linux 5.11, its own next execve) enter, and is only
 * writable while no process lives in it: so right after unshare.
 */
function writeTimeOffsets(setup: SetupMessage): void {
  const offsets = (setup.spec.linux as { timeOffsets?: Record<string, { secs?: number; nanosecs?: number }> } | undefined)?.timeOffsets ?? {};
  const lines = Object.entries(offsets).map(([clock, o]) => {
    if (clock !== 'monotonic' && clock !== 'boottime') throw new BerthError('E_CONFIG', `config.json: linux.timeOffsets.${clock}: only monotonic and boottime can be offset`);
    return `${clock} ${Math.trunc(o.secs ?? 0)} ${Math.trunc(o.nanosecs ?? 0)}\n`;
  });
  for (const line of lines) {
    try {
      writeFileSync('/proc/self/timens_offsets', line);
    } catch (err) {
      throw new BerthError('E_TIMENS', `write /proc/self/timens_offsets (${line.trim()}): ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
}

/** Load the shared libraries the last steps need while the host's files are still visible. */
function preloadLibraries(setup: SetupMessage): void {
  sys.koffi().load('libc.so.6');
  if (setup.spec.linux?.seccomp) sys.koffi().load('libseccomp.so.2');
}

async function createStage(chan: InitChannel, setup: SetupMessage, markReady: () => void): Promise<void> {
  const spec = setup.spec;
  const proc = spec.process as Process;
  const ns = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  const ctx: RootfsContext = {
    spec, rootfs: setup.rootfs, bundle: setup.bundle,
    userns: ns.has('user'), cgroupns: ns.has('cgroup') && !spec.linux?.namespaces?.find((n) => n.type === 'cgroup')?.path,
  };
  preloadLibraries(setup);
  joinNamespaces(setup);
  // The gate, opened as O_PATH while its host path is still reachable.
  const fifo = openSync(setup.fifo!, O_PATH | O_CLOEXEC);
  prepareRoot(ctx);
  mountAll(ctx);
  createDevices(ctx);
  let consoleFd: number | undefined;
  if (proc.terminal && setup.consoleSocket) {
    const pty = sys.openPty(`${setup.rootfs}/dev/pts/ptmx`, `${setup.rootfs}/dev/pts`);
    if (proc.consoleSize) sys.setWindowSize(pty.master, proc.consoleSize.height, proc.consoleSize.width);
    bindConsole(ctx, pty.slavePath);
    consoleFd = openSync(pty.slavePath, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
    sys.sendFd(setup.consoleSocket, pty.master);
    closeSync(pty.master);
  }
  /* sync 3. */
  await chan.send({ type: 'RootfsReady' });
  /* sync 4. */
  const cont = await chan.next();
  if (cont?.type !== 'Continue') throw new BerthError('E_SYNC', 'init: the runtime went away during hooks');
  // createContainer hooks: after createRuntime, before pivot_root, in the
  // container's namespaces (config.md#createcontainer-hooks), so from here;
  // their paths still resolve in the runtime's tree.
  runHooks(spec.hooks, 'createContainer', {
    ociVersion: OCI_RUNTIME_VERSION, id: setup.id, status: 'creating', pid: hostPid, bundle: setup.bundle,
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  });
  if (spec.hostname !== undefined && ns.has('uts')) sys.sethostname(spec.hostname);
  if (spec.domainname !== undefined && ns.has('uts')) sys.setdomainname(spec.domainname);
  enterRootfs(ctx, setup.noPivot);
  finishRootfs(ctx);
  chdirTo(proc.cwd);
  const plan = planExec(proc, setup.extraEnv);
  applyRlimits(proc);
  applyOomScoreAdj(proc);
  /* sync 5. */
  await chan.send({ type: 'InitReady' });
  markReady();
  chan.destroy();
  // The gate: opening a FIFO for writing blocks until `start` opens it for reading.
  const gate = openSync(`/proc/self/fd/${fifo}`, fsConstants.O_WRONLY);
  writeSync(gate, '0');
  closeSync(gate);
  closeSync(fifo);
  // startContainer hooks run after start, in the container, before the program.
  runHooks(spec.hooks, 'startContainer', { ociVersion: OCI_RUNTIME_VERSION, id: setup.id, status: 'running', pid: 1, bundle: setup.bundle });
  finalizeAndExec(proc, plan, { seccomp: spec.linux?.seccomp, preserveFds: setup.preserveFds, consoleFd });
}

async function execStage(chan: InitChannel, setup: SetupMessage, markReady: () => void): Promise<void> {
  const proc = setup.process!;
  preloadLibraries(setup);
  // The console socket is a host path, gone once the container's mount
  // namespace is joined; an O_PATH fd keeps its inode reachable, and
  // connect(2) to /proc/self/fd/N follows it to the socket.
  const consoleSocket = proc.terminal && setup.consoleSocket ? openSync(setup.consoleSocket, O_PATH | O_CLOEXEC) : undefined;
  joinNamespaces(setup);
  let consoleFd: number | undefined;
  if (consoleSocket !== undefined) {
    const pty = sys.openPty('/dev/pts/ptmx', '/dev/pts');
    if (proc.consoleSize) sys.setWindowSize(pty.master, proc.consoleSize.height, proc.consoleSize.width);
    consoleFd = openSync(pty.slavePath, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
    sys.sendFd(`/proc/self/fd/${consoleSocket}`, pty.master);
    closeSync(pty.master);
    closeSync(consoleSocket);
  }
  chdirTo(proc.cwd);
  const plan = planExec(proc, setup.extraEnv);
  applyRlimits(proc);
  applyOomScoreAdj(proc);
  /* sync 5. */
  await chan.send({ type: 'InitReady' });
  try {
    finalizeAndExec(proc, plan, { seccomp: setup.spec.linux?.seccomp, preserveFds: setup.preserveFds, consoleFd });
  } catch (err) {
    await chan.send({ type: 'ExecFailed', reason: (err as Error).message });
    process.exit(127);
  }
  markReady();
}

function chdirTo(cwd: string): void {
  try {
    process.chdir(cwd);
  } catch (err) {
    throw new BerthError('E_CWD', `chdir ${cwd}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}
