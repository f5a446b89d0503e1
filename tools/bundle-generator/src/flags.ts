import { existsSync, readFileSync } from 'node:fs';
import { BerthError, BerthUsageError } from '@berth/cli-kit';
import { INIT_CANDIDATES } from './defaults.ts';
import {
  mergeEnv, parseCapability, parseCpus, parseEntrypoint, parseEnvFile, parseEnvFlag, parseMemory, parseMountFlag,
  parseNetwork, parsePidsLimit, parseSecurityOpt, parseSysctl, parseTmpfs, parseUlimit, parseUserSpec, parseVolume, parseWorkdir,
} from './options.ts';
import { computeRlimits, readHostLimits } from './rlimits.ts';
import type { SeccompProfile } from './seccomp.ts';
import type { BundleOptions } from './spec.ts';

/**
 * The podman-run flags a bundle is made from, as typed: the one mapping from
 * them to BundleOptions, shared by berth-bundle and `berth run|create` (which
 * import it as @berth/bundle-generator/flags), so both read a flag the same way.
 */
export interface BundleFlags {
  env: readonly string[];
  envFile: readonly string[];
  /** Environment added after -e and --env-file (berth run -t adds TERM). */
  extraEnv?: readonly string[];
  entrypoint?: string;
  workdir?: string;
  user?: string;
  volume: readonly string[];
  mount: readonly string[];
  tmpfs: readonly string[];
  readOnly: boolean;
  hostname?: string;
  capAdd: readonly string[];
  capDrop: readonly string[];
  privileged: boolean;
  securityOpt: readonly string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit: readonly string[];
  sysctl: readonly string[];
  network?: string;
  init: boolean;
  initPath?: string;
}

/** Check every flag and build the options; `command` is what follows the image (podman's COMMAND ARGS). */
export function bundleOptionsFromFlags(flags: BundleFlags, command: string[]): BundleOptions {
  const env = mergeEnv(
    flags.envFile.flatMap((f) => parseEnvFile(readText(f, '--env-file'), f, process.env)),
    flags.env.map((e) => parseEnvFlag(e, '-e/--env', process.env)).filter((e): e is string => e !== undefined),
    [...(flags.extraEnv ?? [])],
  );
  const security = parseSecurityOpt([...flags.securityOpt]);
  let seccomp: BundleOptions['seccomp'];
  if (security.seccomp === 'unconfined') seccomp = 'unconfined';
  else if (security.seccomp !== undefined) seccomp = { profile: readSeccompProfile(security.seccomp), source: security.seccomp };
  const network = flags.network === undefined ? undefined : parseNetwork(flags.network);
  if (network?.mode === 'ns' && !existsSync(network.path)) throw new BerthUsageError(`--network ns:${network.path}: no such namespace file`);
  const splitList = (xs: readonly string[]) => xs.flatMap((x) => x.split(',')).filter((x) => x !== '');
  const sysctls: Record<string, string> = {};
  for (const s of flags.sysctl) {
    const [k, v] = parseSysctl(s, { hostNetwork: network?.mode === 'host', hostIpc: false });
    sysctls[k] = v;
  }
  if (flags.user !== undefined) parseUserSpec(flags.user, '-u/--user');
  const options: BundleOptions = {
    env,
    entrypoint: flags.entrypoint === undefined ? undefined : parseEntrypoint(flags.entrypoint),
    command,
    workdir: flags.workdir === undefined ? undefined : parseWorkdir(flags.workdir),
    user: flags.user,
    mounts: [...flags.volume.map(parseVolume), ...flags.mount.map(parseMountFlag), ...flags.tmpfs.map(parseTmpfs)],
    readOnly: flags.readOnly,
    hostname: flags.hostname,
    capAdd: splitList(flags.capAdd).map((c) => parseCapability(c, '--cap-add')),
    capDrop: splitList(flags.capDrop).map((c) => parseCapability(c, '--cap-drop')),
    privileged: flags.privileged,
    noNewPrivileges: security.noNewPrivileges,
    seccomp,
    memory: flags.memory === undefined ? undefined : parseMemory(flags.memory),
    cpus: flags.cpus === undefined ? undefined : parseCpus(flags.cpus),
    pidsLimit: flags.pidsLimit === undefined ? undefined : parsePidsLimit(flags.pidsLimit),
    ulimits: flags.ulimit.map(parseUlimit),
    sysctls,
    network,
  };
  if (flags.init || flags.initPath !== undefined) options.init = findInit(flags.initPath);
  // Check --ulimit against the caller's hard limits now, before a rootfs is mounted.
  computeRlimits(options.ulimits, readHostLimits());
  return options;
}

export function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BerthUsageError(`${flag} ${path}: no such file`);
    throw new BerthError('E_INPUT', `read ${path}: ${code ?? String(err)}`);
  }
}

function readSeccompProfile(path: string): SeccompProfile {
  const text = readText(path, '--security-opt seccomp=');
  try {
    const v = JSON.parse(text) as SeccompProfile;
    if (typeof v !== 'object' || v === null || typeof v.defaultAction !== 'string') throw new Error('no defaultAction');
    return v;
  } catch (err) {
    throw new BerthUsageError(`--security-opt seccomp=${path}: not a seccomp profile: ${(err as Error).message}`);
  }
}

function findInit(explicit: string | undefined): string {
  if (explicit !== undefined) {
    if (!existsSync(explicit)) throw new BerthUsageError(`--init-path ${explicit}: no such file`);
    return explicit;
  }
  const found = INIT_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new BerthError('E_INIT', `--init: no init binary found (looked for ${INIT_CANDIDATES.join(', ')}); install catatonit or pass --init-path`);
  return found;
}
