import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { log } from '@berth/cli-kit';
import { EngineError, ExitCode } from './errors.ts';
import { paths, type EngineEnv } from './paths.ts';
import type { ContainerRecord } from './records.ts';

/**
 * The per-container monitor is conmon, the one podman uses (a 2 MB C
 * process; no daemon). berth forks it and exits; conmon double-forks so it
 * outlives berth, then:
 *   1. runs `RUNTIME --root R create --bundle B --pid-file P ID` with the
 *      container's stdio on pipes it holds (or a pty with -t),
 *   2. reports the init pid (or the create error) as JSON on the sync pipe,
 *      fd 3 here (_OCI_SYNCPIPE), which is how berth learns create finished,
 *   3. copies the container's stdout/stderr into the log file in the
 *      k8s-file format (`TIME STREAM P|F TEXT`) that `berth logs` reads,
 *   4. when the init exits, writes its status to EXITDIR/ID and runs the
 *      exit command: `berth container cleanup ID`, which records the exit,
 *      applies --restart, and removes --rm containers.
 * berth then calls `RUNTIME start ID` itself.
 */
export const CONMON_CANDIDATES = ['/usr/bin/conmon', '/usr/libexec/podman/conmon', '/usr/local/bin/conmon'];

export function findConmon(): string {
  const env = process.env.BERTH_CONMON;
  if (env) return env;
  const found = CONMON_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new EngineError('E_NO_MONITOR', `conmon not found (looked in ${CONMON_CANDIDATES.join(', ')}): install the Debian package conmon, or set BERTH_CONMON`);
  return found;
}

export interface MonitorRequest {
  env: EngineEnv;
  rec: ContainerRecord;
  /** argv of the exit command (berth container cleanup ID with this invocation's roots). */
  exitCommand: string[];
}

export function monitorArgs(req: MonitorRequest): string[] {
  const { env, rec } = req;
  const run = paths.runDir(env, rec.id);
  const args = [
    '--api-version', '1',
    '-c', rec.id, '-u', rec.id, '-n', rec.name,
    '-r', rec.runtime,
    '--runtime-arg', '--root', '--runtime-arg', rec.runtimeRoot,
    '-b', rec.bundle,
    '-p', `${run}/pidfile`,
    '--conmon-pidfile', `${run}/conmon.pid`,
    '--exit-dir', paths.exits(env),
    '-l', `k8s-file:${paths.log(env, rec.id)}`,
    '--socket-dir-path', `${run}/attach`,
    '--exit-command', req.exitCommand[0]!,
    ...req.exitCommand.slice(1).flatMap((a) => ['--exit-command-arg', a]),
  ];
  if (rec.tty) args.push('-t');
  if (rec.interactive) args.push('-i');
  return args;
}

/** Start the monitor and wait for the runtime's create to finish; returns the container's init pid. */
export async function startMonitor(req: MonitorRequest): Promise<{ pid: number; monitorPid?: number }> {
  const { env, rec } = req;
  const run = paths.runDir(env, rec.id);
  mkdirSync(`${run}/attach`, { recursive: true, mode: 0o700 });
  mkdirSync(paths.exits(env), { recursive: true, mode: 0o700 });
  // A stale exit file from the previous run would be read as this run's exit.
  rmSync(paths.exitFile(env, rec.id), { force: true });
  const conmon = findConmon();
  const args = monitorArgs(req);
  log.debug(`monitor: ${conmon} ${args.join(' ')}`);
  const child = spawn(conmon, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3' },
    detached: true,
  });
  child.unref();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const sync = child.stdio[3] as Readable;
  const reply = await new Promise<string>((resolve, reject) => {
    let text = '';
    const done = (fn: () => void) => { sync.removeAllListeners(); sync.destroy(); child.stderr!.destroy(); fn(); };
    sync.on('data', (d: Buffer) => {
      text += d.toString();
      // conmon keeps the pipe open for the container's lifetime: stop at the first line.
      if (text.includes('\n')) done(() => resolve(text.split('\n')[0]!));
    });
    sync.on('end', () => done(() => reject(new EngineError('E_MONITOR', `conmon exited before the container was created${stderr.trim() ? `: ${stderr.trim()}` : ''}`))));
    sync.on('error', (err) => done(() => reject(new EngineError('E_MONITOR', `conmon sync pipe: ${err.message}`))));
  });
  let msg: { data?: number; message?: string };
  try { msg = JSON.parse(reply) as { data?: number; message?: string }; } catch { throw new EngineError('E_MONITOR', `conmon sent ${JSON.stringify(reply)} on the sync pipe, expected {"data": PID}`); }
  if (typeof msg.data !== 'number' || msg.data <= 0) {
    // podman's code for an OCI runtime that could not create the container.
    throw new EngineError('E_RUNTIME', `OCI runtime create failed: ${(msg.message ?? 'unknown error').trim()}: OCI runtime error`, { exitCode: ExitCode.cannotInvoke });
  }
  let monitorPid: number | undefined;
  try { monitorPid = Number(readFileSync(`${run}/conmon.pid`, 'utf8').trim()) || undefined; } catch { monitorPid = undefined; }
  return { pid: msg.data, monitorPid };
}

/** The exit status conmon wrote for the container, if it has exited. */
export function readExitFile(env: EngineEnv, id: string): number | undefined {
  try {
    const text = readFileSync(paths.exitFile(env, id), 'utf8').trim();
    return text === '' ? undefined : Number(text);
  } catch {
    return undefined;
  }
}
