/**
 * @berth/seccomp: a runtime-spec seccomp profile (config-linux.md#seccomp)
 * compiled by libseccomp into a BPF program and loaded into the calling process.
 *
 * loadSeccomp is irreversible: the filter stays on every thread of this process
 * and on everything it execs. The runtime calls it last, just before execve.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { constants } from 'node:os';
import { BerthError, log } from '@berth/cli-kit';
import type { Seccomp } from '@berth/oci-spec';
import { libseccomp, type LibSeccomp } from './libseccomp.ts';
import { planSeccomp, SECCOMP_ACTIONS, SECCOMP_ARCHITECTURES, SECCOMP_FLAGS, SECCOMP_OPERATORS, type FilterPlan } from './profile.ts';

export { planSeccomp, validateSeccomp, actionValue, SECCOMP_ACTIONS, SECCOMP_ARCHITECTURES, SECCOMP_FLAGS, SECCOMP_OPERATORS, type FilterPlan, type RulePlan } from './profile.ts';

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** libseccomp returns -errno; name it the way error messages elsewhere do. */
function errName(rc: number): string {
  return errnoNames.get(-rc) ?? `error ${rc}`;
}

function sysFail(what: string, rc: number): never {
  throw new BerthError('E_SECCOMP', `seccomp: ${what}: ${errName(rc)}`);
}

const EEXIST = constants.errno.EEXIST;
const EDOM = constants.errno.EDOM;
const attrNames: Record<number, string> = { 3: 'SCMP_FLTATR_CTL_NNP', 4: 'SCMP_FLTATR_CTL_TSYNC', 6: 'SCMP_FLTATR_CTL_LOG', 7: 'SCMP_FLTATR_CTL_SSB' };

/**
 * Build a libseccomp filter context from a plan. The caller releases it.
 * Order: seccomp_init fixes the default action, architectures come before any
 * rule (libseccomp adds each rule to every architecture present when the rule
 * is added), then attributes, then the rules.
 */
function buildFilter(lib: LibSeccomp, plan: FilterPlan): bigint {
  const ctx = lib.init(plan.defaultAction);
  if (ctx === 0n) throw new BerthError('E_SECCOMP', `seccomp: seccomp_init refused default action ${plan.defaultActionName}`);
  try {
    for (const arch of plan.architectures) {
      const token = lib.archResolveName(arch);
      if (token === 0) throw new BerthError('E_SECCOMP', `seccomp: architecture SCMP_ARCH_${arch.toUpperCase()} is unknown to libseccomp ${versionString(lib)}`);
      const rc = lib.archAdd(ctx, token);
      // The native architecture is in every new context already.
      if (rc === -EEXIST) continue;
      // One BPF program cannot check both byte orders (EDOM). An architecture
      // of the other byte order cannot make system calls on this kernel
      // anyway, so leaving it out loses nothing.
      if (rc === -EDOM) {
        log.debug(`seccomp: architecture SCMP_ARCH_${arch.toUpperCase()} has the other byte order and cannot run here, skipped`);
        continue;
      }
      if (rc < 0) sysFail(`seccomp_arch_add SCMP_ARCH_${arch.toUpperCase()}`, rc);
    }
    for (const [attr, value] of plan.attributes) {
      const rc = lib.attrSet(ctx, attr, value);
      if (rc < 0) sysFail(`seccomp_attr_set ${attrNames[attr] ?? attr}=${value}`, rc);
    }
    for (const rule of plan.rules) {
      // libseccomp refuses (EACCES) a rule that repeats the default action; it
      // would change nothing, so runc and crun drop it too.
      if (rule.action === plan.defaultAction) {
        log.debug(`seccomp: ${rule.syscall}: ${rule.actionName} is the default action, rule skipped`);
        continue;
      }
      const nr = lib.syscallResolveName(rule.syscall);
      // -1 is __NR_SCMP_ERROR; other negative numbers are libseccomp's
      // pseudo-syscalls (multiplexed calls like socketcall), valid in rules.
      if (nr === -1) {
        log.debug(`seccomp: syscall ${rule.syscall} is unknown to libseccomp ${versionString(lib)} on this architecture, skipped`);
        continue;
      }
      const rc = lib.ruleAddArray(ctx, rule.action, nr, rule.args);
      if (rc < 0) sysFail(`seccomp_rule_add ${rule.actionName} for syscall ${rule.syscall}${rule.args.length ? ` with ${rule.args.length} argument condition(s)` : ''}`, rc);
    }
    return ctx;
  } catch (err) {
    lib.release(ctx);
    throw err;
  }
}

function versionString(lib: LibSeccomp): string {
  return `${lib.version.major}.${lib.version.minor}.${lib.version.micro}`;
}

const MFD_CLOEXEC = 1;

/** Run an export function into a memfd and read what it wrote. */
function exportTo(lib: LibSeccomp, what: 'bpf' | 'pfc', ctx: bigint): Buffer {
  const fd = lib.memfdCreate(`berth-seccomp-${what}`, MFD_CLOEXEC);
  if (fd < 0) throw new BerthError('E_SECCOMP', `seccomp: memfd_create: ${errnoNames.get(lib.errno()) ?? lib.errno()}`);
  try {
    const rc = what === 'bpf' ? lib.exportBpf(ctx, fd) : lib.exportPfc(ctx, fd);
    if (rc < 0) sysFail(`seccomp_export_${what}`, rc);
    const size = fstatSync(fd).size;
    const out = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, out, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return out.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

function withFilter<T>(spec: Seccomp, fn: (lib: LibSeccomp, ctx: bigint, plan: FilterPlan) => T): T {
  const plan = planSeccomp(spec);
  const lib = libseccomp();
  const ctx = buildFilter(lib, plan);
  try {
    return fn(lib, ctx, plan);
  } finally {
    lib.release(ctx);
  }
}

/**
 * The classic BPF program (struct sock_filter[], 8 bytes per instruction) the
 * kernel would get for this profile, without loading it.
 */
export function compileSeccomp(spec: Seccomp): Buffer {
  return withFilter(spec, (lib, ctx) => exportTo(lib, 'bpf', ctx));
}

/** libseccomp's human-readable pseudo filter code, for --explain and debugging. */
export function explainSeccomp(spec: Seccomp): string {
  return withFilter(spec, (lib, ctx) => exportTo(lib, 'pfc', ctx).toString('utf8'));
}

export interface LoadedSeccomp {
  /**
   * The user-notification fd (seccomp_unotify(2)) when the profile uses
   * SCMP_ACT_NOTIFY; the caller sends it to spec.listenerPath over SCM_RIGHTS.
   * null otherwise.
   */
  notifyFd: number | null;
}

/**
 * Load the profile into this process: every thread (TSYNC), inherited by
 * whatever it execs. Irreversible. Needs CAP_SYS_ADMIN or no_new_privs set
 * beforehand; libseccomp is told not to set no_new_privs itself.
 */
export function loadSeccomp(spec: Seccomp): LoadedSeccomp {
  return withFilter(spec, (lib, ctx, plan) => {
    const rc = lib.load(ctx);
    if (rc < 0) {
      const hint = rc === -constants.errno.EACCES || rc === -constants.errno.EPERM
        ? ' (loading a filter needs CAP_SYS_ADMIN or no_new_privs)'
        : rc === -constants.errno.ESRCH ? ' (a thread of this process has a different filter and cannot be synchronised)' : '';
      sysFail(`seccomp_load${hint}`, rc);
    }
    let notifyFd: number | null = null;
    if (plan.usesNotify) {
      notifyFd = lib.notifyFd(ctx);
      if (notifyFd < 0) sysFail('seccomp_notify_fd', notifyFd);
    }
    log.debug(`seccomp: loaded filter, default ${plan.defaultActionName}, ${plan.rules.length} rule(s)`);
    return { notifyFd };
  });
}

/** What this build supports, in the shape `runc features` reports under linux.seccomp. */
export function seccompFeatures(): {
  enabled: boolean; actions: string[]; operators: string[]; archs: string[];
  knownFlags: string[]; supportedFlags: string[]; libseccomp: { major: number; minor: number; micro: number } | null;
} {
  let version: LibSeccomp['version'] | null = null;
  try {
    version = libseccomp().version;
  } catch {
    version = null;
  }
  return {
    enabled: version !== null,
    actions: [...SECCOMP_ACTIONS],
    operators: Object.keys(SECCOMP_OPERATORS),
    archs: [...SECCOMP_ARCHITECTURES],
    knownFlags: Object.keys(SECCOMP_FLAGS),
    supportedFlags: Object.entries(SECCOMP_FLAGS).filter(([, v]) => v !== null).map(([k]) => k),
    libseccomp: version,
  };
}
