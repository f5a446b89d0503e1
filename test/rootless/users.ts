import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binPath } from '../helpers/run.ts';

/**
 * Ordinary users for the rootless suite, made with useradd as CI does, and
 * removed again by the suite that made them. `range` gives the user a
 * subordinate uid/gid range (usermod --add-subuids), as the guide's rootless
 * article asks of a podman user.
 */
export interface TestUser {
  name: string;
  uid: number;
  home: string;
  range?: { start: number; count: number };
  remove: () => void;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

export function makeUser(name: string, range?: { start: number; count: number }): TestUser {
  if (spawnSync('id', ['-u', name]).status === 0) spawnSync('userdel', ['-r', name]);
  // Debian's useradd hands out a subordinate range by itself (SUB_UID_COUNT in
  // login.defs); ask for none, so the range is exactly the one given here.
  run('useradd', ['-m', '-s', '/bin/sh', '-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', name]);
  if (range) {
    const end = range.start + range.count - 1;
    run('usermod', ['--add-subuids', `${range.start}-${end}`, '--add-subgids', `${range.start}-${end}`, name]);
  }
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const home = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))!.split(':')[5]!;
  return {
    name, uid, home, range,
    remove: () => {
      // Every process of this user is the suite's (it made the user). One a
      // test left behind (a container's init, a holder) keeps usermod and
      // userdel from touching the user, so they go first, by pid, bounded.
      for (let i = 0; i < 20; i++) {
        const pids = spawnSync('pgrep', ['-u', String(uid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        spawnSync('sleep', ['0.05']);
      }
      // userdel leaves the subordinate ranges behind on Debian 12. usermod
      // drops them under shadow's own lock on /etc/subuid and /etc/subgid: a
      // read-filter-rewrite here would race with suites running in parallel
      // adding their users, and could drop another user's range.
      if (range) {
        const end = range.start + range.count - 1;
        spawnSync('usermod', ['--del-subuids', `${range.start}-${end}`, '--del-subgids', `${range.start}-${end}`, name], { encoding: 'utf8' });
      }
      spawnSync('userdel', ['-r', name], { encoding: 'utf8' });
    },
  };
}

export interface Result { code: number; stdout: string; stderr: string }

export interface RunAsOptions {
  input?: string;
  /** Extra environment on top of PATH, HOME and LANG. */
  env?: Record<string, string>;
  /**
   * The command leaves a container running that inherits stdout and stderr: a
   * pipe would keep spawnSync waiting for it, so stdout is dropped and stderr
   * goes through a file.
   */
  detached?: boolean;
}

/** A berth binary run as `user` (runuser, a login-less su), with the user's own HOME and no XDG dirs set. */
export function runAs(user: TestUser, tool: string, args: string[], opts: RunAsOptions | string = {}): Result {
  const o: RunAsOptions = typeof opts === 'string' ? { input: opts } : opts;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home, LANG: 'C.UTF-8', ...o.env };
  const errFile = o.detached ? join(tmpdir(), `berth-rl-${process.pid}-${Date.now()}.err`) : undefined;
  const errFd = errFile ? openSync(errFile, 'w') : undefined;
  try {
    const r = spawnSync('runuser', ['-u', user.name, '--', process.execPath, binPath(tool), ...args], {
      encoding: 'utf8', env, cwd: user.home, timeout: 60_000, input: o.input,
      ...(errFd !== undefined ? { stdio: ['ignore', 'ignore', errFd] } : {}),
    });
    const stderr = errFile ? readFileSync(errFile, 'utf8') : r.stderr ?? '';
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr };
  } finally {
    if (errFd !== undefined) closeSync(errFd);
    if (errFile) rmSync(errFile, { force: true });
  }
}

/** `berth ARGS` as `user` (the run root is then /tmp/berth-run-UID). */
export function berthAs(user: TestUser, args: string[], opts: RunAsOptions = {}): Result {
  return runAs(user, 'berth', args, opts);
}

export function dataRootOf(user: TestUser): string {
  return join(user.home, '.local', 'share', 'berth');
}
