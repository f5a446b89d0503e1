/**
 * Fixtures for the berth-audit suite: a busybox rootfs, bundles from
 * `runc spec` adjusted per test, berth-runtime run from the outside, and the
 * kernel's audit state saved and restored around the suite.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeSpec } from '@berth/oci-spec';
import { busyboxEntries, tarOf } from '../helpers/images.ts';
import { binPath, repoRoot } from '../helpers/run.ts';

export const runtimeBin = binPath('berth-runtime');
export const auditBin = binPath('berth-audit');

/** The newest mtime of the .ts files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/**
 * Build berth-runtime when its bundle is missing (its source is not ours),
 * and berth-audit when its bundle is missing or older than its sources.
 * `make test` builds first, so in CI neither runs: two test files building
 * the same bundle at once could read it half-written.
 */
export function ensureBuilt(): void {
  const tools = join(repoRoot, 'tools');
  if (!existsSync(join(tools, 'runtime', 'dist', 'cli.js')) || !existsSync(join(tools, 'runtime', 'dist', 'init.js'))) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(tools, 'runtime'), stdio: 'ignore' });
  }
  const bundle = join(tools, 'audit-inspector', 'dist', 'cli.js');
  const sources = Math.max(newestSource(join(tools, 'audit-inspector', 'src')), newestSource(join(repoRoot, 'libs', 'audit', 'src')));
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < sources) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(tools, 'audit-inspector'), stdio: 'ignore' });
  }
}

export async function makeRootfs(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  execFileSync('tar', ['-x', '-C', rootfs], { input: await tarOf(busyboxEntries()) });
  return rootfs;
}

let base: RuntimeSpec | undefined;

/** A bundle whose process is `args`, from `runc spec` with the shared read-only rootfs. */
export function writeBundle(dir: string, rootfs: string, args: string[], mutate?: (s: RuntimeSpec) => void): string {
  if (!base) {
    const d = join(dir, '..', `spec-${process.pid}`);
    mkdirSync(d, { recursive: true });
    execFileSync('runc', ['spec'], { cwd: d });
    base = JSON.parse(execFileSync('cat', [join(d, 'config.json')], { encoding: 'utf8' })) as RuntimeSpec;
  }
  const spec = structuredClone(base);
  spec.root = { path: rootfs, readonly: true };
  spec.process!.terminal = false;
  spec.process!.args = args;
  mutate?.(spec);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

export function auditctl(...args: string[]): { code: number; out: string } {
  const r = spawnSync('auditctl', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

/** The kernel's audit `enabled` flag, as auditctl -s reports it. */
export function auditEnabled(): number {
  const m = /enabled (\d)/.exec(auditctl('-s').out);
  if (!m) throw new Error('auditctl -s printed no enabled line');
  return Number(m[1]);
}

export interface Follower {
  child: ChildProcess;
  lines: () => Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number>;
}

/**
 * `berth-audit events --follow ...` in the background; resolves once it
 * says on stderr that it listens, so records made after that are seen.
 */
export async function follow(args: string[], timeoutMs = 20_000): Promise<Follower> {
  const child = spawn(process.execPath, [auditBin, 'events', '--follow', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : -1))));
  const deadline = Date.now() + timeoutMs;
  while (!/following kernel audit records/.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`berth-audit events did not start listening: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: () => err,
    exited,
  };
}

/** Resolve with the exit code, or kill the child and reject after `ms`. */
export async function within(f: Follower, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      f.child.kill('SIGKILL');
      reject(new Error(`berth-audit events still running after ${ms} ms; stderr: ${f.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([f.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** auditd's registered pid from auditctl -s (0: no audit daemon). */
export function auditdPid(): number {
  const m = /pid (\d+)/.exec(auditctl('-s').out);
  return m ? Number(m[1]) : 0;
}

export interface Auditd {
  logFile: string;
  stop: () => Promise<void>;
}

/**
 * An audit daemon writing to a log of our own: Debian's auditd with a config
 * dir in `dir` (-c), not forking (-n), leaving the enabled flag alone
 * (-s nochange). When an auditd is registered already, the kernel allows no
 * second one: its log is used instead, and nothing is stopped.
 */
export async function startAuditd(dir: string): Promise<Auditd> {
  if (auditdPid() !== 0) return { logFile: '/var/log/audit/audit.log', stop: async () => undefined };
  mkdirSync(join(dir, 'plugins.d'), { recursive: true });
  const logFile = join(dir, 'audit.log');
  writeFileSync(join(dir, 'auditd.conf'), [
    'local_events = yes', 'write_logs = yes', `log_file = ${logFile}`, 'log_format = ENRICHED', 'flush = SYNC',
    'max_log_file = 8', 'num_logs = 1', 'max_log_file_action = IGNORE', 'space_left = 2', 'space_left_action = IGNORE',
    'admin_space_left = 1', 'admin_space_left_action = IGNORE', 'disk_full_action = IGNORE', 'disk_error_action = IGNORE',
    `plugin_dir = ${join(dir, 'plugins.d')}`, 'q_depth = 2000', 'end_of_event_timeout = 2', '',
  ].join('\n'));
  const child = spawn('auditd', ['-n', '-s', 'nochange', '-c', dir], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (auditdPid() !== child.pid) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('auditd did not register with the kernel');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    logFile,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** How long a suite waits for another to finish with the audit state. */
export const LOCK_WAIT = 5 * 60_000;

/**
 * The kernel's audit state (enabled flag, rules) is one per machine, and
 * suites that turn audit on restore the flag when they end: two such files
 * running side by side would switch audit off under each other. Each holds
 * this lock (a directory with the holder's pid; a dead holder's lock is
 * taken over) from its first watch to its restore.
 */
export async function holdAuditLock(timeoutMs = LOCK_WAIT): Promise<() => void> {
  const lock = '/run/berth-test-audit.lock';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try { holder = Number(readFileSync(join(lock, 'pid'), 'utf8')); } catch { /* being written or removed */ }
      if (Number.isInteger(holder) && holder > 0 && !existsSync(`/proc/${holder}`)) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${lock} still held by pid ${holder} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
