/**
 * Capabilities (capabilities(7)): capget/capset through syscall(2), the
 * bounding set (PR_CAPBSET_DROP), ambient set (PR_CAP_AMBIENT), keep-caps and
 * no_new_privs through prctl(2). capset changes only the calling thread, so
 * the runtime calls it on the thread that then calls execve.
 */
import { readFileSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { check, fn, syscallNumber } from './libc.ts';

export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** The highest capability number this kernel knows. */
export function lastCap(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    return CAPABILITIES.length - 1;
  }
}

export function capNumber(name: string): number {
  const n = CAPABILITIES.indexOf(name.toUpperCase() as (typeof CAPABILITIES)[number]);
  if (n < 0) throw new BerthError('E_CAP', `unknown capability "${name}"`);
  return n;
}

/** A capability set as a 64-bit mask. */
export function capMask(names: readonly string[] | undefined): bigint {
  let m = 0n;
  for (const n of names ?? []) m |= 1n << BigInt(capNumber(n));
  return m;
}

const PR_SET_DUMPABLE = 4;
const PR_SET_KEEPCAPS = 8;
const PR_CAPBSET_READ = 23;
const PR_CAPBSET_DROP = 24;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const PR_SET_PDEATHSIG = 1;
const PR_SET_CHILD_SUBREAPER = 36;

export function prctl(option: number, arg2 = 0, arg3 = 0, what = `prctl ${option}`): number {
  const f = fn<(o: number, a: number, b: number, c: number, d: number) => number>(
    'prctl', 'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)');
  return check(f(option, arg2, arg3, 0, 0), what);
}

/** Drop every capability not in `keep` from the bounding set (needs CAP_SETPCAP). */
export function dropBoundingSet(keep: bigint): void {
  const last = lastCap();
  for (let c = 0; c <= last; c++) {
    if (keep & (1n << BigInt(c))) continue;
    if (prctl(PR_CAPBSET_READ, c, 0, 'prctl PR_CAPBSET_READ') === 1) {
      prctl(PR_CAPBSET_DROP, c, 0, `prctl PR_CAPBSET_DROP ${CAPABILITIES[c] ?? c}`);
    }
  }
}

export function setKeepCaps(on: boolean): void {
  prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 'prctl PR_SET_KEEPCAPS');
}

export function setNoNewPrivs(): void {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 'prctl PR_SET_NO_NEW_PRIVS');
}

export function setDumpable(on: boolean): void {
  prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 'prctl PR_SET_DUMPABLE');
}

export function setParentDeathSignal(signal: number): void {
  prctl(PR_SET_PDEATHSIG, signal, 0, 'prctl PR_SET_PDEATHSIG');
}

/** Orphaned descendants are re-parented to this process (so it can wait for them). */
export function setChildSubreaper(): void {
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 'prctl PR_SET_CHILD_SUBREAPER');
}

export function clearAmbient(): void {
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 'prctl PR_CAP_AMBIENT_CLEAR_ALL');
}

/** Raise each capability in `mask` in the ambient set (it must be permitted and inheritable). */
export function raiseAmbient(mask: bigint): void {
  for (let c = 0; c <= lastCap(); c++) {
    if (mask & (1n << BigInt(c))) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, `prctl PR_CAP_AMBIENT_RAISE ${CAPABILITIES[c] ?? c}`);
  }
}

export interface CapSets { effective: bigint; permitted: bigint; inheritable: bigint }

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** capset(2) for the calling thread, version 3 (two 32-bit words per set). */
export function capset(sets: CapSets): void {
  const f = fn<(n: number, h: Buffer, d: Buffer) => number>('syscall_capset', 'long syscall(long n, void *hdr, void *data)');
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  hdr.writeInt32LE(0, 4);
  const data = Buffer.alloc(24);
  const words = (m: bigint) => [Number(m & 0xffffffffn), Number((m >> 32n) & 0xffffffffn)];
  const [e0, e1] = words(sets.effective);
  const [p0, p1] = words(sets.permitted);
  const [i0, i1] = words(sets.inheritable);
  data.writeUInt32LE(e0!, 0); data.writeUInt32LE(p0!, 4); data.writeUInt32LE(i0!, 8);
  data.writeUInt32LE(e1!, 12); data.writeUInt32LE(p1!, 16); data.writeUInt32LE(i1!, 20);
  check(f(syscallNumber('capset'), hdr, data), 'capset');
}

export function capget(): CapSets {
  const f = fn<(n: number, h: Buffer, d: Buffer) => number>('syscall_capget', 'long syscall(long n, void *hdr, void *data)');
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  const data = Buffer.alloc(24);
  check(f(syscallNumber('capget'), hdr, data), 'capget');
  const join = (lo: number, hi: number) => BigInt(data.readUInt32LE(lo)) | (BigInt(data.readUInt32LE(hi)) << 32n);
  return { effective: join(0, 12), permitted: join(4, 16), inheritable: join(8, 20) };
}
