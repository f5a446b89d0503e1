import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repo root, so tests run the binaries users run. */
export const repoRoot = resolve(import.meta.dirname, '..', '..');

const binFolder: Record<string, string> = {
  'berth-pull': 'puller',
  'berth-store': 'layer-store',
  'berth-bundle': 'bundle-generator',
  'berth-runtime': 'runtime',
  'berth-pod': 'pod-infra',
  'berth-audit': 'audit-inspector',
  'berth-gc': 'image-gc',
  'berth-build': 'image-builder',
  berth: 'berth',
};

/** Every binary berth ships. */
export const binaries = Object.keys(binFolder);

/** Path of a berth binary's launcher (tools/<stage>/bin/<name>.js). */
export function binPath(name: string): string {
  const folder = binFolder[name];
  if (!folder) throw new Error(`unknown berth binary ${name}`);
  return join(repoRoot, 'tools', folder, 'bin', `${name}.js`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (undefined when it is not JSON) */
  json: any;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

function toResult(code: number | null, signal: string | null, stdout: string, stderr: string): RunResult {
  let json: unknown;
  try { json = JSON.parse(stdout); } catch { json = undefined; }
  return { code: code ?? (signal ? 128 : 1), stdout, stderr, json };
}

/** Run a berth binary synchronously. */
export function runTool(name: string, args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(process.execPath, [binPath(name), ...args], {
    input: opts.input,
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return toResult(r.status, r.signal, r.stdout, r.stderr);
}

/** Run a berth binary without blocking the test's event loop (for concurrency tests). */
export function runToolAsync(name: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [binPath(name), ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    if (opts.input !== undefined) child.stdin.end(opts.input); else child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise(toResult(code, signal, stdout, stderr));
    });
  });
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = 'berth-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
