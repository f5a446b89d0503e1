/**
 * The kernel audit netlink socket (netlink(7), protocol NETLINK_AUDIT): the
 * interface auditctl and auditd use. Two kinds of socket:
 *
 * - a control socket (no multicast group): request/reply with the kernel,
 *   AUDIT_GET / AUDIT_SET for the status, AUDIT_ADD_RULE / AUDIT_DEL_RULE /
 *   AUDIT_LIST_RULES for rules. Each request asks for an ACK, so a refusal
 *   comes back as an NLMSG_ERROR carrying the errno.
 * - a log socket bound to multicast group AUDIT_NLGRP_READLOG: a read-only
 *   copy of every record kauditd emits (needs CAP_AUDIT_READ). Unlike the
 *   unicast channel auditd registers with AUDIT_SET pid, any number of
 *   readers may join, so reading does not displace a running auditd.
 *
 * The kernel only answers the initial user and pid namespace
 * (audit_netlink_ok: ECONNREFUSED elsewhere), and a kernel built without
 * CONFIG_AUDIT has no NETLINK_AUDIT protocol (EPROTONOSUPPORT). Both become
 * an AuditUnavailableError naming the call and the errno.
 */
import { BerthError } from '@berth/cli-kit';
import { errnoName, fn, lastErrno } from '@berth/sys/libc';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_AUDIT = 9;
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLMSG_HDRLEN = 16;

/** Message types from <linux/audit.h>. */
export const AUDIT_GET = 1000;
export const AUDIT_SET = 1001;
export const AUDIT_LIST_RULES = 1013;
export const AUDIT_ADD_RULE = 1011;
export const AUDIT_DEL_RULE = 1012;
/** Multicast group number 1; nl_groups is a bitmask, so bit 0. */
export const AUDIT_NLGRP_READLOG = 1;

const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;

/** Audit cannot be used from here: no NETLINK_AUDIT in the kernel, or it refuses this namespace. */
export class AuditUnavailableError extends BerthError {
  readonly errno: number;
  constructor(call: string, errno: number) {
    const name = errnoName(errno);
    const why = name === 'EPROTONOSUPPORT'
      ? 'this kernel has no audit support (built without CONFIG_AUDIT)'
      : name === 'ECONNREFUSED'
        ? 'the kernel answers audit requests only from the initial user and pid namespaces'
        : name === 'EPERM' || name === 'EACCES'
          ? 'it needs root (CAP_AUDIT_CONTROL to change rules, CAP_AUDIT_READ to read records)'
          : 'the kernel refused';
    super('E_AUDIT_UNAVAILABLE', `audit is not available: ${call}: ${name}: ${why}`);
    this.name = 'AuditUnavailableError';
    this.errno = errno;
  }
}

/** The kernel refused one audit request (a rule it rejects, a rule that does not exist). */
export class AuditRequestError extends BerthError {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super('E_AUDIT_REQUEST', `${what}: ${errnoName(errno)}`);
    this.name = 'AuditRequestError';
    this.errno = errno;
  }
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

type SocketFn = (d: number, t: number, p: number) => number;
type BindFn = (s: number, a: Buffer, l: number) => number;
type SendFn = (s: number, b: Buffer, l: number, f: number) => number | bigint;
type RecvFn = (s: number, b: Buffer, l: number, f: number) => number | bigint;
type PollFn = ((fds: Buffer, n: number, t: number) => number) & {
  async: (fds: Buffer, n: number, t: number, cb: (err: unknown, res: number) => void) => void;
};

function sysSocket(): SocketFn {
  return fn<SocketFn>('socket', 'int socket(int domain, int type, int protocol)');
}
function sysBind(): BindFn {
  return fn<BindFn>('bind', 'int bind(int s, const void *addr, uint32_t len)');
}
function sysSend(): SendFn {
  return fn<SendFn>('send', 'long send(int s, const void *buf, unsigned long len, int flags)');
}
function sysRecv(): RecvFn {
  return fn<RecvFn>('recv', 'long recv(int s, void *buf, unsigned long len, int flags)');
}
function sysPoll(): PollFn {
  return fn<PollFn>('poll', 'int poll(void *fds, unsigned long nfds, int timeout)');
}
function sysClose(fd: number): void {
  fn<(fd: number) => number>('close', 'int close(int fd)')(fd);
}

/** Split a datagram into netlink messages (each header says its length; bodies are 4-aligned). */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN) break;
    const end = Math.min(off + len, buf.length);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      payload: buf.subarray(off + NLMSG_HDRLEN, end),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

function sockaddrNl(groups: number): Buffer {
  // struct sockaddr_nl { sa_family_t nl_family; unsigned short pad; u32 nl_pid; u32 nl_groups; }
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(AF_NETLINK, 0);
  sa.writeUInt32LE(0, 4); // 0: the kernel assigns our port id
  sa.writeUInt32LE(groups, 8);
  return sa;
}

function openSocket(groups: number): number {
  const fd = Number(sysSocket()(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT));
  if (fd < 0) throw new AuditUnavailableError('socket(AF_NETLINK, NETLINK_AUDIT)', lastErrno());
  if (Number(sysBind()(fd, sockaddrNl(groups), 12)) < 0) {
    const errno = lastErrno();
    sysClose(fd);
    throw new AuditUnavailableError(groups ? 'bind NETLINK_AUDIT to AUDIT_NLGRP_READLOG' : 'bind NETLINK_AUDIT', errno);
  }
  return fd;
}

/**
 * A control socket: one request at a time, replies matched by sequence
 * number. Replies come back at once (the kernel answers in the sendmsg call's
 * context), so a bounded blocking poll is fine here.
 */
export class AuditControl {
  private fd: number;
  private seq = Math.floor(Date.now() / 1000) & 0xffff;
  private readonly buf = Buffer.alloc(1 << 16);

  constructor() {
    this.fd = openSocket(0);
  }

  close(): void {
    if (this.fd >= 0) sysClose(this.fd);
    this.fd = -1;
  }

  /**
   * Send `type` with `payload` and collect replies until the ACK (or, for a
   * dump like AUDIT_LIST_RULES, until NLMSG_DONE). Returns the data replies.
   */
  request(type: number, payload: Buffer, what: string, opts: { dump?: boolean; reply?: boolean } = {}): NetlinkMessage[] {
    const seq = ++this.seq;
    const len = NLMSG_HDRLEN + payload.length;
    const msg = Buffer.alloc((len + 3) & ~3);
    msg.writeUInt32LE(len, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
    msg.writeUInt32LE(seq, 8);
    msg.writeUInt32LE(0, 12);
    payload.copy(msg, NLMSG_HDRLEN);
    if (Number(sysSend()(this.fd, msg, msg.length, 0)) < 0) {
      const errno = lastErrno();
      if (errnoName(errno) === 'ECONNREFUSED') throw new AuditUnavailableError(what, errno);
      throw new AuditRequestError(what, errno);
    }
    const replies: NetlinkMessage[] = [];
    let acked = false;
    // The kernel may send a data reply after the ACK (audit_send_reply hands
    // it to a kernel thread), so a request that expects one waits for both.
    let done = !opts.dump && !opts.reply;
    const deadline = Date.now() + 5000;
    while (!(acked && done)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new BerthError('E_AUDIT_TIMEOUT', `${what}: no reply from the kernel within 5 s`);
      const pfd = Buffer.alloc(8);
      pfd.writeInt32LE(this.fd, 0);
      pfd.writeInt16LE(POLLIN, 4);
      const ready = sysPoll()(pfd, 1, left);
      if (ready <= 0) continue;
      const n = Number(sysRecv()(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN || errno === EINTR) continue;
        throw new AuditRequestError(`${what}: recv`, errno);
      }
      for (const m of parseMessages(this.buf.subarray(0, n))) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_ERROR) {
          const err = -m.payload.readInt32LE(0);
          if (err !== 0) {
            if (errnoName(err) === 'ECONNREFUSED') throw new AuditUnavailableError(what, err);
            throw new AuditRequestError(what, err);
          }
          acked = true;
        } else if (m.type === NLMSG_DONE) {
          done = true;
        } else {
          replies.push({ ...m, payload: Buffer.from(m.payload) });
          if (opts.reply) done = true;
        }
      }
    }
    return replies;
  }
}

/** Run `f` with a control socket that is closed afterwards. */
export function withControl<T>(f: (c: AuditControl) => T): T {
  const c = new AuditControl();
  try {
    return f(c);
  } finally {
    c.close();
  }
}

/**
 * A reader of the AUDIT_NLGRP_READLOG multicast group. Each message is one
 * record: its netlink type is the record type (1300 SYSCALL, 1302 PATH...),
 * its payload the text `audit(SECONDS.MILLIS:SERIAL): field=value ...`.
 */
export class AuditLogReader {
  private fd: number;
  private readonly buf = Buffer.alloc(1 << 17);
  /** Set when the socket buffer overflowed and the kernel dropped records for us. */
  overruns = 0;

  constructor() {
    this.fd = openSocket(1 << (AUDIT_NLGRP_READLOG - 1));
    // A larger receive buffer rides out bursts between two polls; root may
    // go past rmem_max with SO_RCVBUFFORCE. Failure only means the default.
    const setsockopt = fn<(s: number, l: number, o: number, v: Buffer, n: number) => number>(
      'setsockopt', 'int setsockopt(int s, int level, int name, const void *val, uint32_t len)');
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 << 20, 0);
    setsockopt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4);
  }

  close(): void {
    if (this.fd >= 0) sysClose(this.fd);
    this.fd = -1;
  }

  /** Every record waiting in the socket, without blocking. */
  drain(): { type: number; text: string }[] {
    const out: { type: number; text: string }[] = [];
    for (;;) {
      const n = Number(sysRecv()(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const errno = lastErrno();
        if (errno === ENOBUFS) {
          this.overruns++;
          continue;
        }
        if (errno === EAGAIN || errno === EINTR) return out;
        throw new AuditRequestError('recv from AUDIT_NLGRP_READLOG', errno);
      }
      for (const m of parseMessages(this.buf.subarray(0, n))) {
        if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) continue;
        out.push({ type: m.type, text: m.payload.toString('utf8').replace(/\0+$/, '') });
      }
    }
  }

  /**
   * Wait up to `timeoutMs` for records. poll(2) runs on koffi's worker
   * thread (.async), so the event loop stays free for timers and signals.
   */
  wait(timeoutMs: number): Promise<boolean> {
    const pfd = Buffer.alloc(8);
    pfd.writeInt32LE(this.fd, 0);
    pfd.writeInt16LE(POLLIN, 4);
    return new Promise((resolve) => {
      sysPoll().async(pfd, 1, timeoutMs, (err, res) => resolve(!err && res > 0));
    });
  }
}
