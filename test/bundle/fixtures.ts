import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig, RuntimeSpec } from '@berth/oci-spec';
import { validateRuntimeSpec } from '@berth/oci-spec';
import { busyboxEntries, tarOf } from '../helpers/images.ts';
import { runTool, type RunResult } from '../helpers/run.ts';

/** A busybox rootfs as a plain directory (what `umoci unpack` would give). */
export async function makeBusyboxRootfs(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tar = await tarOf(busyboxEntries());
  execFileSync('tar', ['-x', '--numeric-owner', '-C', dir], { input: tar });
  return dir;
}

export function busyboxConfig(config: ImageConfig['config'] = {}): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], ...config },
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

export function writeConfig(dir: string, name: string, cfg: ImageConfig): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(cfg));
  return p;
}

/** Read and validate a generated bundle's config.json (every test does). */
export function readSpec(bundle: string): RuntimeSpec {
  return validateRuntimeSpec(JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')));
}

export function bundleTool(args: string[], input?: string): RunResult {
  return runTool('berth-bundle', args, { input });
}

let seq = 0;
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

export interface RunOutcome { code: number; stdout: string; stderr: string }

/**
 * crun 1.8 refuses every container on a cgroup v1/v2 hybrid host whose v2
 * root lists any controller ("cgroups in hybrid mode not supported, drop all
 * controllers from cgroupv2"); here hugetlb is not bound to a v1 hierarchy,
 * so the unified root lists it. crun reads that from
 * /sys/fs/cgroup/unified/cgroup.controllers before it looks at the bundle.
 * The tests run crun in a private mount namespace where an empty file is
 * bound over that one file, which changes nothing for the host; crun then
 * manages the real v1 controllers (memory, pids, devices...) as usual.
 */
function crunNeedsHybridWorkaround(): boolean {
  try {
    return readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim() !== '';
  } catch {
    return false;
  }
}

export function runtimeCommand(runtime: 'runc' | 'crun', args: string[], emptyFile: string): [string, string[]] {
  if (runtime === 'crun' && crunNeedsHybridWorkaround()) {
    const script = `mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec crun "$@"`;
    return ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, emptyFile, ...args]];
  }
  return [runtime, args];
}

/**
 * Run a bundle to completion under an OCI runtime (runc or crun) with
 * `RUNTIME run`, then always delete the container, so a failed assertion
 * leaves no container, cgroup or mount behind.
 */
export function runBundle(runtime: 'runc' | 'crun', bundle: string, id: string, stateRoot: string): RunOutcome {
  const emptyFile = join(stateRoot, 'empty');
  writeFileSync(emptyFile, '');
  try {
    const [cmd, args] = runtimeCommand(runtime, ['--root', stateRoot, 'run', '--bundle', bundle, id], emptyFile);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout, stderr: r.stderr };
  } finally {
    const [cmd, args] = runtimeCommand(runtime, ['--root', stateRoot, 'delete', '-f', id], emptyFile);
    spawnSync(cmd, args, { encoding: 'utf8' });
  }
}
