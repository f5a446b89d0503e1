/**
 * The last steps before a container process runs: file descriptor flags
 * (fcntl(2): Node opens everything close-on-exec, including fds 0-2 after it
 * touches them), close_range(2), signal dispositions (Node ignores SIGPIPE,
 * and an ignored signal stays ignored across execve), and execve(2) itself.
 */
import { check, fn, syscallNumber } from './libc.ts';

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_NONBLOCK = 0o4000;

function fcntl(fd: number, cmd: number, arg: number, what: string): number {
  const f = fn<(fd: number, cmd: number, arg: number) => number>('fcntl', 'int fcntl(int fd, int cmd, int arg)');
  return check(f(fd, cmd, arg), what, `fd ${fd}`);
}

export function setCloseOnExec(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFD, 0, 'fcntl F_GETFD');
  fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC, 'fcntl F_SETFD');
}

export function setBlocking(fd: number): void {
  const flags = fcntl(fd, F_GETFL, 0, 'fcntl F_GETFL');
  if (flags & O_NONBLOCK) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK, 'fcntl F_SETFL');
}

/** True when `fd` is open in this process. */
export function isOpen(fd: number): boolean {
  const f = fn<(fd: number, cmd: number, arg: number) => number>('fcntl', 'int fcntl(int fd, int cmd, int arg)');
  return f(fd, F_GETFD, 0) >= 0;
}

const CLOSE_RANGE_CLOEXEC = 4;

/** Mark every fd from `first` up close-on-exec, so nothing of the runtime leaks into the container. */
export function cloexecFrom(first: number): void {
  const f = fn<(n: number, a: number, b: number, fl: number) => number>('syscall_close_range', 'long syscall(long n, unsigned int a, unsigned int b, unsigned int flags)');
  check(f(syscallNumber('close_range'), first, 0xffffffff, CLOSE_RANGE_CLOEXEC), 'close_range');
}

export function dup2(from: number, to: number): void {
  const f = fn<(a: number, b: number) => number>('dup2', 'int dup2(int a, int b)');
  check(f(from, to), 'dup2', `${from} -> ${to}`);
}

/** Give every catchable signal its default disposition and unblock all signals. */
export function resetSignals(): void {
  const signal = fn<(sig: number, handler: null) => unknown>('signal', 'void *signal(int sig, void *handler)');
  for (let s = 1; s < 32; s++) if (s !== 9 && s !== 19) signal(s, null);
  const sigprocmask = fn<(how: number, set: Buffer, old: null) => number>('sigprocmask', 'int sigprocmask(int how, const void *set, void *old)');
  check(sigprocmask(2 /* SIG_SETMASK */, Buffer.alloc(128), null), 'sigprocmask');
}

/** execve(2); returns only by throwing. */
export function execve(path: string, args: readonly string[], env: readonly string[]): never {
  const f = fn<(p: string, a: (string | null)[], e: (string | null)[]) => number>(
    'execve', 'int execve(const char *path, const char **argv, const char **envp)');
  check(f(path, [...args, null], [...env, null]), 'execve', path);
  throw new Error('unreachable: execve returned');
}

export function mkfifo(path: string, mode: number): void {
  const f = fn<(p: string, m: number) => number>('mkfifo', 'int mkfifo(const char *path, uint32_t mode)');
  check(f(path, mode), 'mkfifo', path);
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function mknod(path: string, mode: number, major: number, minor: number): void {
  const f = fn<(p: string, m: number, d: bigint) => number>('mknod', 'int mknod(const char *path, uint32_t mode, uint64_t dev)');
  check(f(path, mode, makedev(major, minor)), 'mknod', path);
}

export interface WaitResult { pid: number; code?: number; signal?: number }

const WEXITED = 4;
const WNOHANG = 1;
const P_PID = 1;

/**
 * waitid(P_PID, pid, WEXITED | WNOHANG): the exit of a child (or of an orphan
 * re-parented to this subreaper), or undefined while it runs. libuv only waits
 * for the pids it spawned, so this does not race Node's child_process.
 */
export function waitExited(pid: number): WaitResult | undefined {
  const f = fn<(idtype: number, id: number, info: Buffer, options: number) => number>(
    'waitid', 'int waitid(int idtype, uint32_t id, void *infop, int options)');
  const info = Buffer.alloc(128);
  check(f(P_PID, pid, info, WEXITED | WNOHANG), 'waitid', String(pid));
  if (info.readInt32LE(16) === 0) return undefined;
  const code = info.readInt32LE(8);
  const status = info.readInt32LE(24);
  // si_code: CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3
  return code === 1 ? { pid, code: status } : { pid, signal: status };
}
