import { BerthError } from '@berth/cli-kit';
import type { RuntimeSpec } from './runtime.ts';

/**
 * Typed validation of an OCI runtime config.json (runtime-spec config.md and
 * config-linux.md). It checks what runc and crun would refuse or misread, and
 * names the field that is wrong with a JSON path:
 * `linux.namespaces[2].type: unknown namespace "foo"`.
 *
 * Unknown fields are allowed (the spec says to ignore them); wrong types,
 * relative paths where the spec wants absolute ones, unknown namespace kinds,
 * capabilities, rlimits and seccomp actions are errors.
 */

type Obj = Record<string, unknown>;

const NAMESPACES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

/** capabilities(7) as of Linux 6.x. */
export const KNOWN_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** setrlimit(2) resources, as the spec names them. */
export const KNOWN_RLIMITS = [
  'RLIMIT_AS', 'RLIMIT_CORE', 'RLIMIT_CPU', 'RLIMIT_DATA', 'RLIMIT_FSIZE', 'RLIMIT_LOCKS',
  'RLIMIT_MEMLOCK', 'RLIMIT_MSGQUEUE', 'RLIMIT_NICE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC',
  'RLIMIT_RSS', 'RLIMIT_RTPRIO', 'RLIMIT_RTTIME', 'RLIMIT_SIGPENDING', 'RLIMIT_STACK',
] as const;

const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
const SECCOMP_OPS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];
const SECCOMP_ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64',
];
const SECCOMP_FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];

function fail(path: string, msg: string): never {
  throw new BerthError('E_CONFIG', `${path}: ${msg}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) fail(path, `expected an object, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`}`;
}

function str(v: unknown, path: string, opts: { nonEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
  if (opts.nonEmpty && v === '') fail(path, 'must not be empty');
  return v;
}

function optStr(o: Obj, key: string, path: string): void {
  if (o[key] !== undefined) str(o[key], `${path}.${key}`);
}

function bool(o: Obj, key: string, path: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'boolean') fail(`${path}.${key}`, `expected a boolean, got ${describe(o[key])}`);
}

function int(v: unknown, path: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  // uint64 values such as RLIM_INFINITY (2^64-1) do not fit a double exactly;
  // JSON.parse gives 18446744073709552000, which is still an integer.
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(path, `expected an integer, got ${describe(v)}`);
  if (v < min || v > max) fail(path, `${v} is out of range [${min}, ${max}]`);
  return v;
}

function optInt(o: Obj, key: string, path: string, min?: number, max?: number): void {
  if (o[key] !== undefined) int(o[key], `${path}.${key}`, min, max);
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `expected an array, got ${describe(v)}`);
  return v;
}

function strArr(v: unknown, path: string): string[] {
  return arr(v, path).map((s, i) => str(s, `${path}[${i}]`));
}

function strMap(v: unknown, path: string): void {
  const o = obj(v, path);
  for (const [k, val] of Object.entries(o)) str(val, `${path}[${JSON.stringify(k)}]`);
}

function absPath(v: unknown, path: string): string {
  const s = str(v, path, { nonEmpty: true });
  if (!s.startsWith('/')) fail(path, `"${s}" is not an absolute path`);
  return s;
}

const UINT32_MAX = 0xffffffff;

function validateUser(v: unknown, path: string): void {
  const u = obj(v, path);
  int(u.uid, `${path}.uid`, 0, UINT32_MAX);
  int(u.gid, `${path}.gid`, 0, UINT32_MAX);
  optInt(u, 'umask', path, 0, 0o7777);
  if (u.additionalGids !== undefined) arr(u.additionalGids, `${path}.additionalGids`).forEach((g, i) => int(g, `${path}.additionalGids[${i}]`, 0, UINT32_MAX));
  optStr(u, 'username', path);
}

function validateProcess(v: unknown, path: string): void {
  const p = obj(v, path);
  bool(p, 'terminal', path);
  validateUser(p.user, `${path}.user`);
  if (p.args !== undefined) {
    const args = strArr(p.args, `${path}.args`);
    if (args.length === 0 && p.commandLine === undefined) fail(`${path}.args`, 'must name at least the program to run');
  } else if (p.commandLine === undefined) {
    fail(`${path}.args`, 'is required: the program to run');
  }
  if (p.env !== undefined) {
    strArr(p.env, `${path}.env`).forEach((e, i) => {
      if (!e.includes('=')) fail(`${path}.env[${i}]`, `"${e}" is not of the form KEY=value`);
      if (e.startsWith('=')) fail(`${path}.env[${i}]`, `"${e}" has an empty name`);
    });
  }
  absPath(p.cwd, `${path}.cwd`);
  if (p.capabilities !== undefined) {
    const caps = obj(p.capabilities, `${path}.capabilities`);
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      if (caps[set] === undefined) continue;
      strArr(caps[set], `${path}.capabilities.${set}`).forEach((c, i) => {
        if (!(KNOWN_CAPABILITIES as readonly string[]).includes(c)) fail(`${path}.capabilities.${set}[${i}]`, `unknown capability "${c}"`);
      });
    }
  }
  if (p.rlimits !== undefined) {
    const seen = new Set<string>();
    arr(p.rlimits, `${path}.rlimits`).forEach((r, i) => {
      const rp = `${path}.rlimits[${i}]`;
      const rl = obj(r, rp);
      const type = str(rl.type, `${rp}.type`);
      if (!(KNOWN_RLIMITS as readonly string[]).includes(type)) fail(`${rp}.type`, `unknown rlimit "${type}"`);
      if (seen.has(type)) fail(`${rp}.type`, `duplicate rlimit "${type}"`);
      seen.add(type);
      const soft = int(rl.soft, `${rp}.soft`, 0, Number.MAX_VALUE);
      const hard = int(rl.hard, `${rp}.hard`, 0, Number.MAX_VALUE);
      if (soft > hard) fail(rp, `soft limit ${soft} is above hard limit ${hard}`);
    });
  }
  bool(p, 'noNewPrivileges', path);
  optStr(p, 'apparmorProfile', path);
  optInt(p, 'oomScoreAdj', path, -1000, 1000);
  optStr(p, 'selinuxLabel', path);
}

function validateMount(v: unknown, path: string): void {
  const m = obj(v, path);
  absPath(m.destination, `${path}.destination`);
  optStr(m, 'type', path);
  optStr(m, 'source', path);
  if (m.options !== undefined) strArr(m.options, `${path}.options`);
  const opts = (m.options as string[] | undefined) ?? [];
  const isBind = m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
  if (isBind && (typeof m.source !== 'string' || m.source === '')) fail(`${path}.source`, 'a bind mount needs a source');
}

function validateIdMappings(v: unknown, path: string): void {
  arr(v, path).forEach((m, i) => {
    const o = obj(m, `${path}[${i}]`);
    int(o.containerID, `${path}[${i}].containerID`, 0, UINT32_MAX);
    int(o.hostID, `${path}[${i}].hostID`, 0, UINT32_MAX);
    int(o.size, `${path}[${i}].size`, 1, UINT32_MAX);
  });
}

function validateHooks(v: unknown, path: string): void {
  const h = obj(v, path);
  for (const stage of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']) {
    if (h[stage] === undefined) continue;
    arr(h[stage], `${path}.${stage}`).forEach((hook, i) => {
      const hp = `${path}.${stage}[${i}]`;
      const o = obj(hook, hp);
      absPath(o.path, `${hp}.path`);
      if (o.args !== undefined) strArr(o.args, `${hp}.args`);
      if (o.env !== undefined) strArr(o.env, `${hp}.env`);
      optInt(o, 'timeout', hp, 1);
    });
  }
}

function validateResources(v: unknown, path: string): void {
  const r = obj(v, path);
  if (r.devices !== undefined) {
    arr(r.devices, `${path}.devices`).forEach((d, i) => {
      const dp = `${path}.devices[${i}]`;
      const o = obj(d, dp);
      if (typeof o.allow !== 'boolean') fail(`${dp}.allow`, `expected a boolean, got ${describe(o.allow)}`);
      if (o.type !== undefined && !['a', 'c', 'b'].includes(o.type as string)) fail(`${dp}.type`, `unknown device type ${JSON.stringify(o.type)} (want a, c or b)`);
      if (o.access !== undefined && !/^[rwm]*$/.test(str(o.access, `${dp}.access`))) fail(`${dp}.access`, `"${o.access}" is not a subset of "rwm"`);
    });
  }
  if (r.memory !== undefined) {
    const m = obj(r.memory, `${path}.memory`);
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) {
      if (m[k] !== undefined) int(m[k], `${path}.memory.${k}`, -1);
    }
    optInt(m, 'swappiness', `${path}.memory`, 0, 100);
    if (typeof m.limit === 'number' && typeof m.swap === 'number' && m.limit > 0 && m.swap > 0 && m.swap < m.limit) {
      fail(`${path}.memory.swap`, `${m.swap} is below memory.limit ${m.limit} (swap counts memory plus swap)`);
    }
  }
  if (r.cpu !== undefined) {
    const c = obj(r.cpu, `${path}.cpu`);
    optInt(c, 'shares', `${path}.cpu`, 0);
    optInt(c, 'quota', `${path}.cpu`, -1);
    optInt(c, 'period', `${path}.cpu`, 0);
    optStr(c, 'cpus', `${path}.cpu`);
    optStr(c, 'mems', `${path}.cpu`);
  }
  if (r.pids !== undefined) {
    const p = obj(r.pids, `${path}.pids`);
    int(p.limit, `${path}.pids.limit`, -1);
  }
  if (r.unified !== undefined) strMap(r.unified, `${path}.unified`);
}

function validateSeccomp(v: unknown, path: string): void {
  const s = obj(v, path);
  const def = str(s.defaultAction, `${path}.defaultAction`);
  if (!SECCOMP_ACTIONS.includes(def)) fail(`${path}.defaultAction`, `unknown seccomp action "${def}"`);
  optInt(s, 'defaultErrnoRet', path, 0, 4095);
  if (s.architectures !== undefined) {
    strArr(s.architectures, `${path}.architectures`).forEach((a, i) => {
      if (!SECCOMP_ARCHES.includes(a)) fail(`${path}.architectures[${i}]`, `unknown seccomp architecture "${a}"`);
    });
  }
  if (s.flags !== undefined) {
    strArr(s.flags, `${path}.flags`).forEach((f, i) => {
      if (!SECCOMP_FLAGS.includes(f)) fail(`${path}.flags[${i}]`, `unknown seccomp flag "${f}"`);
    });
  }
  if (s.syscalls !== undefined) {
    arr(s.syscalls, `${path}.syscalls`).forEach((sc, i) => {
      const sp = `${path}.syscalls[${i}]`;
      const o = obj(sc, sp);
      const names = strArr(o.names, `${sp}.names`);
      if (names.length === 0) fail(`${sp}.names`, 'must name at least one syscall');
      names.forEach((n, j) => { if (!/^[a-z0-9_]+$/.test(n)) fail(`${sp}.names[${j}]`, `"${n}" is not a syscall name`); });
      const action = str(o.action, `${sp}.action`);
      if (!SECCOMP_ACTIONS.includes(action)) fail(`${sp}.action`, `unknown seccomp action "${action}"`);
      optInt(o, 'errnoRet', sp, 0, 4095);
      if (o.args !== undefined) {
        arr(o.args, `${sp}.args`).forEach((a, j) => {
          const ap = `${sp}.args[${j}]`;
          const ao = obj(a, ap);
          int(ao.index, `${ap}.index`, 0, 5);
          int(ao.value, `${ap}.value`, 0, Number.MAX_VALUE);
          optInt(ao, 'valueTwo', ap, 0, Number.MAX_VALUE);
          const op = str(ao.op, `${ap}.op`);
          if (!SECCOMP_OPS.includes(op)) fail(`${ap}.op`, `unknown seccomp operator "${op}"`);
        });
      }
    });
  }
}

function validateLinux(v: unknown, path: string): void {
  const l = obj(v, path);
  if (l.namespaces !== undefined) {
    const seen = new Set<string>();
    arr(l.namespaces, `${path}.namespaces`).forEach((n, i) => {
      const np = `${path}.namespaces[${i}]`;
      const o = obj(n, np);
      const type = str(o.type, `${np}.type`);
      if (!NAMESPACES.includes(type)) fail(`${np}.type`, `unknown namespace "${type}"`);
      if (seen.has(type)) fail(`${np}.type`, `namespace "${type}" is listed twice`);
      seen.add(type);
      if (o.path !== undefined) absPath(o.path, `${np}.path`);
    });
  }
  if (l.uidMappings !== undefined) validateIdMappings(l.uidMappings, `${path}.uidMappings`);
  if (l.gidMappings !== undefined) validateIdMappings(l.gidMappings, `${path}.gidMappings`);
  if (l.devices !== undefined) {
    arr(l.devices, `${path}.devices`).forEach((d, i) => {
      const dp = `${path}.devices[${i}]`;
      const o = obj(d, dp);
      const type = str(o.type, `${dp}.type`);
      if (!['c', 'b', 'u', 'p'].includes(type)) fail(`${dp}.type`, `unknown device type "${type}" (want c, b, u or p)`);
      absPath(o.path, `${dp}.path`);
      if (type !== 'p') {
        int(o.major, `${dp}.major`, 0);
        int(o.minor, `${dp}.minor`, 0);
      }
      optInt(o, 'fileMode', dp, 0, 0o7777);
      optInt(o, 'uid', dp, 0, UINT32_MAX);
      optInt(o, 'gid', dp, 0, UINT32_MAX);
    });
  }
  optStr(l, 'cgroupsPath', path);
  if (l.resources !== undefined) validateResources(l.resources, `${path}.resources`);
  if (l.rootfsPropagation !== undefined) {
    const p = str(l.rootfsPropagation, `${path}.rootfsPropagation`);
    if (!['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable'].includes(p)) {
      fail(`${path}.rootfsPropagation`, `unknown propagation "${p}"`);
    }
  }
  if (l.seccomp !== undefined) validateSeccomp(l.seccomp, `${path}.seccomp`);
  if (l.sysctl !== undefined) strMap(l.sysctl, `${path}.sysctl`);
  if (l.maskedPaths !== undefined) strArr(l.maskedPaths, `${path}.maskedPaths`).forEach((p, i) => absPath(p, `${path}.maskedPaths[${i}]`));
  if (l.readonlyPaths !== undefined) strArr(l.readonlyPaths, `${path}.readonlyPaths`).forEach((p, i) => absPath(p, `${path}.readonlyPaths[${i}]`));
  optStr(l, 'mountLabel', path);
}

/**
 * Check that `value` is a runtime-spec config.json a Linux runtime can run,
 * and return it typed. Throws BerthError('E_CONFIG', 'FIELD: what is wrong').
 */
export function validateRuntimeSpec(value: unknown): RuntimeSpec {
  const spec = obj(value, 'config');
  const version = str(spec.ociVersion, 'ociVersion', { nonEmpty: true });
  if (!/^1\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(version)) fail('ociVersion', `"${version}" is not a 1.x semantic version`);
  if (spec.root !== undefined) {
    const root = obj(spec.root, 'root');
    str(root.path, 'root.path', { nonEmpty: true });
    bool(root, 'readonly', 'root');
  }
  if (spec.process !== undefined) validateProcess(spec.process, 'process');
  optStr(spec, 'hostname', 'config');
  optStr(spec, 'domainname', 'config');
  if (spec.mounts !== undefined) arr(spec.mounts, 'mounts').forEach((m, i) => validateMount(m, `mounts[${i}]`));
  if (spec.hooks !== undefined) validateHooks(spec.hooks, 'hooks');
  if (spec.annotations !== undefined) strMap(spec.annotations, 'annotations');
  if (spec.linux !== undefined) validateLinux(spec.linux, 'linux');
  const ns = ((spec.linux as Obj | undefined)?.namespaces as Array<{ type: string }> | undefined) ?? [];
  if (typeof spec.hostname === 'string' && spec.hostname !== '' && isObj(spec.linux) && !ns.some((n) => n.type === 'uts')) {
    // runtime-spec: setting a hostname without a new UTS namespace would rename the host.
    fail('hostname', 'is set but linux.namespaces has no "uts" namespace');
  }
  return spec as unknown as RuntimeSpec;
}
