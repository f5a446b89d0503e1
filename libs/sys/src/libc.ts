/**
 * The one place that opens libc through koffi. Every binding in this lib is a
 * thin, synchronous call: it returns what the kernel returned or throws a
 * SysError naming the call, the path and the errno (`mount tmpfs on /x: EPERM`),
 * the way crun words its errors. libc is opened on first use, so a binary that
 * bundles this lib but never calls it does not pay for koffi at start-up.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { BerthError } from '@berth/cli-kit';

type Koffi = typeof import('koffi');
type Lib = ReturnType<Koffi['load']>;

let koffiModule: Koffi | undefined;
let libcHandle: Lib | undefined;
const funcs = new Map<string, (...args: never[]) => unknown>();

export function koffi(): Koffi {
  if (!koffiModule) {
    const require = createRequire(import.meta.url);
    koffiModule = require('koffi') as Koffi;
  }
  return koffiModule;
}

export function libc(): Lib {
  libcHandle ??= koffi().load('libc.so.6');
  return libcHandle;
}

/**
 * Bind a libc function once by its C prototype. `key` lets one symbol be bound
 * with several prototypes (syscall(2) with different argument lists).
 */
export function fn<T extends (...args: never[]) => unknown>(key: string, proto: string): T {
  let f = funcs.get(key);
  if (!f) {
    f = libc().func(proto) as unknown as (...args: never[]) => unknown;
    funcs.set(key, f);
  }
  return f as T;
}

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** A failed system call: `call path: ENAME`. `errno` is the raw number. */
export class SysError extends BerthError {
  readonly errno: number;
  readonly call: string;
  constructor(call: string, path: string | undefined, errno: number) {
    super('E_SYS', `${call}${path === undefined ? '' : ' ' + path}: ${errnoName(errno)}`);
    this.name = 'SysError';
    this.errno = errno;
    this.call = call;
  }
  get errnoName(): string {
    return errnoName(this.errno);
  }
}

/** Throw a SysError when a call returned -1 (or any negative value). */
export function check(ret: number | bigint, call: string, path?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(call, path, koffi().errno());
  return n;
}

export function lastErrno(): number {
  return koffi().errno();
}

/** x86_64 and aarch64 syscall numbers for the calls glibc 2.36 has no wrapper for. */
const syscallNumbers: Record<string, Record<string, number>> = {
  x64: { pivot_root: 155, capget: 125, capset: 126, open_tree: 428, mount_setattr: 442, close_range: 436 },
  arm64: { pivot_root: 41, capget: 90, capset: 91, open_tree: 428, mount_setattr: 442, close_range: 436 },
};

export function syscallNumber(name: string): number {
  const n = syscallNumbers[process.arch]?.[name];
  if (n === undefined) throw new BerthError('E_SYS', `${name}: no syscall number known for ${process.arch}`);
  return n;
}
