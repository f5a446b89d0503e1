import { BerthUsageError } from '@berth/cli-kit';
import { KNOWN_CAPABILITIES, KNOWN_RLIMITS, type Mount, type Rlimit } from '@berth/oci-spec';

/**
 * Parsers for the podman-run flags berth-bundle accepts. Each takes the raw
 * flag text and returns spec words (mounts, rlimits, capability names), or
 * throws a usage error naming the flag and the form it accepts. They are pure:
 * the only I/O (does a volume source exist?) happens in generate.ts.
 */

function usage(flag: string, value: string, why: string, form?: string): never {
  throw new BerthUsageError(`${flag} ${JSON.stringify(value)}: ${why}${form ? ` (expected ${form})` : ''}`);
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}

const ENV_NAME = /^[^=\s]+$/;

/**
 * `-e KEY=VALUE`, or `-e KEY` to pass the caller's own value through (and
 * nothing when the caller has none), as podman does.
 */
export function parseEnvFlag(value: string, flag: string, hostEnv: NodeJS.ProcessEnv): string | undefined {
  const [name, val] = splitOnce(value, '=');
  if (!ENV_NAME.test(name)) usage(flag, value, 'the variable name is empty or has spaces', 'KEY=VALUE or KEY');
  if (val !== undefined) return `${name}=${val}`;
  const host = hostEnv[name];
  return host === undefined ? undefined : `${name}=${host}`;
}

/** An --env-file: KEY=VALUE lines; blank lines and `#` comments are skipped; a bare KEY passes the caller's value. */
export function parseEnvFile(text: string, file: string, hostEnv: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const e = parseEnvFlag(line.trimStart(), `--env-file ${file}:${i + 1}`, hostEnv);
    if (e !== undefined) out.push(e);
  });
  return out;
}

/** Later entries override earlier ones with the same name; the first position is kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) for (const e of list) map.set(splitOnce(e, '=')[0], e);
  return [...map.values()];
}

/** `--entrypoint`: a JSON array (`'["/bin/sh","-c"]'`) or one program; `""` clears the image's entrypoint. */
export function parseEntrypoint(value: string): string[] {
  if (value === '') return [];
  if (value.trimStart().startsWith('[')) {
    let parsed: unknown;
    try { parsed = JSON.parse(value); } catch { usage('--entrypoint', value, 'is not a valid JSON array', '"PROGRAM" or \'["PROGRAM","ARG"]\''); }
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) usage('--entrypoint', value, 'the JSON array must hold strings only');
    return parsed as string[];
  }
  return [value];
}

/** `--workdir` must be absolute, like podman's check. */
export function parseWorkdir(value: string): string {
  if (!value.startsWith('/')) usage('-w/--workdir', value, 'the working directory must be an absolute path');
  return value;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Sizes as podman reads them: a number with an optional b, k, m, g (binary units), e.g. 512m. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (!m) usage(flag, value, 'is not a size', 'a number with an optional unit b, k, m or g, e.g. 512m');
  const bytes = Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) usage(flag, value, 'must be above zero');
  return bytes;
}

export function parseMemory(value: string): number {
  const bytes = parseSize(value, '--memory');
  // The kernel needs room for the process' page tables and stack; podman refuses less than 6 MiB.
  if (bytes < 6 * 1024 * 1024) usage('--memory', value, 'the minimum memory limit is 6m');
  return bytes;
}

/** CFS bandwidth: --cpus 1.5 is a quota of 150000 µs per 100000 µs period. */
export const CPU_PERIOD = 100_000;
export function parseCpus(value: string): { quota: number; period: number } {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) usage('--cpus', value, 'is not a positive number of CPUs', 'e.g. 0.5 or 2');
  return { quota: Math.round(Number(value) * CPU_PERIOD), period: CPU_PERIOD };
}

/** --pids-limit N; 0 or -1 mean unlimited, as in podman. */
export function parsePidsLimit(value: string): number {
  if (!/^-?\d+$/.test(value) || Number(value) < -1) usage('--pids-limit', value, 'is not a number of processes', 'N, or -1 for no limit');
  const n = Number(value);
  return n === 0 ? -1 : n;
}

const ULIMIT_NAMES: Record<string, string> = Object.fromEntries(
  KNOWN_RLIMITS.map((r) => [r.slice('RLIMIT_'.length).toLowerCase(), r]),
);

/** --ulimit NAME=SOFT[:HARD]; -1 or "unlimited" mean RLIM_INFINITY. */
export function parseUlimit(value: string): Rlimit {
  const form = 'NAME=SOFT[:HARD], e.g. nofile=1024:4096';
  const [name, limits] = splitOnce(value, '=');
  if (limits === undefined) usage('--ulimit', value, 'has no limit', form);
  const type = ULIMIT_NAMES[name.toLowerCase()] ?? (KNOWN_RLIMITS as readonly string[]).find((r) => r === name.toUpperCase());
  if (!type) usage('--ulimit', value, `unknown limit "${name}"`, `one of ${Object.keys(ULIMIT_NAMES).join(', ')}`);
  const [softText, hardText] = splitOnce(limits, ':');
  const num = (s: string): number => {
    if (s === '-1' || s === 'unlimited') return RLIM_INFINITY;
    if (!/^\d+$/.test(s)) usage('--ulimit', value, `"${s}" is not a number`, form);
    return Number(s);
  };
  const soft = num(softText);
  const hard = hardText === undefined ? soft : num(hardText);
  if (soft > hard) usage('--ulimit', value, `soft limit ${softText} is above hard limit ${hardText}`);
  return { type, soft, hard };
}

/** RLIM_INFINITY is 2^64-1; JSON carries it as the nearest double, which runc and crun read back as the maximum. */
export const RLIM_INFINITY = 18446744073709551615;

/** Capability names as podman accepts them: any case, with or without CAP_, or ALL. */
export function parseCapability(value: string, flag: string): string {
  const upper = value.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!(KNOWN_CAPABILITIES as readonly string[]).includes(name)) usage(flag, value, 'unknown capability', 'a name from capabilities(7), e.g. NET_ADMIN, or ALL');
  return name;
}

export type NetworkMode = { mode: 'none' } | { mode: 'host' } | { mode: 'ns'; path: string };

export function parseNetwork(value: string): NetworkMode {
  if (value === 'none') return { mode: 'none' };
  if (value === 'host') return { mode: 'host' };
  if (value.startsWith('ns:')) {
    const path = value.slice(3);
    if (!path.startsWith('/')) usage('--network', value, 'the namespace path must be absolute', 'ns:/run/netns/NAME');
    return { mode: 'ns', path };
  }
  usage('--network', value, 'unknown network mode', 'none, host or ns:PATH (bridge networks come with the pod stage)');
}

export interface SecurityOptions {
  noNewPrivileges?: boolean;
  /** 'default', 'unconfined', or the path of a profile file. */
  seccomp?: string;
}

export function parseSecurityOpt(values: string[]): SecurityOptions {
  const out: SecurityOptions = {};
  for (const value of values) {
    const [key, val] = splitOnce(value, value.includes('=') ? '=' : ':');
    if (key === 'no-new-privileges') {
      if (val === undefined || val === 'true') out.noNewPrivileges = true;
      else if (val === 'false') out.noNewPrivileges = false;
      else usage('--security-opt', value, 'no-new-privileges takes true or false');
    } else if (key === 'seccomp') {
      if (!val) usage('--security-opt', value, 'seccomp needs a value', 'seccomp=unconfined or seccomp=PROFILE.json');
      out.seccomp = val;
    } else if ((key === 'label' || key === 'apparmor') && val !== undefined) {
      // This host runs neither SELinux nor AppArmor confinement for berth; accepted so podman command lines work.
      continue;
    } else {
      usage('--security-opt', value, 'unknown security option', 'no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json');
    }
  }
  return out;
}

const PROPAGATION = ['shared', 'slave', 'private', 'rshared', 'rslave', 'rprivate', 'unbindable', 'runbindable'];
const BIND_FLAGS = ['nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec'];

/**
 * -v SRC:DST[:OPTIONS]: a bind mount of a host path. OPTIONS are ro|rw,
 * a propagation (rprivate by default), nosuid/nodev/noexec; SELinux z/Z are
 * accepted and ignored (no SELinux here). A source that is not an absolute
 * path would be a named volume, which berth does not have yet.
 */
export function parseVolume(value: string): Mount {
  const form = 'SRC:DST[:ro|rw,...] with absolute paths';
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) usage('-v/--volume', value, 'needs a source and a destination', form);
  const [source, destination, opts] = parts as [string, string, string | undefined];
  if (!source.startsWith('/')) usage('-v/--volume', value, `"${source}" is not an absolute host path (named volumes are not supported)`, form);
  if (!destination.startsWith('/')) usage('-v/--volume', value, `destination "${destination}" is not an absolute path`, form);
  const options = ['rbind'];
  let mode: string | undefined;
  let propagation = 'rprivate';
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'ro' || o === 'rw') {
      if (mode) usage('-v/--volume', value, 'ro/rw given twice');
      mode = o;
    } else if (PROPAGATION.includes(o)) propagation = o;
    else if (BIND_FLAGS.includes(o)) options.push(o);
    else if (o === 'z' || o === 'Z') continue;
    else usage('-v/--volume', value, `unknown option "${o}"`, 'ro, rw, a propagation such as rslave, nosuid, nodev, noexec');
  }
  options.push(propagation);
  if (mode === 'ro') options.push('ro');
  return { destination, type: 'bind', source, options };
}

/** --tmpfs DST[:OPTIONS]; podman's default options are rw,noexec,nosuid,nodev. */
export function parseTmpfs(value: string): Mount {
  const [destination, opts] = splitOnce(value, ':');
  if (!destination.startsWith('/')) usage('--tmpfs', value, 'the destination must be an absolute path', 'DST[:OPTIONS], e.g. /run:rw,size=64m');
  const options = opts ? opts.split(',').filter((o) => o !== '') : ['rw', 'noexec', 'nosuid', 'nodev'];
  return { destination, type: 'tmpfs', source: 'tmpfs', options };
}

/**
 * --mount type=bind,source=/a,target=/b[,readonly][,bind-propagation=rslave]
 * or type=tmpfs,target=/t[,tmpfs-size=64m][,tmpfs-mode=1777].
 */
export function parseMountFlag(value: string): Mount {
  const form = 'type=bind,source=SRC,target=DST[,ro] or type=tmpfs,target=DST[,tmpfs-size=SIZE][,tmpfs-mode=MODE]';
  const fields = new Map<string, string | undefined>();
  for (const part of value.split(',')) {
    const [k, v] = splitOnce(part.trim(), '=');
    if (k === '') continue;
    fields.set(k, v);
  }
  const type = fields.get('type');
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst') ?? fields.get('dest');
  if (!target || !target.startsWith('/')) usage('--mount', value, 'needs an absolute target', form);
  const flag = (k: string): boolean => {
    if (!fields.has(k)) return false;
    const v = fields.get(k);
    if (v === undefined || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    usage('--mount', value, `${k} takes true or false`);
  };
  const known = new Set(['type', 'target', 'destination', 'dst', 'dest']);
  if (type === 'bind') {
    const source = fields.get('source') ?? fields.get('src');
    if (!source || !source.startsWith('/')) usage('--mount', value, 'a bind mount needs an absolute source', form);
    const propagation = fields.get('bind-propagation') ?? 'rprivate';
    if (!PROPAGATION.includes(propagation)) usage('--mount', value, `unknown bind-propagation "${propagation}"`, PROPAGATION.join(', '));
    for (const k of ['source', 'src', 'readonly', 'ro', 'bind-propagation', 'relabel', 'bind-nonrecursive']) known.add(k);
    checkUnknown(fields, known, value, form);
    const options = [flag('bind-nonrecursive') ? 'bind' : 'rbind', propagation];
    if (flag('readonly') || flag('ro')) options.push('ro');
    return { destination: target, type: 'bind', source, options };
  }
  if (type === 'tmpfs') {
    for (const k of ['tmpfs-size', 'tmpfs-mode', 'readonly', 'ro']) known.add(k);
    checkUnknown(fields, known, value, form);
    const options = ['rw', 'nosuid', 'nodev'];
    const size = fields.get('tmpfs-size');
    if (size !== undefined) options.push(`size=${parseSize(size, '--mount tmpfs-size')}`);
    const mode = fields.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{3,4}$/.test(mode)) usage('--mount', value, `tmpfs-mode "${mode}" is not an octal mode`);
      options.push(`mode=${mode}`);
    }
    if (flag('readonly') || flag('ro')) options[0] = 'ro';
    return { destination: target, type: 'tmpfs', source: 'tmpfs', options };
  }
  usage('--mount', value, `unsupported mount type ${JSON.stringify(type ?? '')}`, form);
}

function checkUnknown(fields: Map<string, string | undefined>, known: Set<string>, value: string, form: string): void {
  for (const k of fields.keys()) if (!known.has(k)) usage('--mount', value, `unknown field "${k}"`, form);
}

/**
 * --sysctl KEY=VALUE, only for sysctls the container's own namespaces scope
 * (like podman): IPC ones need a private IPC namespace, net.* a private network
 * namespace, kernel.hostname/domainname a private UTS namespace. Anything else
 * would change the host.
 */
export function parseSysctl(value: string, ns: { hostNetwork: boolean; hostIpc: boolean }): [string, string] {
  const [key, val] = splitOnce(value, '=');
  if (!key || val === undefined) usage('--sysctl', value, 'needs a value', 'KEY=VALUE, e.g. net.ipv4.ip_forward=1');
  const ipc = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
  if (ipc.includes(key) || key.startsWith('fs.mqueue.')) {
    if (ns.hostIpc) usage('--sysctl', value, 'an IPC sysctl needs a private IPC namespace');
  } else if (key.startsWith('net.')) {
    if (ns.hostNetwork) usage('--sysctl', value, 'a net.* sysctl cannot be set with --network host: it would change the host');
  } else if (key !== 'kernel.domainname' && key !== 'kernel.hostname') {
    usage('--sysctl', value, 'is not namespaced: setting it would change the host', 'an IPC (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) or net.* sysctl');
  }
  return [key, val];
}

/** A user spec as -u and the image's User spell it: name|uid[:group|gid]. */
export function parseUserSpec(value: string, flag: string): { user: string; group?: string } {
  const [user, group] = splitOnce(value, ':');
  if (user === '' || group === '') usage(flag, value, 'has an empty user or group', 'USER[:GROUP], names or numeric ids');
  return group === undefined ? { user } : { user, group };
}
