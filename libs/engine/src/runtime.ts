import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, realpathSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { log } from '@berth/cli-kit';
import { EngineError } from './errors.ts';

/**
 * The OCI runtime is always a separate binary spoken to through the runtime
 * CLI that runc defined (create, start, kill, delete, exec, run), so it can be
 * swapped: berth-runtime by default, runc or crun with --runtime or
 * BERTH_RUNTIME. Each runtime gets its own --root (see paths.runtimeRoot).
 */
export class OciRuntime {
  constructor(readonly path: string, readonly root: string) {}

  /** Global flags go before the verb, as runc parses them. */
  argv(verb: string, ...args: string[]): string[] {
    return ['--root', this.root, verb, ...args];
  }

  /** Does the runtime still hold state for this container? (runc, crun and berth-runtime keep ROOT/ID.) */
  hasState(id: string): boolean {
    return existsSync(join(this.root, id));
  }

  async call(verb: string, args: string[], opts: { allowFail?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const argv = this.argv(verb, ...args);
    log.debug(`runtime: ${this.path} ${argv.join(' ')}`);
    const r = await runCapture(this.path, argv);
    if (r.code !== 0 && !opts.allowFail) {
      throw new EngineError('E_RUNTIME', `${this.path} ${verb} ${args.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit status ${r.code}`}`);
    }
    return r;
  }

  start(id: string): Promise<unknown> { return this.call('start', [id]); }

  /** Signals as numbers: every runtime parses those the same way. */
  kill(id: string, signal: string | number, opts: { all?: boolean; allowFail?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.call('kill', [...(opts.all ? ['--all'] : []), id, String(signalNumber(signal))], { allowFail: opts.allowFail });
  }

  async delete(id: string): Promise<void> {
    if (!this.hasState(id)) return;
    await this.call('delete', ['--force', id], { allowFail: true });
  }
}

export function signalNumber(signal: string | number): number {
  if (typeof signal === 'number') return signal;
  if (/^\d+$/.test(signal)) return Number(signal);
  const name = signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  const n = (osConstants.signals as Record<string, number>)[name];
  if (n === undefined) throw new EngineError('E_SIGNAL', `invalid signal: ${signal}`);
  return n;
}

export function runCapture(file: string, args: string[], opts: { input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', (err) => reject(new EngineError('E_RUNTIME', `run ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    child.on('close', (code, signal) => resolvePromise({ code: code ?? 128 + (signal ? signalNumber(signal) : 0), stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

function isExecutable(p: string): boolean {
  try { accessSync(p, fsConstants.X_OK); return true; } catch { return false; }
}

/**
 * The runtime binary's absolute path: a path as given, a name searched in
 * PATH, and for berth-runtime the launcher next to this berth when it is not
 * installed (a checkout run with `node tools/berth/bin/berth.js`).
 */
export function resolveRuntimePath(runtime: string, selfLauncher?: string): string {
  if (runtime.includes('/')) {
    const p = resolve(runtime);
    if (!isExecutable(p)) throw new EngineError('E_RUNTIME', `OCI runtime ${runtime}: not found or not executable`);
    return p;
  }
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, runtime);
    if (dir !== '' && isExecutable(p)) return p;
  }
  if (runtime === 'berth-runtime' && selfLauncher) {
    const sibling = join(dirname(realpathSync(selfLauncher)), '..', '..', 'runtime', 'bin', 'berth-runtime.js');
    if (isExecutable(sibling)) return resolve(sibling);
  }
  throw new EngineError('E_RUNTIME', `OCI runtime "${runtime}" not found in $PATH: install it or pass --runtime PATH`);
}
