import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError, log } from '@berth/cli-kit';
import type { Mount, RuntimeSpec } from '@berth/oci-spec';

/**
 * One RUN step as a container: a bundle whose rootfs is the mounted active
 * snapshot, run in the foreground by an OCI runtime binary (runtime-spec
 * runtime.md; `RUNTIME run --bundle DIR ID`), its stdout and stderr streamed
 * to the build's output. The namespaces are what podman build uses for RUN:
 * pid, mount, ipc, uts, and network unless --network host.
 */
export interface RunRequest {
  id: string;
  bundle: string;
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  network: 'host' | 'none';
  hostname: string;
  runtime: string;
  /** The runtime's --root (its state directory). */
  stateRoot: string;
  output: NodeJS.WritableStream;
  /** Aborted by Ctrl-C or TERM: the runtime is told to stop the container. */
  signal?: AbortSignal;
  /** RUN --mount filesystems, after the standard ones. */
  mounts?: Mount[];
}

/** The mount points the spec puts into the rootfs; created by the runtime when missing, removed again after the step. */
export const RunMountPoints = ['/proc', '/dev', '/sys'];

const capabilities = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

export function runSpec(req: RunRequest, hostFiles: Array<{ source: string; destination: string }>): RuntimeSpec {
  const namespaces = [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, ...(req.network === 'none' ? [{ type: 'network' }] : [])];
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: req.uid, gid: req.gid, ...(req.additionalGids.length ? { additionalGids: req.additionalGids } : {}) },
      args: req.args,
      env: req.env,
      cwd: req.cwd,
      capabilities: { bounding: capabilities, effective: capabilities, permitted: capabilities },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: false,
    },
    root: { path: req.rootfs, readonly: false },
    hostname: req.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      // The host's resolv.conf and hosts, bound only onto files the image
      // already has, so the step's layer never gains empty mount points.
      ...hostFiles.map((f) => ({ destination: f.destination, type: 'bind', source: f.source, options: ['rbind', 'ro', 'nosuid', 'nodev'] })),
      ...(req.mounts ?? []),
    ],
    linux: {
      namespaces,
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
    },
  };
  return spec as unknown as RuntimeSpec;
}

/** The runtime binary: --runtime, else $BERTH_RUNTIME, else berth-runtime on PATH or next to this build of berth. */
export function findRuntime(requested: string | undefined): string {
  const want = requested ?? process.env.BERTH_RUNTIME ?? 'berth-runtime';
  if (want.includes('/')) {
    if (!existsSync(want)) throw new BerthError('E_RUNTIME', `OCI runtime ${want} does not exist`);
    return want;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, want))) return join(dir, want);
  }
  if (want === 'berth-runtime') {
    // In the repository the bundles sit in tools/<stage>/dist: berth-runtime
    // is the sibling stage tools/runtime, a few directories up from here.
    let dir = dirname(fileURLToPath(import.meta.url));
    for (let up = 0; up < 6; up++, dir = dirname(dir)) {
      const p = join(dir, 'tools', 'runtime', 'bin', 'berth-runtime.js');
      if (existsSync(p)) return p;
    }
  }
  throw new BerthError('E_RUNTIME', `OCI runtime "${want}" not found on PATH; pass --runtime PATH or set BERTH_RUNTIME (runc works too)`);
}

/** Run the step; resolves with the container's exit status. */
export async function runContainer(req: RunRequest, hostFiles: Array<{ source: string; destination: string }>): Promise<number> {
  await mkdir(req.bundle, { recursive: true });
  await writeFile(join(req.bundle, 'config.json'), JSON.stringify(runSpec(req, hostFiles), null, 2));
  const runtime = req.runtime;
  const argv = runtime.endsWith('.js') ? [process.execPath, runtime] : [runtime];
  const base = [...argv.slice(1), '--root', req.stateRoot];
  log.debug(`${argv[0]} ${[...base, 'run', '--bundle', req.bundle, req.id].join(' ')}`);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(argv[0]!, [...base, 'run', '--bundle', req.bundle, req.id], { stdio: ['ignore', 'pipe', 'pipe'] });
      // The container's output goes to the build's output (stderr for
      // berth-build), never to stdout, which carries the image document.
      child.stdout.on('data', (c: Buffer) => req.output.write(c));
      child.stderr.on('data', (c: Buffer) => req.output.write(c));
      // A shell as PID 1 of its namespace ignores TERM (the kernel drops
      // signals PID 1 has no handler for), so the container gets KILL through
      // the runtime; `run` then returns and `delete --force` cleans up.
      const onAbort = () => {
        spawn(argv[0]!, [...base, 'kill', req.id, 'KILL'], { stdio: 'ignore' }).on('error', () => {});
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('close', () => req.signal?.removeEventListener('abort', onAbort));
      child.on('error', (err) => reject(new BerthError('E_RUNTIME', `run ${runtime}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1)));
    });
  } finally {
    // `run` deletes the container when it exits; only a run that was cut
    // short leaves state (ROOT/ID, for runc and berth-runtime alike) to delete.
    if (existsSync(join(req.stateRoot, req.id))) {
      await new Promise<void>((resolve) => {
        const child = spawn(argv[0]!, [...base, 'delete', '--force', req.id], { stdio: 'ignore' });
        child.on('error', () => resolve());
        child.on('close', () => resolve());
      });
    }
    await rm(join(req.bundle, 'config.json'), { force: true }).catch(() => {});
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const n = (({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 }) as Record<string, number>)[signal];
  return n;
}
