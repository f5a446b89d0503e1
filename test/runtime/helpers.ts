/**
 * Bundles for the runtime suite: one busybox rootfs (from the test image
 * helpers, extracted with tar) shared read-only by every bundle, and a
 * config.json that starts from `runc spec` and is adjusted per test.
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns, type StdioOptions } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuntimeSpec } from '@berth/oci-spec';
import { busyboxEntries, tarOf } from '../helpers/images.ts';
import { binPath } from '../helpers/run.ts';

export async function makeRootfs(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const tar = await tarOf(busyboxEntries());
  execFileSync('tar', ['-x', '-C', rootfs], { input: tar });
  return rootfs;
}

let baseSpec: RuntimeSpec | undefined;

/** `runc spec`, non-interactive, with the shared rootfs. */
export function defaultSpec(rootfs: string): RuntimeSpec {
  if (!baseSpec) {
    const d = mkdtempSync(join(tmpdir(), 'berth-spec-'));
    execFileSync('runc', ['spec'], { cwd: d });
    baseSpec = JSON.parse(execFileSync('cat', [join(d, 'config.json')], { encoding: 'utf8' })) as RuntimeSpec;
    execFileSync('rm', ['-rf', d]);
  }
  const spec = structuredClone(baseSpec);
  spec.root = { path: rootfs, readonly: true };
  spec.process!.terminal = false;
  return spec;
}

export function writeBundle(dir: string, spec: RuntimeSpec | Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

export interface Runtime {
  name: string;
  /** argv prefix: the runtime binary and its global flags. */
  argv(root: string): string[];
}

export const runtimes: Runtime[] = [
  // By path, as podman, conmon and containerd's shim run it: through the launcher's sh line.
  { name: 'berth-runtime', argv: (root) => [binPath('berth-runtime'), '--root', root] },
  { name: 'runc', argv: (root) => ['runc', '--root', root] },
];

export interface Result { code: number; stdout: string; stderr: string }

/**
 * Run a runtime command to completion. Its stdout and stderr go to files, not
 * pipes: a detached container inherits them and would keep a pipe open (and a
 * spawnSync waiting) for as long as it lives.
 */
export function runSync(argv: string[], opts: { input?: string; stdio?: StdioOptions; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Result {
  const tmp = mkdtempSync(join(tmpdir(), 'berth-out-'));
  const out = openSync(join(tmp, 'out'), 'w+');
  const err = openSync(join(tmp, 'err'), 'w+');
  try {
    const stdio = (opts.stdio as unknown[] | undefined)?.slice() ?? ['ignore', 'pipe', 'pipe'];
    stdio[0] = opts.input !== undefined ? 'pipe' : stdio[0] ?? 'ignore';
    stdio[1] = out;
    stdio[2] = err;
    const r: SpawnSyncReturns<string> = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8', input: opts.input, stdio: stdio as StdioOptions, timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env,
    });
    return { code: r.status ?? (r.signal ? 128 : -1), stdout: readFileSync(join(tmp, 'out'), 'utf8'), stderr: readFileSync(join(tmp, 'err'), 'utf8') };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Like runSync but async, so the test can act while the runtime runs. */
export function runAsync(argv: string[], opts: { stdio?: StdioOptions } = {}): { done: Promise<Result>; pid: number } {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d; });
  child.stderr?.on('data', (d: Buffer) => { stderr += d; });
  // 'exit', not 'close': a container started by a detached create holds the
  // runtime's stdout and stderr for as long as it lives.
  const done = new Promise<Result>((resolve) => child.on('exit', (code, signal) => setImmediate(() => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }))));
  return { done, pid: child.pid! };
}

export async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
