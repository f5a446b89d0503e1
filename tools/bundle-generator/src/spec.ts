import { BerthError, BerthUsageError } from '@berth/cli-kit';
import {
  KNOWN_CAPABILITIES, OCI_RUNTIME_VERSION,
  type ImageConfig, type LinuxResources, type Mount, type Namespace, type Rlimit, type RuntimeSpec,
} from '@berth/oci-spec';
import {
  DEFAULT_CAPABILITIES, DEFAULT_PATH, DEFAULT_PIDS_LIMIT, INIT_PATH, MASKED_PATHS, READONLY_PATHS,
  defaultDeviceRules, standardMounts,
} from './defaults.ts';
import { mergeEnv, type NetworkMode } from './options.ts';
import { computeRlimits, type HostLimits } from './rlimits.ts';
import { DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile, type SeccompProfile } from './seccomp.ts';
import { resolveUser } from './user.ts';

/**
 * image config × user options → runtime-spec config.json. This is the whole
 * mapping, kept free of I/O except for reading the rootfs's passwd and group
 * files (through `rootfsFiles`), so every rule here has a unit test.
 */

/** Annotation keys. The org.opencontainers.image.* ones are image-spec conversion.md's. */
export const Annotation = {
  os: 'org.opencontainers.image.os',
  architecture: 'org.opencontainers.image.architecture',
  author: 'org.opencontainers.image.author',
  created: 'org.opencontainers.image.created',
  stopSignal: 'org.opencontainers.image.stopSignal',
  exposedPorts: 'org.opencontainers.image.exposedPorts',
  refName: 'org.opencontainers.image.ref.name',
  /** The image's Volumes (comma-separated); berth does not create anonymous volumes. */
  volumes: 'io.berth.image.volumes',
  manifest: 'io.berth.image.manifest',
  config: 'io.berth.image.config',
} as const;

export interface PodNamespaces {
  /** A rootless pod's user namespace (its holder's /proc/PID/ns/user): the container joins it instead of making one. */
  user?: string;
  network?: string;
  ipc?: string;
  uts?: string;
  /** A PID namespace the pod shares (held by its catatonit), with berth-pod create --share pid. */
  pid?: string;
  /** The pod's hostname, for /etc/hostname when the container joins its UTS namespace. */
  hostname?: string;
  /** The pod's address on its CNI network: /etc/hosts names the hostname there, as podman does. */
  ip?: string;
  /** Nameservers from the CNI result; when absent the host's resolv.conf is used. */
  dns?: { nameservers?: string[]; search?: string[]; options?: string[]; domain?: string };
  /** The pod shares the host's network (berth-pod create --network host). */
  hostNetwork?: boolean;
}

/** What the user asked for, already parsed from the flags (options.ts). */
export interface BundleOptions {
  /** -e and --env-file values in command-line order (later wins). */
  env: string[];
  entrypoint?: string[];
  /** Arguments after the rootfs argument (podman's COMMAND ARGS). */
  command: string[];
  workdir?: string;
  user?: string;
  /** -v, --mount and --tmpfs mounts, in the order given. */
  mounts: Mount[];
  readOnly: boolean;
  hostname?: string;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  noNewPrivileges?: boolean;
  /** undefined: the default profile; 'unconfined': none; else a loaded profile. */
  seccomp?: 'unconfined' | { profile: SeccompProfile; source: string };
  memory?: number;
  cpus?: { quota: number; period: number };
  pidsLimit?: number;
  ulimits: Rlimit[];
  sysctls: Record<string, string>;
  network?: NetworkMode;
  pod?: PodNamespaces;
  /** Host path of the init binary for --init. */
  init?: string;
}

/** Facts about the host and the bundle that the mapping needs. */
export interface SpecContext {
  id: string;
  image: ImageConfig;
  /** Where the rootfs is, as config.json's root.path spells it. */
  rootPath: string;
  /** Reads a file of the container's rootfs (undefined when absent). */
  rootfsFile: (path: string) => string | undefined;
  /** Absolute bundle directory: the generated /etc files live there. */
  bundleDir: string;
  reference?: string;
  manifestDigest?: string;
  configDigest?: string;
  host: {
    limits: HostLimits;
    arch: string;
    kernel: string;
    hostname: string;
    cgroupV2: boolean;
    /** Is memory+swap accounting available (memory.memsw.* on cgroup v1)? */
    swapAccounting: boolean;
    /** /proc/sys/kernel/cap_last_cap: --privileged grants only what the kernel knows. */
    lastCap: number;
  };
}

export interface SpecResult {
  spec: RuntimeSpec;
  hostname: string;
  /** The container user's home directory (from passwd), set as HOME. */
  home: string;
  /** process.cwd; the caller creates it in the rootfs when missing. */
  workdir: string;
}

/**
 * podman's rule: --entrypoint replaces the image's Entrypoint and drops its
 * Cmd; a command after the image replaces Cmd; the process runs
 * Entrypoint + Cmd. Nothing at all to run is an error.
 */
export function processArgs(image: ImageConfig, opts: Pick<BundleOptions, 'entrypoint' | 'command'>): string[] {
  const cfg = image.config ?? {};
  const entrypoint = opts.entrypoint ?? cfg.Entrypoint ?? [];
  let cmd: string[];
  if (opts.command.length > 0) cmd = opts.command;
  else if (opts.entrypoint !== undefined) cmd = [];
  else cmd = cfg.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new BerthUsageError('no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
  return args;
}

/** --cap-add/--cap-drop over the default set, in podman's order: drop ALL empties first, add ALL fills first. */
export function capabilitySet(opts: Pick<BundleOptions, 'capAdd' | 'capDrop' | 'privileged'>, lastCap: number): string[] {
  const known = KNOWN_CAPABILITIES.filter((_, i) => i <= lastCap);
  if (opts.privileged) return [...known];
  let caps = new Set(DEFAULT_CAPABILITIES);
  if (opts.capDrop.includes('ALL')) caps = new Set();
  if (opts.capAdd.includes('ALL')) caps = new Set(known);
  for (const c of opts.capAdd) if (c !== 'ALL') caps.add(c);
  for (const c of opts.capDrop) if (c !== 'ALL') caps.delete(c);
  // Keep the kernel's numbering order so the sets read like capabilities(7).
  return KNOWN_CAPABILITIES.filter((c) => caps.has(c));
}

export function imageAnnotations(ctx: Pick<SpecContext, 'image' | 'reference' | 'manifestDigest' | 'configDigest'>): Record<string, string> {
  const { image } = ctx;
  const cfg = image.config ?? {};
  // Labels first: conversion.md lets the image's own fields win over a label of the same key.
  const a: Record<string, string> = { ...(cfg.Labels ?? {}) };
  a[Annotation.os] = image.os;
  a[Annotation.architecture] = image.architecture;
  if (image.author) a[Annotation.author] = image.author;
  if (image.created) a[Annotation.created] = image.created;
  if (cfg.StopSignal) a[Annotation.stopSignal] = cfg.StopSignal;
  if (cfg.ExposedPorts && Object.keys(cfg.ExposedPorts).length > 0) a[Annotation.exposedPorts] = Object.keys(cfg.ExposedPorts).sort().join(',');
  if (cfg.Volumes && Object.keys(cfg.Volumes).length > 0) a[Annotation.volumes] = Object.keys(cfg.Volumes).sort().join(',');
  if (ctx.reference) a[Annotation.refName] = ctx.reference;
  if (ctx.manifestDigest) a[Annotation.manifest] = ctx.manifestDigest;
  if (ctx.configDigest) a[Annotation.config] = ctx.configDigest;
  return a;
}

function namespaces(opts: BundleOptions, cgroupV2: boolean): Namespace[] {
  const pod = opts.pod ?? {};
  const net = opts.network ?? { mode: 'none' };
  if ((pod.network || pod.hostNetwork) && opts.network) throw new BerthUsageError(`--network ${opts.network.mode} conflicts with --pod: the pod owns the network namespace`);
  const out: Namespace[] = [pod.pid ? { type: 'pid', path: pod.pid } : { type: 'pid' }];
  if (pod.network) out.push({ type: 'network', path: pod.network });
  else if (pod.hostNetwork) { /* the host's network namespace: no entry */ }
  else if (net.mode === 'none') out.push({ type: 'network' });
  else if (net.mode === 'ns') out.push({ type: 'network', path: net.path });
  out.push(pod.ipc ? { type: 'ipc', path: pod.ipc } : { type: 'ipc' });
  out.push(pod.uts ? { type: 'uts', path: pod.uts } : { type: 'uts' });
  out.push({ type: 'mount' });
  // podman's default: a private cgroup namespace on cgroup v2; the host's on v1,
  // where the v1 hierarchy inside a cgroupns confuses older tools.
  if (cgroupV2) out.push({ type: 'cgroup' });
  return out;
}

function resources(opts: BundleOptions, ctx: SpecContext): LinuxResources {
  const r: LinuxResources = { devices: defaultDeviceRules(opts.privileged) };
  if (opts.memory !== undefined) {
    r.memory = { limit: opts.memory };
    // No swap on top of the limit, so the limit is what the kernel's OOM killer
    // enforces (podman would allow as much swap again). cgroup v1 can only
    // say so when memsw accounting is on.
    if (ctx.host.cgroupV2 || ctx.host.swapAccounting) r.memory.swap = opts.memory;
  }
  if (opts.cpus) r.cpu = { quota: opts.cpus.quota, period: opts.cpus.period };
  r.pids = { limit: opts.pidsLimit ?? DEFAULT_PIDS_LIMIT };
  return r;
}

function hostname(opts: BundleOptions, ctx: SpecContext): string {
  if (opts.pod?.uts) {
    if (opts.hostname !== undefined) throw new BerthUsageError('--hostname cannot be set when joining the pod\'s UTS namespace: the pod owns the hostname');
    return opts.pod.hostname ?? ctx.id.slice(0, 12);
  }
  if (opts.hostname !== undefined) {
    // RFC 1123 labels, at most 64 bytes (HOST_NAME_MAX), as sethostname(2) takes.
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*$/.test(opts.hostname) || opts.hostname.length > 64) {
      throw new BerthUsageError(`--hostname ${JSON.stringify(opts.hostname)}: not a valid hostname (letters, digits, '-' and '.', at most 64 characters)`);
    }
    return opts.hostname;
  }
  // With the host's network the container answers as the host, as podman and Docker do.
  if (opts.network?.mode === 'host') return ctx.host.hostname;
  return ctx.id.slice(0, 12);
}

/**
 * Mounts in the order the runtime performs them: the standard filesystems,
 * then the generated /etc files, then the user's. A user mount on the same
 * destination as a default one replaces it (e.g. -v /srv/shm:/dev/shm).
 */
function mounts(opts: BundleOptions, ctx: SpecContext): Mount[] {
  const user = [...opts.mounts];
  const seen = new Set<string>();
  for (const m of user) {
    const dest = m.destination.replace(/\/+$/, '') || '/';
    if (dest === '/') throw new BerthUsageError('a mount on / is not allowed: the rootfs is /');
    if (seen.has(dest)) throw new BerthUsageError(`duplicate mount destination ${dest}`);
    seen.add(dest);
  }
  if (opts.readOnly) {
    // podman --read-only still gives writable scratch space (its --read-only-tmpfs default).
    for (const d of ['/run', '/tmp', '/var/tmp']) {
      if (!seen.has(d)) user.push({ destination: d, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev'] });
    }
  }
  const etc = ['hosts', 'hostname', 'resolv.conf'].map((f): Mount => ({
    destination: `/etc/${f}`, type: 'bind', source: `${ctx.bundleDir}/${f}`, options: ['bind', 'rprivate', 'nosuid', 'nodev', 'noexec'],
  }));
  if (opts.init) user.push({ destination: INIT_PATH, type: 'bind', source: opts.init, options: ['bind', 'rprivate', 'ro', 'nosuid', 'nodev'] });
  const all = [...standardMounts({ privileged: opts.privileged }), ...etc].filter((m) => !seen.has(m.destination));
  return [...all, ...user];
}

export function buildSpec(opts: BundleOptions, ctx: SpecContext): SpecResult {
  const cfg = ctx.image.config ?? {};
  if (ctx.image.os !== 'linux') throw new BerthError('E_IMAGE', `image os is ${JSON.stringify(ctx.image.os)}: berth runs linux images only`);

  const userSpec = opts.user ?? cfg.User ?? '';
  const { user, home } = resolveUser(userSpec, { passwd: ctx.rootfsFile('/etc/passwd'), group: ctx.rootfsFile('/etc/group') }, opts.user !== undefined ? '-u/--user' : 'image User');

  const name = hostname(opts, ctx);
  let env = mergeEnv(cfg.Env ?? [], opts.env);
  const names = new Set(env.map((e) => e.split('=', 1)[0]));
  // An image without PATH still needs one for execvp-style lookups; HOME and
  // HOSTNAME are what a login would set and what podman adds.
  if (!names.has('PATH')) env = [DEFAULT_PATH, ...env];
  if (!names.has('HOSTNAME')) env.push(`HOSTNAME=${name}`);
  if (!names.has('HOME')) env.push(`HOME=${home}`);

  let args = processArgs(ctx.image, opts);
  if (opts.init) args = [INIT_PATH, '--', ...args];

  const workdir = opts.workdir ?? (cfg.WorkingDir || '/');
  if (!workdir.startsWith('/')) throw new BerthError('E_IMAGE', `image WorkingDir ${JSON.stringify(workdir)} is not an absolute path`);

  const caps = capabilitySet(opts, ctx.host.lastCap);
  const privileged = opts.privileged;

  const spec: RuntimeSpec = {
    ociVersion: OCI_RUNTIME_VERSION,
    process: {
      terminal: false,
      user,
      args,
      env,
      cwd: workdir,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: computeRlimits(opts.ulimits, ctx.host.limits),
      noNewPrivileges: opts.noNewPrivileges ?? false,
    },
    root: { path: ctx.rootPath, readonly: opts.readOnly },
    // In a joined UTS namespace the runtime must not call sethostname: it would rename the whole pod.
    ...(opts.pod?.uts ? {} : { hostname: name }),
    mounts: mounts(opts, ctx),
    annotations: imageAnnotations(ctx),
    linux: {
      namespaces: namespaces(opts, ctx.host.cgroupV2),
      cgroupsPath: `/berth/${ctx.id}`,
      resources: resources(opts, ctx),
      sysctl: { ...opts.sysctls },
      rootfsPropagation: 'rprivate',
    },
  };
  const linux = spec.linux!;
  if (!privileged) {
    linux.maskedPaths = [...MASKED_PATHS];
    linux.readonlyPaths = [...READONLY_PATHS];
    const seccomp = opts.seccomp;
    if (seccomp !== 'unconfined') {
      const profile = seccomp?.profile ?? DEFAULT_SECCOMP_PROFILE;
      linux.seccomp = resolveSeccompProfile(profile, { capabilities: caps, arch: ctx.host.arch, kernel: ctx.host.kernel }, seccomp?.source ?? 'default seccomp profile');
    }
  } else if (opts.seccomp !== undefined && opts.seccomp !== 'unconfined') {
    // podman: --privileged turns seccomp off unless a profile is named explicitly.
    linux.seccomp = resolveSeccompProfile(opts.seccomp.profile, { capabilities: caps, arch: ctx.host.arch, kernel: ctx.host.kernel }, opts.seccomp.source);
  }
  if (Object.keys(linux.sysctl!).length === 0) delete linux.sysctl;
  return { spec, hostname: name, home, workdir };
}

/**
 * The generated /etc files. hosts names the container on loopback (and keeps
 * the host's entries when it shares the host's network); resolv.conf is the
 * host's, minus loopback nameservers (127.0.0.53 from systemd-resolved is not
 * reachable from another network namespace).
 */
export function etcFiles(name: string, opts: { hostNetwork: boolean; hostHosts?: string; hostResolv?: string; podIp?: string; dns?: PodNamespaces['dns'] }): { hosts: string; hostname: string; resolvConf: string } {
  let hosts = '127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n';
  if (opts.hostNetwork && opts.hostHosts) hosts = opts.hostHosts.endsWith('\n') ? opts.hostHosts : `${opts.hostHosts}\n`;
  // In a pod with an address, the hostname resolves to it, so a member can
  // tell peers its reachable name; without one, to a loopback address.
  hosts += `${opts.podIp ?? '127.0.1.1'}\t${name}\n`;
  const nameservers = opts.dns?.nameservers?.filter((n) => n !== '') ?? [];
  if (nameservers.length > 0) {
    // The network's own DNS (a CNI result with dns.nameservers) wins over the host's, as in podman.
    const lines = [
      ...(opts.dns?.search?.length ? [`search ${opts.dns.search.join(' ')}`] : opts.dns?.domain ? [`search ${opts.dns.domain}`] : []),
      ...nameservers.map((n) => `nameserver ${n}`),
      ...(opts.dns?.options?.length ? [`options ${opts.dns.options.join(' ')}`] : []),
    ];
    return { hosts, hostname: `${name}\n`, resolvConf: lines.join('\n') + '\n' };
  }
  let resolv = opts.hostResolv ?? '';
  if (!opts.hostNetwork) {
    resolv = resolv.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(l)).join('\n');
  }
  if (resolv !== '' && !resolv.endsWith('\n')) resolv += '\n';
  return { hosts, hostname: `${name}\n`, resolvConf: resolv };
}
