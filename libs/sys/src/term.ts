/**
 * Pseudo-terminals (pty(7)): open the master from a devpts instance's ptmx,
 * unlock it, learn the slave's number, make the slave the controlling terminal
 * of a new session. Done with ioctl(2) on /dev/pts/ptmx so the pty belongs to
 * the container's own devpts, not the host's.
 */
import { openSync } from 'node:fs';
import { check, fn } from './libc.ts';
import { setsid } from './ids.ts';

const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TIOCSCTTY = 0x540e;
const TIOCSWINSZ = 0x5414;

function ioctlPtr(fd: number, req: number, arg: Buffer, what: string): void {
  const f = fn<(fd: number, req: number, arg: Buffer) => number>('ioctl_ptr', 'int ioctl(int fd, unsigned long req, void *arg)');
  check(f(fd, req, arg), what);
}

function ioctlInt(fd: number, req: number, arg: number, what: string): void {
  const f = fn<(fd: number, req: number, arg: number) => number>('ioctl_int', 'int ioctl(int fd, unsigned long req, long arg)');
  check(f(fd, req, arg), what);
}

export interface Pty { master: number; slavePath: string; number: number }

/** Open a pty pair from `ptmx` (e.g. ROOTFS/dev/pts/ptmx); `ptsDir` is where its slaves appear. */
export function openPty(ptmx: string, ptsDir: string): Pty {
  const master = openSync(ptmx, 'r+');
  const unlock = Buffer.alloc(4);
  ioctlPtr(master, TIOCSPTLCK, unlock, `ioctl TIOCSPTLCK ${ptmx}`);
  const n = Buffer.alloc(4);
  ioctlPtr(master, TIOCGPTN, n, `ioctl TIOCGPTN ${ptmx}`);
  const number = n.readUInt32LE(0);
  return { master, slavePath: `${ptsDir}/${number}`, number };
}

export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  ioctlPtr(fd, TIOCSWINSZ, ws, 'ioctl TIOCSWINSZ');
}

/** Start a new session and make `fd` (a terminal) its controlling terminal. */
export function becomeSessionLeader(fd: number): void {
  try {
    setsid();
  } catch (err) {
    // Already a session leader (started by setsid -f): that is what we want.
    if ((err as { errnoName?: string }).errnoName !== 'EPERM') throw err;
  }
  ioctlInt(fd, TIOCSCTTY, 0, 'ioctl TIOCSCTTY');
}

export function closeFd(fd: number): void {
  const f = fn<(fd: number) => number>('close', 'int close(int fd)');
  check(f(fd), 'close', `fd ${fd}`);
}
