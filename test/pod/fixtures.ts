/**
 * Pods for the tests: berth-pod under a private --run-root, bundles from
 * berth-bundle --pod over one shared read-only busybox rootfs, containers
 * run by runc with their state under a private --root. Everything a test
 * makes is tracked here so cleanup() removes it even after a failed assertion.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { binPath, runTool, tempDir, type RunResult } from '../helpers/run.ts';
import { busyboxConfig, makeBusyboxRootfs, writeConfig } from '../bundle/fixtures.ts';

export interface PodDoc {
  kind: 'pod';
  name: string;
  id: string;
  hostname?: string;
  namespaces: { network?: string; ipc?: string; uts?: string; pid?: string };
  ip: string | null;
  ports: { hostIP: string; hostPort: number; containerPort: number; protocol: string }[];
}

/** The OCI runtimes the pod tests run containers with; both keep state.json under their --root. */
export type RuntimeName = 'runc' | 'berth-runtime';

function runtimeArgv(runtime: RuntimeName, root: string): string[] {
  return runtime === 'runc' ? ['runc', '--root', root] : [process.execPath, binPath('berth-runtime'), '--root', root];
}

let seq = 0;
export function unique(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}${seq++}`;
}

export class PodWorld {
  readonly tmp = tempDir('berth-pod-test-');
  readonly runRoot = join(this.tmp.path, 'run');
  readonly runcRoot = join(this.tmp.path, 'runc');
  rootfs = '';
  imageConfig = '';
  private containers: { id: string; runtime: RuntimeName }[] = [];

  async init(): Promise<void> {
    this.rootfs = await makeBusyboxRootfs(join(this.tmp.path, 'rootfs'));
    this.imageConfig = writeConfig(this.tmp.path, 'image-config.json', busyboxConfig());
    mkdirSync(this.runcRoot, { recursive: true });
  }

  pod(args: string[], opts: { input?: string } = {}): RunResult {
    const [verb, ...rest] = args;
    return runTool('berth-pod', [verb!, '--run-root', this.runRoot, ...rest], opts);
  }

  createPod(args: string[]): PodDoc {
    const r = this.pod(['create', ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.json as PodDoc;
  }

  /** A bundle joining the pod (the pod document is handed over on stdin, as in a pipeline). */
  bundle(pod: PodDoc, command: string[], flags: string[] = []): { id: string; bundle: string } {
    const id = unique('c');
    const bundle = join(this.tmp.path, 'bundles', id);
    const r = runTool('berth-bundle', ['--rootfs', this.rootfs, '--image-config', this.imageConfig, '--bundle-dir', bundle, '--name', id,
      '--read-only', '--pod', '-', ...flags, '--', ...command], { input: JSON.stringify(pod) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return { id, bundle };
  }

  /** Start a container in the background (RUNTIME run -d), its output to a file. */
  start(pod: PodDoc, command: string[], flags: string[] = [], runtime: RuntimeName = 'runc'): string {
    const { id, bundle } = this.bundle(pod, command, flags);
    const log = openSync(join(this.tmp.path, `${id}.log`), 'w');
    this.containers.push({ id, runtime });
    const [bin, ...args] = runtimeArgv(runtime, this.runtimeRoot(runtime));
    try {
      const r = spawnSync(bin!, [...args, 'run', '-d', '--bundle', bundle, id], { stdio: ['ignore', log, log], timeout: 30_000 });
      expect(r.status, readFileSync(join(this.tmp.path, `${id}.log`), 'utf8')).toBe(0);
    } finally {
      closeSync(log);
    }
    return id;
  }

  /** Run a container to completion (RUNTIME run) and return what it printed. */
  run(pod: PodDoc, command: string[], flags: string[] = [], runtime: RuntimeName = 'runc'): { code: number; out: string } {
    const { id, bundle } = this.bundle(pod, command, flags);
    const dir = mkdtempSync(join(this.tmp.path, 'out-'));
    const fd = openSync(join(dir, 'out'), 'w');
    this.containers.push({ id, runtime });
    const [bin, ...args] = runtimeArgv(runtime, this.runtimeRoot(runtime));
    try {
      const r = spawnSync(bin!, [...args, 'run', '--bundle', bundle, id], { stdio: ['ignore', fd, fd], timeout: 60_000 });
      return { code: r.status ?? -1, out: readFileSync(join(dir, 'out'), 'utf8') };
    } finally {
      closeSync(fd);
      spawnSync(bin!, [...args, 'delete', '--force', id]);
    }
  }

  /** Each runtime keeps its state under its own --root in the test's temp dir. */
  runtimeRoot(runtime: RuntimeName): string {
    return runtime === 'runc' ? this.runcRoot : join(this.tmp.path, 'berth-runtime');
  }

  /** Host pid of a started container's init (the runtime's `state`). */
  containerPid(id: string, runtime: RuntimeName = 'runc'): number {
    const [bin, ...args] = runtimeArgv(runtime, this.runtimeRoot(runtime));
    const r = spawnSync(bin!, [...args, 'state', id], { encoding: 'utf8' });
    return (JSON.parse(r.stdout) as { pid: number }).pid;
  }

  podIds(): string[] {
    try { return readdirSync(join(this.runRoot, 'pods')).filter((d) => /^[0-9a-f]{64}$/.test(d)); } catch { return []; }
  }

  cleanup(): void {
    for (const { id, runtime } of this.containers) {
      const [bin, ...args] = runtimeArgv(runtime, this.runtimeRoot(runtime));
      spawnSync(bin!, [...args, 'delete', '--force', id]);
    }
    for (const id of this.podIds()) this.pod(['rm', '--force', id]);
    this.tmp.cleanup();
    // runc leaves the empty parent cgroup /berth behind: remove it when no other container uses it.
    for (const ctl of ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'blkio', 'systemd', 'unified']) {
      try { rmdirSync(`/sys/fs/cgroup/${ctl}/berth`); } catch { /* in use, or absent */ }
    }
  }
}

/** The CNI cache of a pod: the host end of its veth, from the ADD result. */
export function hostVeth(runRoot: string, podId: string): string | undefined {
  const dir = join(runRoot, 'pods', podId, 'cni');
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { result: { interfaces?: { name: string; sandbox?: string }[] } };
    const itf = rec.result.interfaces?.find((i) => !i.sandbox && i.name.startsWith('veth'));
    if (itf) return itf.name;
  }
  return undefined;
}
