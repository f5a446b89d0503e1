/** Resource limits: prlimit(2) (setrlimit on the calling process when pid is 0). See getrlimit(2). */
import { BerthError } from '@berth/cli-kit';
import { check, fn, koffi, SysError } from './libc.ts';

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

export interface Limit { soft: bigint; hard: bigint }

function prlimitFn() {
  return fn<(pid: number, res: number, nw: Buffer | null, old: Buffer | null) => number>(
    'prlimit', 'int prlimit(int pid, int resource, const void *new_limit, void *old_limit)');
}

export function getrlimit(type: string, pid = 0): Limit {
  const res = RLIMITS[type];
  if (res === undefined) throw new BerthError('E_RLIMIT', `unknown rlimit type "${type}"`);
  const old = Buffer.alloc(16);
  check(prlimitFn()(pid, res, null, old), 'prlimit', type);
  return { soft: old.readBigUInt64LE(0), hard: old.readBigUInt64LE(8) };
}

/** Set one limit; the error names the limit and the values asked for. */
export function setrlimit(type: string, soft: bigint, hard: bigint, pid = 0): void {
  const res = RLIMITS[type];
  if (res === undefined) throw new BerthError('E_RLIMIT', `unknown rlimit type "${type}"`);
  const nw = Buffer.alloc(16);
  nw.writeBigUInt64LE(BigInt.asUintN(64, soft), 0);
  nw.writeBigUInt64LE(BigInt.asUintN(64, hard), 8);
  if (prlimitFn()(pid, res, nw, null) < 0) {
    throw new SysError('setrlimit', `${type} (soft ${soft}, hard ${hard})`, koffi().errno());
  }
}
