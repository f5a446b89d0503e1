/**
 * The slice of libseccomp's C API (seccomp_init(3), seccomp_rule_add(3),
 * seccomp_attr_set(3), seccomp_load(3), seccomp_export_bpf(3)) that berth uses,
 * bound through koffi. The library is opened on first use, not at import, so a
 * binary that bundles this module but never touches seccomp starts as fast as
 * one that does not.
 */
import { createRequire } from 'node:module';
import { BerthError } from '@berth/cli-kit';

/** struct scmp_arg_cmp from seccomp.h: one argument comparison of a rule. */
export interface ArgCmp {
  arg: number;
  op: number;
  datum_a: bigint;
  datum_b: bigint;
}

export interface LibSeccomp {
  version: { major: number; minor: number; micro: number };
  /** Returns 0n (NULL) when the default action is invalid. */
  init(defaultAction: number): bigint;
  release(ctx: bigint): void;
  archResolveName(name: string): number;
  archAdd(ctx: bigint, arch: number): number;
  syscallResolveName(name: string): number;
  ruleAddArray(ctx: bigint, action: number, syscall: number, args: ArgCmp[]): number;
  attrSet(ctx: bigint, attr: number, value: number): number;
  load(ctx: bigint): number;
  notifyFd(ctx: bigint): number;
  exportBpf(ctx: bigint, fd: number): number;
  exportPfc(ctx: bigint, fd: number): number;
  memfdCreate(name: string, flags: number): number;
  errno(): number;
}

let bound: LibSeccomp | undefined;

/** Open libseccomp.so.2 (once) and bind the functions berth calls. */
export function libseccomp(): LibSeccomp {
  if (bound) return bound;
  const require = createRequire(import.meta.url);
  // koffi is loaded lazily for start-up time; its types come from the package.
  let koffi: typeof import('koffi');
  try {
    koffi = require('koffi') as typeof import('koffi');
  } catch (err) {
    throw new BerthError('E_SECCOMP', `seccomp: cannot load koffi, the FFI that reaches libseccomp: ${(err as Error).message}`, { cause: err });
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libseccomp.so.2');
  } catch (err) {
    throw new BerthError('E_SECCOMP', `seccomp: cannot load libseccomp.so.2 (install libseccomp2): ${(err as Error).message}`, { cause: err });
  }
  const libc = koffi.load('libc.so.6');
  const versionType = koffi.struct('berth_scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
  koffi.struct('berth_scmp_arg_cmp', { arg: 'uint', op: 'int', datum_a: 'uint64_t', datum_b: 'uint64_t' });
  const seccompVersion = lib.func('const berth_scmp_version *seccomp_version(void)');
  const version = koffi.decode(seccompVersion(), versionType) as { major: number; minor: number; micro: number };
  const init = lib.func('void *seccomp_init(uint32_t def_action)');
  const release = lib.func('void seccomp_release(void *ctx)');
  const archResolveName = lib.func('uint32_t seccomp_arch_resolve_name(const char *arch_name)');
  const archAdd = lib.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)');
  const syscallResolveName = lib.func('int seccomp_syscall_resolve_name(const char *name)');
  const ruleAddArray = lib.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const berth_scmp_arg_cmp *arg_array)');
  const attrSet = lib.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)');
  const load = lib.func('int seccomp_load(void *ctx)');
  const notifyFd = lib.func('int seccomp_notify_fd(void *ctx)');
  const exportBpf = lib.func('int seccomp_export_bpf(void *ctx, int fd)');
  const exportPfc = lib.func('int seccomp_export_pfc(void *ctx, int fd)');
  const memfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');
  bound = {
    version,
    init: (a) => BigInt(init(a) ?? 0n),
    release: (ctx) => { release(ctx); },
    archResolveName: (n) => archResolveName(n) as number,
    archAdd: (ctx, a) => archAdd(ctx, a) as number,
    syscallResolveName: (n) => syscallResolveName(n) as number,
    ruleAddArray: (ctx, action, syscall, args) =>
      ruleAddArray(ctx, action, syscall, args.length, args.length === 0 ? null : args) as number,
    attrSet: (ctx, attr, value) => attrSet(ctx, attr, value) as number,
    load: (ctx) => load(ctx) as number,
    notifyFd: (ctx) => notifyFd(ctx) as number,
    exportBpf: (ctx, fd) => exportBpf(ctx, fd) as number,
    exportPfc: (ctx, fd) => exportPfc(ctx, fd) as number,
    memfdCreate: (name, flags) => memfdCreate(name, flags) as number,
    errno: () => koffi.errno(),
  };
  return bound;
}
