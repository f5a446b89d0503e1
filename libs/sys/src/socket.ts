/**
 * File descriptor passing over unix sockets (unix(7), SCM_RIGHTS): how the
 * runtime hands a container's pty master to whoever listens on
 * --console-socket, as runc does. Node's net module cannot send fds, so this
 * uses socket(2)/connect(2)/sendmsg(2)/recvmsg(2) directly.
 */
import { BerthError } from '@berth/cli-kit';
import { check, fn, koffi } from './libc.ts';
import { closeFd } from './term.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

function sockaddrUn(path: string): Buffer {
  const b = Buffer.alloc(110);
  b.writeUInt16LE(AF_UNIX, 0);
  const p = Buffer.from(path);
  if (p.length >= 108) throw new BerthError('E_SOCKET', `socket path too long: ${path}`);
  p.copy(b, 2);
  return b;
}

/** struct msghdr (x86_64/aarch64 layout) with one iovec and a control buffer. */
function msghdr(iov: Buffer, control: Buffer): { hdr: Buffer; iovec: Buffer } {
  const k = fnKoffi();
  const iovec = Buffer.alloc(16);
  iovec.writeBigUInt64LE(BigInt(k.address(iov)), 0);
  iovec.writeBigUInt64LE(BigInt(iov.length), 8);
  const hdr = Buffer.alloc(56);
  hdr.writeBigUInt64LE(BigInt(k.address(iovec)), 16);
  hdr.writeBigUInt64LE(1n, 24);
  hdr.writeBigUInt64LE(BigInt(k.address(control)), 32);
  hdr.writeBigUInt64LE(BigInt(control.length), 40);
  return { hdr, iovec };
}

function fnKoffi(): { address(b: Buffer): bigint | number } {
  return koffi() as unknown as { address(b: Buffer): bigint | number };
}

/** Connect to the unix socket at `path` and send `fd` with SCM_RIGHTS, with `name` as the payload. */
export function sendFd(path: string, fd: number, name = '/dev/ptmx'): void {
  const socket = fn<(d: number, t: number, p: number) => number>('socket', 'int socket(int domain, int type, int protocol)');
  const connect = fn<(s: number, a: Buffer, l: number) => number>('connect', 'int connect(int s, const void *addr, uint32_t len)');
  const sendmsg = fn<(s: number, m: Buffer, f: number) => number>('sendmsg', 'long sendmsg(int s, const void *msg, int flags)');
  const s = check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 'socket');
  try {
    check(connect(s, sockaddrUn(path), 110), 'connect', path);
    // struct cmsghdr { size_t len; int level; int type; } + one int, padded to 8
    const control = Buffer.alloc(24);
    control.writeBigUInt64LE(20n, 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    control.writeInt32LE(fd, 16);
    const payload = Buffer.from(name);
    const { hdr, iovec } = msghdr(payload, control);
    check(sendmsg(s, hdr, 0), 'sendmsg', path);
    void iovec;
  } finally {
    closeFd(s);
  }
}

/** Receive one fd sent with SCM_RIGHTS on connected socket `s`; returns the fd and the payload. */
export function recvFd(s: number): { fd: number; name: string } {
  const recvmsg = fn<(s: number, m: Buffer, f: number) => number>('recvmsg', 'long recvmsg(int s, void *msg, int flags)');
  const payload = Buffer.alloc(4096);
  const control = Buffer.alloc(24);
  const { hdr, iovec } = msghdr(payload, control);
  const n = check(recvmsg(s, hdr, 0), 'recvmsg');
  void iovec;
  if (control.readInt32LE(12) !== SCM_RIGHTS) throw new BerthError('E_SOCKET', 'recvmsg: no SCM_RIGHTS message');
  return { fd: control.readInt32LE(16), name: payload.subarray(0, n).toString() };
}

/** A listening unix socket at `path` (for tests and tools that receive a console). */
export function listenUnix(path: string): number {
  const socket = fn<(d: number, t: number, p: number) => number>('socket', 'int socket(int domain, int type, int protocol)');
  const bind = fn<(s: number, a: Buffer, l: number) => number>('bind', 'int bind(int s, const void *addr, uint32_t len)');
  const listen = fn<(s: number, b: number) => number>('listen', 'int listen(int s, int backlog)');
  const s = check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 'socket');
  check(bind(s, sockaddrUn(path), 110), 'bind', path);
  check(listen(s, 1), 'listen', path);
  return s;
}

export function accept(s: number): number {
  const f = fn<(s: number, a: null, l: null) => number>('accept', 'int accept(int s, void *addr, void *len)');
  return check(f(s, null, null), 'accept');
}
