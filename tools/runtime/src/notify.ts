/**
 * sd_notify(3) readiness through the runtime, the way runc does it: when the
 * caller has NOTIFY_SOCKET (systemd's Type=notify unit, podman
 * --sdnotify=container), `create` bind-mounts a directory of the runtime's
 * own, ROOT/ID/notify, read-only at /run/notify in the container and sets
 * NOTIFY_SOCKET=/run/notify/notify.sock in the container's environment;
 * `start` (and `run`) binds a datagram socket there before opening the gate,
 * waits for the container's READY=1, forwards it to the caller's socket with
 * MAINPID=<init pid> (the pid the service manager should watch), and only
 * then returns. A proxy instead of a bind of the caller's socket: the
 * caller's socket may be abstract (`@name`, which a new network namespace
 * cannot reach), and a caller waiting on `start` is told when the service is
 * ready, not merely started.
 */
import { existsSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, log } from '@berth/cli-kit';
import type { Mount } from '@berth/oci-spec';
import { closeFd } from '@berth/sys';
import { check, errnoName, fn, lastErrno } from '@berth/sys/libc';
import { containerDir, isAlive, type ContainerRecord } from './state.ts';

export const NOTIFY_DIR_IN_CONTAINER = '/run/notify';
export const NOTIFY_SOCKET_IN_CONTAINER = `${NOTIFY_DIR_IN_CONTAINER}/notify.sock`;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;

export function notifyDir(id: string): string {
  return join(containerDir(id), 'notify');
}

/** The caller's NOTIFY_SOCKET, or undefined when readiness is not asked for. */
export function callerNotifySocket(): string | undefined {
  const s = process.env.NOTIFY_SOCKET;
  return s === undefined || s === '' ? undefined : s;
}

/**
 * create: make ROOT/ID/notify and return the mount the init appends to the
 * config's mounts (last, so it lands on whatever the config mounted at /run).
 */
export function prepareNotifyDir(id: string): Mount {
  const dir = notifyDir(id);
  // 0755: the container's root (a user namespace's root is not the host's) connects through it.
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  return { destination: NOTIFY_DIR_IN_CONTAINER, type: 'bind', source: dir, options: ['bind', 'nosuid', 'noexec', 'nodev', 'ro'] };
}

/** struct sockaddr_un for a path, or for an abstract name written `@name` (unix(7)). */
function sockaddrUn(path: string): { addr: Buffer; len: number } {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path);
  if (name.length > 107) throw new BerthError('E_NOTIFY', `NOTIFY_SOCKET ${path}: longer than a unix socket path may be (107 bytes)`);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  // An abstract name is exactly its bytes after the leading NUL; a path ends with a NUL.
  return { addr, len: 2 + (abstract ? 1 + name.length : name.length + 1) };
}

const socket = () => fn<(d: number, t: number, p: number) => number>('socket', 'int socket(int domain, int type, int protocol)');

/** The runtime's end of the container's NOTIFY_SOCKET, bound before the container may run. */
export class NotifyListener {
  private constructor(private fd: number, readonly path: string) {}

  /** Bind ROOT/ID/notify/notify.sock when the caller asked for readiness and create made the directory. */
  static open(id: string): NotifyListener | undefined {
    const caller = callerNotifySocket();
    const dir = notifyDir(id);
    if (caller === undefined || !existsSync(dir)) return undefined;
    // The caller's address is checked before the container may run, not after it reported.
    sockaddrUn(caller);
    const path = join(dir, 'notify.sock');
    const bind = fn<(s: number, a: Buffer, l: number) => number>('bind', 'int bind(int s, const void *addr, uint32_t len)');
    const fd = check(socket()(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), 'socket');
    try {
      const { addr, len } = sockaddrUn(path);
      check(bind(fd, addr, len), 'bind', path);
      // Any uid in the container may report (its root may be an unprivileged host uid).
      chmodSync(path, 0o777);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return new NotifyListener(fd, path);
  }

  /**
   * Wait until the container sends a READY= line (forwarded to the caller's
   * socket with MAINPID) or its init is gone; runc waits as long, with no
   * deadline: a service that never reports is the unit's timeout to judge.
   */
  async relayReady(rec: Pick<ContainerRecord, 'pid' | 'pidStartTime'>): Promise<boolean> {
    const recv = fn<(s: number, b: Buffer, n: number, f: number) => number>('recv', 'long recv(int s, void *buf, size_t len, int flags)');
    // Connected first, as runc does: a caller socket that is not there fails
    // `start` at once (the container runs on), instead of after READY.
    const client = connectCaller(callerNotifySocket()!);
    try {
      const buf = Buffer.alloc(4096);
      for (;;) {
        const n = Number(recv(this.fd, buf, buf.length, MSG_DONTWAIT));
        if (n >= 0) {
          const ready = buf.subarray(0, n).toString().split('\n').find((line) => line.startsWith('READY='));
          if (ready !== undefined) {
            sendAll(client, [`${ready}\n`, `MAINPID=${rec.pid}\n`]);
            return true;
          }
          continue;
        }
        const errno = lastErrno();
        if (errno !== EAGAIN && errno !== EINTR) check(-1, 'recv', this.path);
        if (!isAlive(rec)) return false;
        // Polled, not blocked on: `run` forwards signals and waits for the exit meanwhile.
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      closeFd(client);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    closeFd(this.fd);
    this.fd = -1;
  }
}

/** A datagram socket connected to the caller's NOTIFY_SOCKET. */
function connectCaller(target: string): number {
  const connect = fn<(s: number, a: Buffer, l: number) => number>('connect', 'int connect(int s, const void *addr, uint32_t len)');
  const fd = check(socket()(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), 'socket');
  const { addr, len } = sockaddrUn(target);
  if (connect(fd, addr, len) < 0) {
    const errno = lastErrno();
    closeFd(fd);
    throw new BerthError('E_NOTIFY', `NOTIFY_SOCKET ${target}: connect: ${errnoName(errno)}`);
  }
  return fd;
}

/** Each message as one datagram; a caller that went away meanwhile only loses its readiness. */
function sendAll(fd: number, messages: string[]): void {
  const send = fn<(s: number, b: Buffer, n: number, f: number) => number>('send', 'long send(int s, const void *buf, size_t len, int flags)');
  for (const m of messages) {
    const b = Buffer.from(m);
    if (Number(send(fd, b, b.length, 0)) < 0) {
      log.warn(`NOTIFY_SOCKET: send: ${errnoName(lastErrno())}`);
      return;
    }
  }
}
