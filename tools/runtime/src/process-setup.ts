/**
 * The container process's own settings, applied by the init stage just before
 * execve, in the order the kernel needs:
 *
 *   rlimits, oom_score_adj          (while still privileged: raising needs CAP_SYS_RESOURCE)
 *   seccomp if no_new_privs is off  (loading a filter then needs CAP_SYS_ADMIN, so before caps drop)
 *   bounding set                    (PR_CAPBSET_DROP needs CAP_SETPCAP, so before the uid change)
 *   keep-caps, groups, gid, uid     (keep-caps keeps the permitted set across setresuid)
 *   capset                          (per thread: on the main thread, which is the one that execs)
 *   ambient set                     (needs the caps permitted and inheritable: after capset)
 *   no_new_privs, fds, signals
 *   seccomp if no_new_privs is on   (last: the filter then also covers the runtime's own last calls)
 *   execve
 */
import { accessSync, constants as fsConstants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import type { Process, Seccomp } from '@berth/oci-spec';
import { loadSeccomp } from '@berth/seccomp';
import * as sys from '@berth/sys';
import { setgroupsUnlessDenied } from './rootless.ts';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ExecPlan { path: string; args: string[]; env: string[] }

function envValue(env: readonly string[], name: string): string | undefined {
  const e = env.find((v) => v.startsWith(name + '='));
  return e === undefined ? undefined : e.slice(name.length + 1);
}

/** HOME from the container's /etc/passwd when the spec's env has none (as runc does). */
function homeOf(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 6 && Number(f[2]) === uid) return f[5] || '/';
    }
  } catch {
    // No passwd file in the image: "/" as runc uses.
  }
  return '/';
}

/** Find args[0] in the container (after pivot_root) the way execvp would; runc's wording when it is missing. */
export function planExec(proc: Process, extraEnv: readonly string[]): ExecPlan {
  const args = proc.args ?? [];
  if (args.length === 0) throw new BerthError('E_CONFIG', 'process.args: must name the program to run');
  const env = [...(proc.env ?? []), ...extraEnv];
  if (envValue(env, 'HOME') === undefined) env.push(`HOME=${homeOf(proc.user.uid)}`);
  const name = args[0]!;
  const candidates = name.includes('/') ? [name] : (envValue(env, 'PATH') ?? DEFAULT_PATH).split(':').map((d) => `${d || '.'}/${name}`);
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, fsConstants.X_OK);
      return { path: c, args, env };
    } catch {
      continue;
    }
  }
  if (name.includes('/')) throw new BerthError('E_EXEC', `exec: "${name}": stat ${name}: no such file or directory`);
  throw new BerthError('E_EXEC', `exec: "${name}": executable file not found in $PATH`);
}

export function applyRlimits(proc: Process): void {
  for (const r of proc.rlimits ?? []) {
    sys.setrlimit(r.type, BigInt(r.soft), BigInt(r.hard));
  }
}

export function applyOomScoreAdj(proc: Process): void {
  if (proc.oomScoreAdj === undefined) return;
  try {
    writeFileSync('/proc/self/oom_score_adj', String(proc.oomScoreAdj));
  } catch (err) {
    throw new BerthError('E_OOM_SCORE', `write /proc/self/oom_score_adj ${proc.oomScoreAdj}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

export interface FinalizeOptions {
  seccomp?: Seccomp;
  /** fds 3..3+preserveFds-1 stay open in the container. */
  preserveFds: number;
  /** The pty slave to become the controlling terminal and fds 0-2. */
  consoleFd?: number;
}

/**
 * The calls finalizeAndExec makes, behind an interface: the real one is the
 * kernel (through @berth/sys and @berth/seccomp); tests pass a recording
 * double to pin the order without root.
 */
export interface ProcessSyscalls {
  umask(mask: number): void;
  loadSeccomp(profile: Seccomp): void;
  dropBoundingSet(keep: bigint): void;
  setKeepCaps(on: boolean): void;
  setgroups(gids: readonly number[]): void;
  setresgid(gid: number): void;
  setresuid(uid: number): void;
  capset(sets: sys.CapSets): void;
  clearAmbient(): void;
  raiseAmbient(mask: bigint): void;
  setNoNewPrivs(): void;
  becomeSessionLeader(fd: number): void;
  dup2(from: number, to: number): void;
  prepareFds(preserveFds: number): void;
  resetSignals(): void;
  execve(path: string, args: readonly string[], env: readonly string[]): never;
}

export const kernel: ProcessSyscalls = {
  umask: (m) => { process.umask(m); },
  loadSeccomp: (p) => { loadSeccomp(p); },
  dropBoundingSet: sys.dropBoundingSet,
  setKeepCaps: sys.setKeepCaps,
  setgroups: setgroupsUnlessDenied,
  setresgid: sys.setresgid,
  setresuid: sys.setresuid,
  capset: sys.capset,
  clearAmbient: sys.clearAmbient,
  raiseAmbient: sys.raiseAmbient,
  setNoNewPrivs: sys.setNoNewPrivs,
  becomeSessionLeader: sys.becomeSessionLeader,
  dup2: sys.dup2,
  prepareFds: (preserveFds) => {
    // Node marks what it opens close-on-exec and may have set O_NONBLOCK on a
    // shared pipe; the container gets fds 0-2 and the preserved ones as a plain
    // process would, and nothing else of the runtime.
    for (let fd = 0; fd < 3 + preserveFds; fd++) {
      if (!sys.isOpen(fd)) continue;
      sys.setCloseOnExec(fd, false);
      if (fd < 3) sys.setBlocking(fd);
    }
    sys.cloexecFrom(3 + preserveFds);
  },
  resetSignals: sys.resetSignals,
  execve: sys.execve,
};

/** Everything after the gate, ending in execve. Never returns (with the real kernel). */
export function finalizeAndExec(proc: Process, plan: ExecPlan, opts: FinalizeOptions, k: ProcessSyscalls = kernel): never {
  const caps = proc.capabilities ?? {};
  const nnp = proc.noNewPrivileges === true;
  k.umask(proc.user.umask ?? 0o022);
  if (opts.seccomp && !nnp) k.loadSeccomp(opts.seccomp);
  k.dropBoundingSet(sys.capMask(caps.bounding));
  k.setKeepCaps(true);
  k.setgroups(proc.user.additionalGids ?? []);
  k.setresgid(proc.user.gid);
  k.setresuid(proc.user.uid);
  k.capset({ effective: sys.capMask(caps.effective), permitted: sys.capMask(caps.permitted), inheritable: sys.capMask(caps.inheritable) });
  k.setKeepCaps(false);
  k.clearAmbient();
  // The kernel allows an ambient capability only when it is permitted and
  // inheritable; runc's default spec lists ambient caps without inheritable
  // ones, and runc then leaves them out rather than failing. So do we.
  k.raiseAmbient(sys.capMask(caps.ambient) & sys.capMask(caps.inheritable) & sys.capMask(caps.permitted));
  if (nnp) k.setNoNewPrivs();
  if (opts.consoleFd !== undefined) {
    k.becomeSessionLeader(opts.consoleFd);
    for (const fd of [0, 1, 2]) k.dup2(opts.consoleFd, fd);
  }
  k.prepareFds(opts.preserveFds);
  k.resetSignals();
  if (opts.seccomp && nnp) k.loadSeccomp(opts.seccomp);
  return k.execve(plan.path, plan.args, plan.env);
}
