/**
 * Audit records and events. The kernel writes one record per message:
 * `audit(SECONDS.MILLIS:SERIAL): name=value name=value ...`; auditd's log
 * writes the same text behind `type=NAME msg=` (and, in the "enriched"
 * format, interpreted fields after a 0x1d separator, which we drop). Records
 * sharing a serial are one event: a SYSCALL record with its CWD, PATH,
 * PROCTITLE... and, for syscall events, a closing EOE record.
 *
 * Values come three ways: quoted ("..."), bare (numbers, flags), or
 * hex-encoded when an untrusted string holds a space, quote or control byte
 * (name, comm, exe, cwd, proctitle, key): those are decoded here.
 */
import { readFileSync } from 'node:fs';

export interface AuditRecord {
  type: string;
  typeNumber: number | null;
  /** Seconds since the epoch, with milliseconds. */
  time: number;
  serial: number;
  fields: Record<string, string>;
}

/** Record types from <linux/audit.h> and libaudit's names for them. */
const TYPE_NAMES: Record<number, string> = {
  1006: 'LOGIN', 1100: 'USER_AUTH', 1101: 'USER_ACCT', 1103: 'CRED_ACQ', 1104: 'CRED_DISP',
  1105: 'USER_START', 1106: 'USER_END', 1107: 'USER_AVC', 1112: 'USER_LOGIN', 1130: 'SERVICE_START',
  1131: 'SERVICE_STOP', 1300: 'SYSCALL', 1302: 'PATH', 1303: 'IPC', 1304: 'SOCKETCALL',
  1305: 'CONFIG_CHANGE', 1306: 'SOCKADDR', 1307: 'CWD', 1309: 'EXECVE', 1320: 'EOE',
  1321: 'BPRM_FCAPS', 1322: 'CAPSET', 1323: 'MMAP', 1324: 'NETFILTER_PKT', 1325: 'NETFILTER_CFG',
  1326: 'SECCOMP', 1327: 'PROCTITLE', 1400: 'AVC', 1701: 'ANOM_ABEND', 1702: 'ANOM_LINK',
};
const TYPE_NUMBERS = new Map(Object.entries(TYPE_NAMES).map(([n, name]) => [name, Number(n)]));

export function recordTypeName(n: number): string {
  return TYPE_NAMES[n] ?? `UNKNOWN[${n}]`;
}

/** Fields the kernel hex-encodes when their value is not a plain word. */
const HEX_FIELDS = new Set(['name', 'comm', 'exe', 'cwd', 'proctitle', 'key', 'path', 'dir', 'cmd', 'data', 'acct']);

const HEADER_RE = /audit\((\d+)\.(\d+):(\d+)\):\s?/;

/** Split `a=1 b="x y" c=(null)` into fields, keeping quoted values whole. */
export function parseFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)=("([^"]*)"|'([^']*)'|\S*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const name = m[1]!;
    if (m[3] !== undefined) out[name] = m[3];
    else if (m[4] !== undefined) out[name] = m[4];
    else {
      const bare = m[2]!;
      out[name] = HEX_FIELDS.has(name) && /^([0-9A-F]{2})+$/.test(bare) && bare !== '00' ? decodeHex(name, bare) : bare;
    }
    // `msg='op=... res=1'` in user records nests fields: expose them too.
    if (name === 'msg' && m[4] !== undefined) Object.assign(out, parseFields(m[4]));
  }
  return out;
}

function decodeHex(name: string, hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  // proctitle is argv with NUL separators; a multi-key rule joins keys with 0x01.
  if (name === 'proctitle') return bytes.toString('utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  return bytes.toString('utf8');
}

/** One record from the netlink socket: its netlink type and text. */
export function parseKernelRecord(type: number, text: string): AuditRecord | undefined {
  const m = HEADER_RE.exec(text);
  if (!m) return undefined;
  return {
    type: recordTypeName(type),
    typeNumber: type,
    time: Number(m[1]) + Number(m[2]) / 1000,
    serial: Number(m[3]),
    fields: parseFields(text.slice(m.index + m[0].length)),
  };
}

/** One line of auditd's log (`[node=N ]type=NAME msg=audit(...): ...`). */
export function parseLogLine(line: string): AuditRecord | undefined {
  const plain = line.split('\x1d')[0]!;
  const t = /(?:^|\s)type=(\S+)\s+msg=/.exec(plain);
  const m = HEADER_RE.exec(plain);
  if (!t || !m) return undefined;
  const type = t[1]!;
  const num = TYPE_NUMBERS.get(type) ?? (/^UNKNOWN\[(\d+)\]$/.exec(type) ? Number(/\d+/.exec(type)![0]) : null);
  return {
    type,
    typeNumber: num,
    time: Number(m[1]) + Number(m[2]) / 1000,
    serial: Number(m[3]),
    fields: parseFields(plain.slice(m.index + m[0].length)),
  };
}

/** x86_64 syscall numbers of the calls file watches and container work see most. */
const X86_64_SYSCALLS: Record<number, string> = {
  0: 'read', 1: 'write', 2: 'open', 3: 'close', 4: 'stat', 5: 'fstat', 6: 'lstat', 9: 'mmap', 16: 'ioctl',
  17: 'pread64', 18: 'pwrite64', 19: 'readv', 20: 'writev', 21: 'access', 22: 'pipe', 32: 'dup', 33: 'dup2',
  41: 'socket', 42: 'connect', 44: 'sendto', 46: 'sendmsg', 49: 'bind', 56: 'clone', 57: 'fork', 58: 'vfork',
  59: 'execve', 62: 'kill', 72: 'fcntl', 76: 'truncate', 77: 'ftruncate', 80: 'chdir', 82: 'rename',
  83: 'mkdir', 84: 'rmdir', 85: 'creat', 86: 'link', 87: 'unlink', 88: 'symlink', 89: 'readlink',
  90: 'chmod', 91: 'fchmod', 92: 'chown', 93: 'fchown', 94: 'lchown', 101: 'ptrace', 105: 'setuid',
  106: 'setgid', 113: 'setreuid', 114: 'setregid', 117: 'setresuid', 119: 'setresgid', 126: 'capset',
  132: 'utime', 133: 'mknod', 155: 'pivot_root', 157: 'prctl', 161: 'chroot', 165: 'mount', 166: 'umount2',
  188: 'setxattr', 189: 'lsetxattr', 190: 'fsetxattr', 197: 'removexattr', 198: 'lremovexattr',
  199: 'fremovexattr', 235: 'utimes', 257: 'openat', 258: 'mkdirat', 259: 'mknodat', 260: 'fchownat',
  261: 'futimesat', 263: 'unlinkat', 264: 'renameat', 265: 'linkat', 266: 'symlinkat', 268: 'fchmodat',
  269: 'faccessat', 272: 'unshare', 280: 'utimensat', 308: 'setns', 316: 'renameat2', 317: 'seccomp',
  322: 'execveat', 437: 'openat2', 439: 'faccessat2', 452: 'fchmodat2',
};
const AUDIT_ARCH_X86_64 = 'c000003e';

export function syscallName(arch: string | undefined, nr: number): string | null {
  if (arch === AUDIT_ARCH_X86_64) return X86_64_SYSCALLS[nr] ?? null;
  return null;
}

/** 4294967295, (unsigned)-1: "unset" for auid and ses. */
export const UNSET_ID = 4294967295;

export interface AuditPath {
  item: number | null;
  name: string | null;
  nametype: string | null;
  inode: number | null;
  mode: string | null;
}

/** One event: the records of one serial, with the fields people ask about lifted out. */
export interface AuditEvent {
  kind: 'audit-event';
  time: string;
  serial: number;
  types: string[];
  key: string | null;
  syscall: { number: number; name: string | null; arch: string | null; success: boolean | null; exit: number | null } | null;
  pid: number | null;
  ppid: number | null;
  /** The login uid (auid); null when the event has none. */
  auid: number | null;
  /** True when auid is 4294967295: no login session set it (a daemon's child). */
  auidUnset: boolean | null;
  ses: number | null;
  uid: number | null;
  euid: number | null;
  comm: string | null;
  exe: string | null;
  cwd: string | null;
  proctitle: string | null;
  paths: AuditPath[];
  records: { type: string; fields: Record<string, string> }[];
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === '' || !/^-?\d+$/.test(v)) return null;
  return Number(v);
}

function str(v: string | undefined): string | null {
  return v === undefined || v === '(null)' || v === '(none)' ? null : v;
}

/** Lift the common fields out of an event's records. */
export function buildEvent(records: AuditRecord[]): AuditEvent {
  const first = records[0]!;
  const all: Record<string, string> = {};
  // The SYSCALL record wins for process fields; others fill what it lacks.
  const ordered = [...records].sort((a, b) => (a.type === 'SYSCALL' ? -1 : b.type === 'SYSCALL' ? 1 : 0));
  for (const r of ordered) for (const [k, v] of Object.entries(r.fields)) if (!(k in all)) all[k] = v;
  const sys = records.find((r) => r.type === 'SYSCALL');
  const cwd = records.find((r) => r.type === 'CWD');
  const title = records.find((r) => r.type === 'PROCTITLE');
  const paths = records.filter((r) => r.type === 'PATH').map((r) => ({
    item: num(r.fields.item), name: str(r.fields.name), nametype: str(r.fields.nametype),
    inode: num(r.fields.inode), mode: str(r.fields.mode),
  }));
  const keyRaw = str(all.key);
  const auid = num(all.auid);
  let syscall: AuditEvent['syscall'] = null;
  if (sys && sys.fields.syscall !== undefined) {
    const nr = Number(sys.fields.syscall);
    syscall = {
      number: nr,
      name: syscallName(sys.fields.arch, nr),
      arch: sys.fields.arch === AUDIT_ARCH_X86_64 ? 'x86_64' : sys.fields.arch ?? null,
      success: sys.fields.success === undefined ? null : sys.fields.success === 'yes',
      exit: num(sys.fields.exit),
    };
  }
  return {
    kind: 'audit-event',
    time: new Date(first.time * 1000).toISOString(),
    serial: first.serial,
    types: records.map((r) => r.type),
    // Several keys on one rule come joined with 0x01; the first names the rule.
    key: keyRaw === null ? null : keyRaw.split('\x01')[0]!,
    syscall,
    pid: num(all.pid),
    ppid: num(all.ppid),
    auid,
    auidUnset: auid === null ? null : auid === UNSET_ID,
    ses: num(all.ses),
    uid: num(all.uid),
    euid: num(all.euid),
    comm: str(all.comm),
    exe: str(all.exe),
    cwd: cwd ? str(cwd.fields.cwd) : null,
    proctitle: title ? str(title.fields.proctitle) : null,
    paths,
    records: records.map((r) => ({ type: r.type, fields: r.fields })),
  };
}

/**
 * Groups records into events by serial. An event is complete at its EOE
 * record; events without one (single user-space records) are flushed once
 * no record for them came for `quietMs`, or at the end of the input.
 */
export class EventAssembler {
  private readonly pending = new Map<number, { records: AuditRecord[]; last: number }>();
  constructor(private readonly quietMs = 300) {}

  /** Add a record; returns the events it completed. */
  push(r: AuditRecord, now = Date.now()): AuditRecord[][] {
    const done: AuditRecord[][] = [];
    if (r.type === 'EOE') {
      const p = this.pending.get(r.serial);
      this.pending.delete(r.serial);
      if (p) done.push(p.records);
      return done;
    }
    const p = this.pending.get(r.serial);
    if (p) {
      p.records.push(r);
      p.last = now;
    } else {
      this.pending.set(r.serial, { records: [r], last: now });
    }
    return done;
  }

  /** Events that went quiet (or every pending one with `all`). */
  flush(now = Date.now(), all = false): AuditRecord[][] {
    const out: AuditRecord[][] = [];
    for (const [serial, p] of [...this.pending].sort((a, b) => a[0] - b[0])) {
      if (all || now - p.last >= this.quietMs) {
        out.push(p.records);
        this.pending.delete(serial);
      }
    }
    return out;
  }
}

/**
 * `--since` as ausearch's -ts takes it, plus ISO times: `recent` (10 minutes
 * ago), `today`, `yesterday`, `boot`, `this-hour`, an ISO 8601 date/time,
 * seconds since the epoch, or a duration ago (`30s`, `10m`, `2h`, `1d`).
 * Returns seconds since the epoch.
 */
export function parseSince(text: string, now = Date.now()): number {
  const t = text.trim();
  const day = new Date(now);
  day.setHours(0, 0, 0, 0);
  if (t === 'recent') return now / 1000 - 600;
  if (t === 'now') return now / 1000;
  if (t === 'today') return day.getTime() / 1000;
  if (t === 'yesterday') return day.getTime() / 1000 - 86400;
  if (t === 'this-hour') return Math.floor(now / 3_600_000) * 3600;
  if (t === 'boot') return now / 1000 - uptimeSeconds();
  const rel = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(t);
  if (rel) return now / 1000 - Number(rel[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (!Number.isNaN(ms) && /^\d{4}-\d{2}-\d{2}/.test(t)) return ms / 1000;
  throw new Error(`invalid time "${text}": use recent, today, yesterday, boot, this-hour, an ISO 8601 time, epoch seconds, or 30s/10m/2h/1d ago`);
}

function uptimeSeconds(): number {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}
