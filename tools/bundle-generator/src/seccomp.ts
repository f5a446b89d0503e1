import { BerthError } from '@berth/cli-kit';
import type { Seccomp, SeccompArg, SeccompSyscall } from '@berth/oci-spec';
import defaultProfile from '../../../libs/oci-spec/data/seccomp-default.json' with { type: 'json' };

/**
 * Seccomp profiles come in the format podman and Docker read (a superset of
 * the OCI linux.seccomp object): rules may carry `includes`/`excludes` on the
 * container's capabilities and the host architecture, and `archMap` lists the
 * architectures a host can run. berth-bundle resolves those conditions here,
 * once, and writes the plain OCI object the runtime loads into the kernel
 * with seccomp(2) (through libseccomp in runc and crun).
 */
export interface ProfileRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[] };
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: Array<{ architecture: string; subArchitectures?: string[] }>;
  flags?: string[];
  syscalls?: ProfileRule[];
}

export const DEFAULT_SECCOMP_PROFILE = defaultProfile as SeccompProfile;

/** Node's process.arch to libseccomp's names, and the short names profiles use in includes.arches. */
const ARCH: Record<string, { scmp: string; short: string }> = {
  x64: { scmp: 'SCMP_ARCH_X86_64', short: 'x86_64' },
  ia32: { scmp: 'SCMP_ARCH_X86', short: 'x86' },
  arm64: { scmp: 'SCMP_ARCH_AARCH64', short: 'aarch64' },
  arm: { scmp: 'SCMP_ARCH_ARM', short: 'arm' },
  s390x: { scmp: 'SCMP_ARCH_S390X', short: 's390x' },
  ppc64: { scmp: 'SCMP_ARCH_PPC64LE', short: 'ppc64le' },
  riscv64: { scmp: 'SCMP_ARCH_RISCV64', short: 'riscv64' },
};

/** amd64 in Docker profiles means x86_64, arm64 means aarch64: accept both spellings. */
const ARCH_ALIASES: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', '386': 'x86', i386: 'x86' };

function kernelAtLeast(release: string, min: string): boolean {
  const parse = (s: string) => s.split(/[.-]/).slice(0, 2).map((x) => Number.parseInt(x, 10) || 0);
  const [a1, a2] = parse(release);
  const [b1, b2] = parse(min);
  return a1! > b1! || (a1 === b1 && a2! >= b2!);
}

export interface SeccompContext {
  /** The container's bounding capabilities. */
  capabilities: string[];
  /** process.arch of the host. */
  arch: string;
  /** uname -r of the host, for includes.minKernel. */
  kernel: string;
}

export function resolveSeccompProfile(profile: SeccompProfile, ctx: SeccompContext, source = 'seccomp profile'): Seccomp {
  if (typeof profile !== 'object' || profile === null || typeof profile.defaultAction !== 'string') {
    throw new BerthError('E_SECCOMP', `${source}: not a seccomp profile (no defaultAction)`);
  }
  const host = ARCH[ctx.arch];
  const hostShort = host?.short ?? ctx.arch;
  const caps = new Set(ctx.capabilities);
  let architectures: string[] | undefined;
  if (profile.archMap && host) {
    const entry = profile.archMap.find((a) => a.architecture === host.scmp);
    architectures = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [host.scmp];
  } else if (profile.architectures) {
    architectures = profile.architectures;
  }
  const syscalls: SeccompSyscall[] = [];
  (profile.syscalls ?? []).forEach((rule, i) => {
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (!Array.isArray(names) || names.length === 0 || typeof rule.action !== 'string') {
      throw new BerthError('E_SECCOMP', `${source}: syscalls[${i}] needs names and an action`);
    }
    const arches = (xs: string[] | undefined) => (xs ?? []).map((a) => ARCH_ALIASES[a] ?? a);
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (inc.caps && !inc.caps.every((c) => caps.has(c))) return;
    if (inc.arches && !arches(inc.arches).includes(hostShort)) return;
    if (inc.minKernel && !kernelAtLeast(ctx.kernel, inc.minKernel)) return;
    if (exc.caps && exc.caps.some((c) => caps.has(c))) return;
    if (exc.arches && arches(exc.arches).includes(hostShort)) return;
    const out: SeccompSyscall = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  });
  const seccomp: Seccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) seccomp.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures) seccomp.architectures = architectures;
  if (profile.flags) seccomp.flags = profile.flags;
  seccomp.syscalls = syscalls;
  return seccomp;
}
