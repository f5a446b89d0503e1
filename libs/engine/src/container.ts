import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '@berth/cli-kit';
import { ImageLayout, writeFileAtomic } from '@berth/content';
import { attachContainer, createPod, detachContainer, inspectPod, removePod, userModeNetworkProblem, type PodDocument } from '@berth/pod';
import { isMountPoint, mountAll, resolveImage, Snapshotter, unmountAll, unpackImage, type ResolvedImage } from '@berth/snapshots';
import { generateBundle, serializeSpec, type RootfsDocument } from '@berth/bundle-generator/generate';
import type { BundleOptions } from '@berth/bundle-generator/spec';
import { EngineError, ExitCode } from './errors.ts';
import { checkExecutable } from './executable.ts';
import { candidateNames, findImage } from './images.ts';
import { readExitFile, startMonitor } from './monitor.ts';
import { paths, type EngineEnv } from './paths.ts';
import { checkExecutableInLayers, checkRootlessRuntime, isRootlessCaller, removeSnapshotRootless, ROOTFS_MOUNTS_ANNOTATION, runInUserNamespace, type StorageRequest } from './rootless.ts';
import { mark, processAlive, procStartTime, sleep } from './proc.ts';
import {
  deleteRecordDir, generateName, newContainerId, readRecord, reserveRecord, saveRecord, updateRecord, validateName,
  withContainerLock, type ContainerRecord, type RestartPolicy,
} from './records.ts';
import { isRunning, observedStatus, readSpec, runtimeFor } from './status.ts';
import { signalNumber } from './runtime.ts';
import type { VolumeMountRequest } from './volume-mounts.ts';
import { removeAnonymousVolumes } from './volume-store.ts';
import { ensureVolumes, planVolumes, prepareVolumes } from './volume-use.ts';
import { resumeAfterSignal } from './pause.ts';

/**
 * The container lifecycle, composed of the stages in the order podman runs
 * them. create: name reserved → image layers unpacked and an active snapshot
 * prepared (berth-store) → bundle generated with the rootfs mounted
 * (berth-bundle) → record written; no runtime call yet, like podman create.
 * start: monitor (conmon) runs the runtime's create → runtime start.
 * exit: conmon writes the status and runs `berth container cleanup`.
 */

export interface CreateRequest {
  image: ResolvedImage;
  name?: string;
  options: BundleOptions;
  pod?: string;
  publish: string[];
  /**
   * A private network: `slirp4netns[:OPTIONS]` (an ordinary user's), or as
   * root `bridge` or a CNI network's name (`berth network create`). The
   * container gets a pod of its own on it, as with -p (whose network it also
   * sets).
   */
  network?: string;
  /** Set by the rootless front half: `pod` is the one-container pod it made for -p/--network. */
  implicitPod?: boolean;
  restart: RestartPolicy;
  autoRemove: boolean;
  tty: boolean;
  interactive: boolean;
  labels: Record<string, string>;
  stopTimeout?: number;
  /** Named and anonymous volumes from -v/--mount (volume-mounts.ts); host binds stay in options.mounts. */
  volumes?: VolumeMountRequest[];
}

/** Resolve what `run`/`create` were given to the stored image, or undefined when it must be pulled. */
export async function resolveForRun(env: EngineEnv, nameOrId: string): Promise<ResolvedImage | undefined> {
  const layout = new ImageLayout(paths.images(env));
  if (!(await layout.exists())) return undefined;
  // A name is found in index.json alone; only an id prefix needs every image's config read.
  const byName = (await layout.list()).find((e) => e.ref !== undefined && candidateNames(nameOrId).includes(e.ref));
  if (byName) return resolveImage(layout, { kind: 'image', reference: byName.ref, manifest: byName.descriptor });
  const img = await findImage(env, nameOrId);
  if (!img) return undefined;
  return resolveImage(layout, { kind: 'image', reference: img.names[0], manifest: img.manifest });
}

export function imageId(image: ResolvedImage): string {
  return image.config.digest.slice('sha256:'.length);
}

export async function createContainer(env: EngineEnv, runtimePath: string, runtimeRoot: string, req: CreateRequest): Promise<ContainerRecord> {
  if (req.pod !== undefined && (req.publish.length > 0 || req.network !== undefined) && !req.implicitPod) {
    throw new EngineError('E_USAGE', 'invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod');
  }
  const slirp = req.network !== undefined && /^slirp4netns(:|$)/.test(req.network);
  if (slirp && !(env.rootless && isRootlessCaller())) {
    throw new EngineError('E_USAGE', `--network ${req.network}: berth runs slirp4netns for ordinary users only; as root -p gives the container the CNI bridge network`);
  }
  if (env.rootless && isRootlessCaller()) {
    // Checked here too, before the pod named after it is made.
    if (req.name !== undefined) validateName(req.name);
    if (req.pod !== undefined) {
      // Found as the user before the namespace is entered, so a wrong name costs no storage step.
      const pod = await inspectPod(req.pod, { runRoot: env.runRoot }).catch((err: unknown) => {
        throw new EngineError('E_NO_POD', `--pod ${req.pod}: no pod with name or ID ${req.pod} found: no such pod`, { cause: err });
      });
      if (pod.status === 'Dead') {
        throw new EngineError('E_POD_DEAD', `--pod ${req.pod}: the process holding the pod's namespaces is gone, so nothing can join it; remove it with berth pod rm ${pod.name}`);
      }
    }
    checkRootlessRuntime(runtimePath);
    // -p or --network slirp4netns: a one-container pod with slirp4netns, made
    // here as the user (its holder must be the user's own process, not one in
    // berth's storage namespace) before any storage work. A user who cannot
    // open /dev/net/tun is told so first, in the words of the flag typed.
    let own: PodDocument | undefined;
    if (req.publish.length > 0 || req.network !== undefined) {
      const network = req.network ?? 'slirp4netns';
      // A CNI network's name is refused by createPod (root's); /dev/net/tun matters only to slirp4netns.
      const problem = req.network === undefined || slirp ? userModeNetworkProblem(req.publish.length > 0 ? req.publish.map((p) => `-p ${p}`).join(' ') : `--network ${network}`) : undefined;
      if (problem !== undefined) throw new EngineError('E_ROOTLESS', problem);
      own = await createPod({ publish: req.publish, network, share: ['net'], runRoot: env.runRoot });
      mark('pod made (slirp4netns, ports forwarded)');
    }
    const step = own ? { ...req, publish: [], network: undefined, pod: own.id, implicitPod: true } : req;
    try {
      // Unpack, snapshot and bundle in the user's namespace (rootless.ts says why there).
      return await runInUserNamespace<ContainerRecord>(env, { op: 'create', runtimePath, runtimeRoot, req: step });
    } catch (err) {
      if (own) await removePod(own.id, { force: true, runRoot: env.runRoot }).catch((e: unknown) => log.debug(`undo create: ${(e as Error).message}`));
      throw err;
    }
  }
  const id = newContainerId();
  const name = req.name !== undefined ? validateName(req.name) : generateName();
  // Volumes are named before the record is reserved, so from its first moment it shows them in use.
  const volumes = planVolumes(env, req.volumes ?? [], req.options.mounts);
  const rec: ContainerRecord = {
    id, name, created: new Date().toISOString(),
    image: { reference: req.image.reference, id: imageId(req.image), manifest: req.image.manifest.digest },
    command: [], runtime: runtimePath, runtimeRoot,
    bundle: paths.bundle(env, id), snapshot: id,
    ports: req.publish, stopSignal: 'SIGTERM', stopTimeout: req.stopTimeout ?? 10,
    restart: req.restart, autoRemove: req.autoRemove, tty: req.tty, interactive: req.interactive, labels: req.labels,
    ...(volumes.recordMounts.length > 0 ? { mounts: volumes.recordMounts } : {}),
    state: { status: 'created', restartCount: 0 },
  };
  // The name is reserved first (under a lock), so a clash fails before any work.
  await reserveRecord(env, rec);
  mark('name reserved');
  const undo: Array<() => Promise<unknown>> = [() => deleteRecordDir(env, id)];
  try {
    const options: BundleOptions = { ...req.options, mounts: volumes.bundleMounts };
    undo.push(await ensureVolumes(env, volumes, id));
    if (req.pod !== undefined || req.publish.length > 0 || req.network !== undefined) {
      let podId: string;
      let implicit = false;
      if (req.pod !== undefined) {
        podId = req.pod;
        implicit = req.implicitPod === true;
      } else {
        // podman gives a container with -p or --network NAME its own network
        // namespace on that network, the ports forwarded; berth makes that a
        // pod of one, removed with it. The pod keeps its own id-based name
        // (pod_ID): one taken from the container's would outlive a rename
        // and block the old name's next use.
        const doc = await createPod({ publish: req.publish, runRoot: env.runRoot, share: ['net'], ...(req.network !== undefined ? { network: req.network } : {}) });
        podId = doc.id;
        implicit = true;
        undo.push(() => removePod(doc.id, { force: true, runRoot: env.runRoot }));
      }
      const pod = await inspectPod(podId, { runRoot: env.runRoot }).catch((err: unknown) => {
        throw new EngineError('E_NO_POD', `${podId}: no pod with name or ID ${podId} found: no such pod`, { cause: err });
      });
      rec.pod = { id: pod.id, name: pod.name, ...(implicit ? { implicit: true } : {}) };
      // The same fields berth-bundle --pod reads from berth-pod's document.
      options.pod = {
        // A rootless pod's holder owns its namespaces in its user namespace, which the container joins too.
        ...(pod.namespaces.user ? { user: pod.namespaces.user } : {}),
        ...(pod.namespaces.network ? { network: pod.namespaces.network } : {}),
        ...(pod.namespaces.ipc ? { ipc: pod.namespaces.ipc } : {}),
        ...(pod.namespaces.uts ? { uts: pod.namespaces.uts } : {}),
        ...(pod.namespaces.pid ? { pid: pod.namespaces.pid } : {}),
        ...(pod.hostname ? { hostname: pod.hostname } : {}),
        ...(pod.ip ? { ip: pod.ip } : {}),
        ...(pod.dns ? { dns: pod.dns } : {}),
        ...(pod.network === 'host' ? { hostNetwork: true } : {}),
      };
      if (pod.ports.length > 0) rec.ports = pod.ports.map((p) => `${p.hostIP ? `${p.hostIP}:` : ''}${p.hostPort}:${p.containerPort}/${p.protocol}`);
    }

    const layout = new ImageLayout(paths.images(env));
    const snapshotter = new Snapshotter(env.dataRoot);
    const layers = await unpackImage(snapshotter, layout, req.image);
    mark('layers unpacked');
    const parent = layers.length > 0 ? layers[layers.length - 1]!.chainID : undefined;
    await snapshotter.prepare(id, parent, { labels: { 'berth.container': id, 'berth.image.config': JSON.stringify(req.image.config), 'berth.image.manifest': JSON.stringify(req.image.manifest), 'berth.image.reference': req.image.reference ?? '' } });
    undo.push(() => snapshotter.remove(id));
    mark('snapshot prepared');
    const rootfs: RootfsDocument = {
      kind: 'rootfs', snapshot: id, root: env.dataRoot, store: layout.root,
      mounts: await snapshotter.mounts(id),
      image: { reference: req.image.reference, manifest: req.image.manifest, config: req.image.config },
    };
    undo.push(() => unmountAll(join(rec.bundle, 'rootfs')));
    await generateBundle({ input: { from: 'document', doc: rootfs }, options, id, bundleDir: rec.bundle, dataRoot: env.dataRoot });
    mark('bundle generated');
    const spec = readSpec(rec.bundle);
    if (req.tty) {
      // The runtime allocates a pty only when config.json asks for one: detached,
      // conmon -t then receives it over --console-socket; in the foreground runc relays it.
      spec.process!.terminal = true;
      if (!spec.process!.env?.some((e) => e.startsWith('TERM='))) spec.process!.env = [...(spec.process!.env ?? []), 'TERM=xterm'];
      await writeFileAtomic(join(rec.bundle, 'config.json'), serializeSpec(spec));
    }
    rec.command = spec.process?.args ?? [];
    rec.stopSignal = spec.annotations?.['org.opencontainers.image.stopSignal'] ?? 'SIGTERM';
    await prepareVolumes(env, volumes, rec.bundle, spec);
    if (rec.pod) await attachContainer(rec.pod.id, id, runtimeRoot, { runRoot: env.runRoot });
    await saveRecord(env, rec);
    return rec;
  } catch (err) {
    for (const fn of undo.reverse()) await fn().catch((e: unknown) => log.debug(`undo create: ${(e as Error).message}`));
    throw err;
  }
}

/**
 * After a reboot (or a wiped /run) the overlay mount under the bundle is
 * gone with everything else that was not on disk: mount it again from the
 * snapshot, which is on disk.
 */
async function ensureRootfs(env: EngineEnv, rec: ContainerRecord): Promise<void> {
  // A rootless bundle's rootfs is mounted by the runtime, inside the container's namespaces.
  if (readSpec(rec.bundle).annotations?.[ROOTFS_MOUNTS_ANNOTATION] !== undefined) return;
  const target = join(rec.bundle, 'rootfs');
  if (await isMountPoint(target)) return;
  const snapshotter = new Snapshotter(env.dataRoot);
  await mountAll(await snapshotter.mounts(rec.snapshot), target);
}

/**
 * podman's 126/127 before the runtime is asked. A rootless bundle's rootfs
 * is an empty directory until the runtime mounts it, so there the command is
 * looked up through the overlay's layers, top first, as the mount will show them.
 */
function checkCommand(bundle: string): void {
  const spec = readSpec(bundle);
  const args = spec.process?.args ?? [];
  const env = spec.process?.env ?? [];
  const rootless = spec.annotations?.[ROOTFS_MOUNTS_ANNOTATION];
  if (rootless !== undefined) checkExecutableInLayers(rootless, args, env);
  else checkExecutable(join(bundle, 'rootfs'), args, env);
}

/** Start a created or exited container under its monitor. The caller holds no lock; this takes the container's. */
export async function startContainer(env: EngineEnv, id: string, exitCommand: string[]): Promise<ContainerRecord> {
  return withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec) throw new EngineError('E_NO_CONTAINER', `no container with name or ID "${id}" found: no such container`);
    if (isRunning(rec)) return rec;
    await startLocked(env, rec, exitCommand);
    return rec;
  });
}

async function startLocked(env: EngineEnv, rec: ContainerRecord, exitCommand: string[]): Promise<void> {
  const runtime = runtimeFor(env, rec);
  // A previous run's runtime state (the monitor's cleanup may not have run) must go first.
  await runtime.delete(rec.id);
  await ensureRootfs(env, rec);
  checkCommand(rec.bundle);
  mkdirSync(paths.runDir(env, rec.id), { recursive: true, mode: 0o700 });
  const { pid, monitorPid } = await startMonitor({ env, rec, exitCommand });
  try {
    await runtime.start(rec.id);
  } catch (err) {
    await runtime.kill(rec.id, 'SIGKILL', { allowFail: true });
    await runtime.delete(rec.id);
    rec.state = { ...rec.state, status: 'exited', exitCode: 125, finishedAt: new Date().toISOString() };
    await saveRecord(env, rec);
    throw err;
  }
  rec.state = {
    ...rec.state, status: 'running', pid, pidStartTime: procStartTime(pid), monitorPid,
    startedAt: new Date().toISOString(), stoppedByUser: false, foreground: false,
  };
  delete rec.state.exitCode;
  delete rec.state.finishedAt;
  delete rec.state.paused;
  await saveRecord(env, rec);
}

export interface ForegroundStdio { tty: boolean; interactive: boolean }

/**
 * `berth run` without -d: the runtime's own `run` in the foreground, no
 * monitor. With -t, config.json asks for a terminal and the runtime gets
 * berth's own stdio: runc makes a pty in the container and relays it (raw
 * mode, window size, SIGWINCH), berth-runtime hands the caller's terminal on;
 * either way keys and Ctrl-C reach the container as typed. Without -t,
 * its stdout and stderr come through pipes and are also written to the log
 * file in the monitor's k8s-file format, so `berth logs` works afterwards.
 */
export async function runForeground(env: EngineEnv, id: string, stdio: ForegroundStdio): Promise<number> {
  const rec = readRecord(env, id)!;
  const runtime = runtimeFor(env, rec);
  await runtime.delete(rec.id);
  await ensureRootfs(env, rec);
  checkCommand(rec.bundle);
  mkdirSync(paths.runDir(env, rec.id), { recursive: true, mode: 0o700 });
  const pidFile = join(paths.runDir(env, rec.id), 'pidfile');
  rmSync(pidFile, { force: true });
  const argv = runtime.argv('run', '--bundle', rec.bundle, '--pid-file', pidFile, rec.id);
  log.debug(`runtime: ${runtime.path} ${argv.join(' ')}`);
  const child = spawn(runtime.path, argv, {
    stdio: [stdio.interactive || stdio.tty ? 'inherit' : 'ignore', stdio.tty ? 'inherit' : 'pipe', stdio.tty ? 'inherit' : 'pipe'],
  });
  // Listen for the exit before any await: a container that exits at once would otherwise be missed.
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new EngineError('E_RUNTIME', `run ${runtime.path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    child.on('close', (c, sig) => resolve(c ?? 128 + (sig === 'SIGKILL' ? 9 : 15)));
  });
  const logFile = new K8sLogWriter(paths.log(env, rec.id));
  if (!stdio.tty) {
    child.stdout!.on('data', (d: Buffer) => { process.stdout.write(d); logFile.write('stdout', d); });
    child.stderr!.on('data', (d: Buffer) => { process.stderr.write(d); logFile.write('stderr', d); });
  }
  // Signals to berth go to the container (through the runtime, which forwards them);
  // with a tty, Ctrl-C already reaches the whole foreground process group.
  const forward = (sig: NodeJS.Signals) => { if (!stdio.tty || sig !== 'SIGINT') child.kill(sig); };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  rec.state = { ...rec.state, status: 'running', pid: child.pid, pidStartTime: child.pid ? procStartTime(child.pid) : undefined, startedAt: new Date().toISOString(), foreground: true, stoppedByUser: false };
  delete rec.state.exitCode;
  delete rec.state.paused;
  await saveRecord(env, rec);
  mark('runtime run spawned');
  const code = await exited;
  mark('runtime run exited');
  // No pid file: the runtime never got the container to run (its own error is
  // already on stderr), which podman reports as 126, not as the container's status.
  const created = existsSync(pidFile);
  for (const s of signals) process.off(s, forward);
  logFile.close();
  await withContainerLock(env, rec.id, async () => {
    const now = readRecord(env, rec.id);
    if (!now) return;
    now.state = { ...now.state, status: 'exited', exitCode: code, finishedAt: new Date().toISOString() };
    delete now.state.pid;
    await saveRecord(env, now);
  });
  await runtime.delete(rec.id);
  if (!created && code !== 0) throw new EngineError('E_RUNTIME', `OCI runtime ${runtime.path} could not run the container (exit status ${code}): OCI runtime error`, { exitCode: ExitCode.cannotInvoke });
  return code;
}

/** Appends the container's output in the k8s-file format: `RFC3339NANO STREAM F|P TEXT`. */
class K8sLogWriter {
  private partial: Record<string, string> = { stdout: '', stderr: '' };
  private lines: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly path: string) {}
  write(stream: 'stdout' | 'stderr', data: Buffer): void {
    const text = this.partial[stream] + data.toString('utf8');
    const parts = text.split('\n');
    this.partial[stream] = parts.pop()!;
    for (const line of parts) this.lines.push(`${new Date().toISOString()} ${stream} F ${line}\n`);
    this.timer ??= setTimeout(() => this.flush(), 50);
  }
  private flush(): void {
    this.timer = undefined;
    if (this.lines.length === 0) return;
    writeFileSync(this.path, this.lines.join(''), { flag: 'a' });
    this.lines = [];
  }
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of ['stdout', 'stderr'] as const) if (this.partial[s]) this.lines.push(`${new Date().toISOString()} ${s} P ${this.partial[s]}\n`);
    this.flush();
  }
}

/**
 * What the monitor's exit command runs (and stop, rm and wait run too, so the
 * outcome never depends on the monitor getting there first): record the exit
 * status, delete the runtime state, then apply the restart policy or --rm.
 * Idempotent under the container's lock.
 */
export type CleanupOutcome = 'none' | 'exited' | 'restarted' | 'removed';

export async function cleanupContainer(env: EngineEnv, id: string, exitCommand: string[]): Promise<{ outcome: CleanupOutcome; exitCode?: number }> {
  let exitCode: number | undefined;
  const outcome = await withContainerLock(env, id, async (): Promise<'none' | 'exited' | 'restarted' | 'remove'> => {
    const rec = readRecord(env, id);
    if (!rec || rec.state.status !== 'running') return 'none';
    if (rec.state.foreground) {
      // The foreground berth records its own exit; only a berth that died leaves this behind.
      if (processAlive(rec.state.pid, rec.state.pidStartTime)) return 'none';
    } else if (processAlive(rec.state.pid, rec.state.pidStartTime)) {
      return 'none';
    }
    const code = readExitFile(env, id) ?? rec.state.exitCode;
    exitCode = code;
    const runtime = runtimeFor(env, rec);
    await runtime.delete(id);
    rec.state = { ...rec.state, status: 'exited', exitCode: code, finishedAt: new Date().toISOString() };
    delete rec.state.pid;
    delete rec.state.paused;
    await saveRecord(env, rec);
    if (shouldRestart(rec)) {
      rec.state.restartCount++;
      try {
        await startLocked(env, rec, exitCommand);
        return 'restarted';
      } catch (err) {
        log.warn(`restart of ${rec.name} failed: ${(err as Error).message}`);
        return 'exited';
      }
    }
    return rec.autoRemove ? 'remove' : 'exited';
  });
  if (outcome === 'remove') {
    await removeContainer(env, id, { force: true });
    return { outcome: 'removed', exitCode };
  }
  return { outcome, exitCode };
}

function shouldRestart(rec: ContainerRecord): boolean {
  if (rec.state.stoppedByUser || rec.state.foreground) return false;
  if (rec.restart.name === 'always') return true;
  if (rec.restart.name === 'on-failure') {
    return rec.state.exitCode !== 0 && (rec.restart.maxRetries === 0 || rec.state.restartCount < rec.restart.maxRetries);
  }
  return false;
}

async function waitGone(rec: ContainerRecord, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!processAlive(rec.state.pid, rec.state.pidStartTime)) return true;
    await sleep(20);
  }
  return !processAlive(rec.state.pid, rec.state.pidStartTime);
}

/** The monitor writes the exit file a moment after the init dies; stop waits for it so the exit code is known. */
async function waitExitFile(env: EngineEnv, rec: ContainerRecord, ms: number): Promise<void> {
  if (rec.state.foreground) return;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && readExitFile(env, rec.id) === undefined && processAlive(rec.state.monitorPid)) await sleep(10);
}

/**
 * stop: the image's stop signal (SIGTERM unless it says otherwise), then
 * SIGKILL after the timeout, as podman does. The record says "stopped by
 * user" first, so the restart policy does not bring it back.
 */
export async function stopContainer(env: EngineEnv, id: string, timeoutSeconds: number | undefined, exitCommand: string[]): Promise<ContainerRecord> {
  let rec = await updateRecord(env, id, (r) => { if (r.state.status === 'running') r.state.stoppedByUser = true; });
  if (isRunning(rec)) {
    const runtime = runtimeFor(env, rec);
    const timeout = timeoutSeconds ?? rec.stopTimeout;
    if (timeout > 0) {
      await runtime.kill(id, rec.stopSignal, { allowFail: true });
      // A paused container gets the stop signal pending, then is thawed to act on it (pause.ts).
      if (rec.state.paused) await resumeAfterSignal(env, id);
      if (!(await waitGone(rec, timeout * 1000))) log.warn(`StopSignal ${rec.stopSignal} failed to stop container ${rec.name} in ${timeout} seconds, resorting to SIGKILL`);
    }
    if (processAlive(rec.state.pid, rec.state.pidStartTime)) {
      await runtime.kill(id, 'SIGKILL', { allowFail: true });
      if (rec.state.paused) await resumeAfterSignal(env, id);
      await waitGone(rec, 10_000);
    }
    await waitExitFile(env, rec, 5_000);
  }
  if (rec.state.foreground) {
    // The foreground berth is still collecting the status: give it a moment to record it.
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && readRecord(env, id)?.state.status === 'running') await sleep(20);
  }
  await cleanupContainer(env, id, exitCommand);
  rec = readRecord(env, id) ?? rec;
  return rec;
}

export async function killContainer(env: EngineEnv, id: string, signal: string): Promise<void> {
  const rec = readRecord(env, id)!;
  if (!isRunning(rec)) throw new EngineError('E_STATE', `can only kill running containers. ${rec.id} is in state ${observedStatus(env, rec).status}: container state improper`);
  await runtimeFor(env, rec).kill(id, signal);
  // SIGKILL ends a paused container, as with podman; any other signal waits, pending, for unpause.
  if (rec.state.paused && signalNumber(signal) === 9) await resumeAfterSignal(env, id);
}

/**
 * rm: refuse a running container unless forced; then runtime state, rootfs mount, snapshot, pod membership, record;
 * then its anonymous volumes with `volumes` (rm -v), or when it was a --rm container (podman's run --rm).
 */
export async function removeContainer(env: EngineEnv, id: string, opts: { force: boolean; volumes?: boolean }): Promise<void> {
  const pre = readRecord(env, id);
  if (!pre) return;
  if (isRunning(pre)) {
    if (!opts.force) {
      throw new EngineError('E_STATE', `cannot remove container ${pre.id} as it is ${observedStatus(env, pre).status} - running or paused containers cannot be removed without force: container state improper`);
    }
    await updateRecord(env, id, (r) => { r.state.stoppedByUser = true; });
    await runtimeFor(env, pre).kill(id, 'SIGKILL', { allowFail: true });
    if (pre.state.paused) await resumeAfterSignal(env, id);
    await waitGone(pre, 10_000);
  }
  await withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec) return;
    rec.state.stoppedByUser = true;
    await saveRecord(env, rec);
    await runtimeFor(env, rec).delete(id);
    await unmountAll(join(rec.bundle, 'rootfs'));
    const snapshotter = new Snapshotter(env.dataRoot);
    if (await snapshotter.exists(rec.snapshot)) {
      // The upper directory holds files the container gave range owners: only the user's namespace may remove them.
      if (env.rootless && isRootlessCaller()) await removeSnapshotRootless(env, snapshotter, rec.snapshot);
      else await snapshotter.remove(rec.snapshot);
    }
    if (rec.pod) {
      const podEnv = { runRoot: env.runRoot };
      await detachContainer(rec.pod.id, id, podEnv).catch((e: unknown) => log.debug(`detach from pod: ${(e as Error).message}`));
      if (rec.pod.implicit) await removePod(rec.pod.id, { force: true, ...podEnv }).catch((e: unknown) => log.debug(`remove pod: ${(e as Error).message}`));
    }
    rmSync(paths.runDir(env, id), { recursive: true, force: true });
    rmSync(paths.exitFile(env, id), { force: true });
  });
  await deleteRecordDir(env, id);
  // After the record: it no longer counts as a user of them.
  if (opts.volumes ?? pre.autoRemove) await removeAnonymousVolumes(env, pre);
  mark('container removed');
}

/** wait: block until the container has exited; returns its exit code. */
export async function waitContainer(env: EngineEnv, id: string, exitCommand: string[]): Promise<number> {
  for (;;) {
    const rec = readRecord(env, id);
    if (!rec) throw new EngineError('E_NO_CONTAINER', `no container with name or ID "${id}" found: no such container`);
    if (rec.state.status === 'exited') return rec.state.exitCode ?? -1;
    if (rec.state.status === 'running' && !isRunning(rec)) {
      if (!rec.state.foreground) await waitExitFile(env, rec, 2_000);
      const { outcome, exitCode } = await cleanupContainer(env, id, exitCommand);
      if (outcome === 'removed') return exitCode ?? -1;
    }
    await sleep(50);
  }
}

/**
 * The hidden `berth container storage -` verb, run by runInUserNamespace
 * inside the user's namespace: one storage step, its result as JSON.
 */
export async function runStorageRequest(env: EngineEnv, request: StorageRequest): Promise<unknown> {
  if (request.op === 'create') return createContainer(env, request.runtimePath, request.runtimeRoot, request.req as CreateRequest);
  throw new EngineError('E_USAGE', `container storage: unknown op ${JSON.stringify((request as { op: unknown }).op)}`);
}
