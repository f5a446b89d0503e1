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
import { closeSync, constants as fsConstants, openSync, readlinkSync, writeSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { OCI_RUNTIME_VERSION, type Process } from '@berth/oci-spec';
import * as sys from '@berth/sys';
import { Channel } from './channel.ts';
import type { InitMessage, MainMessage, SetupMessage } from './messages.ts';
import { applyOomScoreAdj, applyRlimits, finalizeAndExec, planExec } from './process-setup.ts';
import { runHooks } from './hooks.ts';
import { bindConsole, bindNotifySocket, createDevices, enterRootfs, finishRootfs, mountAll, prepareRoot, type RootfsContext } from './rootfs.ts';

type InitChannel = Channel<MainMessage, InitMessage>;

/** open(2) flags Node's fs.constants does not export (x86_64 and aarch64 values). */
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

const unshareFlags: Record<string, number> = {
  mount: sys.CLONE_NEWNS, uts: sys.CLONE_NEWUTS, ipc: sys.CLONE_NEWIPC, network: sys.CLONE_NEWNET,
  cgroup: sys.CLONE_NEWCGROUP, time: sys.CLONE_NEWTIME,
};

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
    await chan.send({ type: 'Hello', pid: Number(readlinkSync('/proc/self')) });
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
  const mnt = setup.joinFds.mount;
  if (mnt !== undefined) sys.joinMountNamespace(mnt, 'mount namespace');
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
  if (setup.notifySocket) bindNotifySocket(ctx, setup.notifySocket);
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
  joinNamespaces(setup);
  let consoleFd: number | undefined;
  if (proc.terminal && setup.consoleSocket) {
    const pty = sys.openPty('/dev/pts/ptmx', '/dev/pts');
    if (proc.consoleSize) sys.setWindowSize(pty.master, proc.consoleSize.height, proc.consoleSize.width);
    consoleFd = openSync(pty.slavePath, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
    sys.sendFd(setup.consoleSocket, pty.master);
    closeSync(pty.master);
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
