import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { availableParallelism, freemem, hostname, release, totalmem, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { subordinateRange } from '@berth/cli-kit';
import { berthRuntimeVersionText } from '@berth/oci-spec';
import { detectCgroupMode, v1Hierarchies, v2Controllers, DEFAULT_CGROUP_ROOT } from '@berth/cgroups';
import { CONMON_CANDIDATES, listImages, listRecords, observedStatus, type EngineEnv } from '@berth/engine';

/**
 * What `berth version` and `berth info` report, gathered cheaply: files
 * under /proc, /etc and /sys, the store's records and index, and one
 * `--version` call each to the OCI runtime and conmon (run side by side;
 * this checkout's berth-runtime is answered from its package.json).
 * Key names are podman's where podman has the same thing.
 */

/** Node's process.arch in Go's GOARCH words, as podman prints OS/Arch. */
export function goArch(arch: string = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** A program's `--version` output, trimmed; '' when it cannot be run (not found, timed out). */
export function versionOf(file: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(file, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    } catch {
      resolve('');
      return;
    }
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', () => resolve(''));
    child.on('close', (code) => resolve(code === 0 ? out.trim() : ''));
  });
}

/** Where this berth runs from: the checkout's tools/berth (the launcher is tools/berth/bin/berth.js). */
function toolDir(): string | undefined {
  try {
    return join(dirname(realpathSync(process.argv[1] ?? '')), '..');
  } catch {
    return undefined;
  }
}

export interface BerthBuild {
  version: string;
  /** The checkout's HEAD commit when berth runs from a git checkout, else ''. */
  gitCommit: string;
  /** When the bundle berth runs from was built (its mtime), ISO 8601; '' when unknown. */
  builtTime: string;
  built: number;
}

/** HEAD of the checkout, read from .git (no git process): a ref file or packed-refs. */
function gitHead(repo: string): string {
  try {
    const head = readFileSync(join(repo, '.git', 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (!ref) return '';
    const loose = join(repo, '.git', ref);
    if (existsSync(loose)) return readFileSync(loose, 'utf8').trim();
    const packed = readFileSync(join(repo, '.git', 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`));
    return packed?.split(' ')[0] ?? '';
  } catch {
    return '';
  }
}

export function berthBuild(): BerthBuild {
  const dir = toolDir();
  let version = '0.1.0';
  let gitCommit = '';
  let builtTime = '';
  let built = 0;
  if (dir) {
    try { version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? version; } catch { /* installed without its package.json */ }
    gitCommit = gitHead(join(dir, '..', '..'));
  }
  try {
    const bundle = fileURLToPath(import.meta.url);
    const mtime = statSync(bundle).mtime;
    builtTime = mtime.toISOString();
    built = Math.floor(mtime.getTime() / 1000);
  } catch { /* not a file */ }
  return { version, gitCommit, builtTime, built };
}

export interface OciRuntimeInfo {
  name: string;
  path: string;
  version: string;
}

export async function ociRuntimeInfo(path: string): Promise<OciRuntimeInfo> {
  const name = path.split('/').pop()!.replace(/\.js$/, '');
  return { name, path, version: ownRuntimeVersion(path) ?? await versionOf(path) };
}

/**
 * The berth-runtime of this checkout answers `--version` from its
 * package.json; reading that here saves starting a second Node (~150 ms of
 * `berth version`). Any other runtime, or another checkout's, is asked.
 */
function ownRuntimeVersion(path: string): string | undefined {
  const dir = toolDir();
  if (!dir) return undefined;
  const ours = join(dir, '..', 'runtime');
  try {
    if (realpathSync(path) !== realpathSync(join(ours, 'bin', 'berth-runtime.js'))) return undefined;
    const version = (JSON.parse(readFileSync(join(ours, 'package.json'), 'utf8')) as { version?: string }).version;
    return version === undefined ? undefined : berthRuntimeVersionText(version);
  } catch {
    return undefined;
  }
}

export function conmonPath(): string {
  return process.env.BERTH_CONMON || CONMON_CANDIDATES.find((p) => existsSync(p)) || '';
}

/** /etc/os-release as podman's host.distribution. */
export function distribution(): { distribution: string; version: string; codename: string } {
  const fields: Record<string, string> = {};
  try {
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) fields[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
  } catch { /* no os-release */ }
  return { distribution: fields.ID ?? 'unknown', version: fields.VERSION_ID ?? 'unknown', codename: fields.VERSION_CODENAME ?? '' };
}

/** /proc/meminfo in bytes (SwapTotal, SwapFree). */
function meminfo(key: string): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** podman's uptime text: "8h 13m 4.00s (Approximately 0.33 days)". */
function uptime(): string {
  try {
    const secs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = secs % 60;
    return `${h}h ${m}m ${s.toFixed(2)}s (Approximately ${(secs / 86400).toFixed(2)} days)`;
  } catch {
    return '';
  }
}

/** The kernel filters with seccomp when /proc/self/status has a Seccomp line (CONFIG_SECCOMP). */
function seccompEnabled(): boolean {
  try {
    return /^Seccomp:/m.test(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
}

/** A kernel module parameter that reads Y or 1 when on (/sys/module/apparmor/parameters/enabled). */
function readFlag(file: string): boolean {
  try {
    const v = readFileSync(file, 'utf8').trim();
    return v.startsWith('Y') || v === '1';
  } catch {
    return false;
  }
}

/** cgroup facts: podman's cgroupVersion (a hybrid host is "v1" to it) and berth's mode, which tells hybrid apart. */
export function cgroupInfo(root = DEFAULT_CGROUP_ROOT): { cgroupVersion: string; cgroupMode: string; cgroupControllers: string[] } {
  let mode: string;
  try { mode = detectCgroupMode(root); } catch { return { cgroupVersion: 'unknown', cgroupMode: 'none', cgroupControllers: [] }; }
  const controllers = mode === 'v2' ? v2Controllers(root) : v1Hierarchies(root).flatMap((h) => h.controllers);
  return { cgroupVersion: mode === 'v2' ? 'v2' : 'v1', cgroupMode: mode, cgroupControllers: controllers };
}

type IdMap = { container_id: number; host_id: number; size: number };

/** An ordinary user's id maps: root in the namespace is the user, 1..count the /etc/subuid range (as berth maps them). */
export function idMappings(rootless: boolean): { uidmap: IdMap[] | null; gidmap: IdMap[] | null } {
  if (!rootless) return { uidmap: null, gidmap: null };
  const u = userInfo();
  const uids = subordinateRange('/etc/subuid', u.username, u.uid);
  const gids = subordinateRange('/etc/subgid', u.username, u.uid);
  return {
    uidmap: [{ container_id: 0, host_id: u.uid, size: 1 }, ...(uids ? [{ container_id: 1, host_id: uids.start, size: uids.count }] : [])],
    gidmap: [{ container_id: 0, host_id: u.gid, size: 1 }, ...(gids ? [{ container_id: 1, host_id: gids.start, size: gids.count }] : [])],
  };
}

export interface HostFacts {
  rootless: boolean;
  runtime: Promise<OciRuntimeInfo>;
}

export async function hostInfo(facts: HostFacts): Promise<Record<string, unknown>> {
  const conmon = conmonPath();
  const [runtime, conmonVersion] = await Promise.all([facts.runtime, conmon ? versionOf(conmon) : Promise.resolve('')]);
  const cg = cgroupInfo();
  return {
    arch: goArch(),
    cgroupManager: 'cgroupfs',
    cgroupVersion: cg.cgroupVersion,
    cgroupMode: cg.cgroupMode,
    cgroupControllers: cg.cgroupControllers,
    conmon: { path: conmon, version: conmonVersion.split('\n').join(', ') },
    cpus: availableParallelism(),
    distribution: distribution(),
    hostname: hostname(),
    idMappings: idMappings(facts.rootless),
    kernel: release(),
    logDriver: 'k8s-file',
    memFree: freemem(),
    memTotal: totalmem(),
    ociRuntime: runtime,
    os: 'linux',
    security: {
      apparmorEnabled: readFlag('/sys/module/apparmor/parameters/enabled'),
      rootless: facts.rootless,
      seccompEnabled: seccompEnabled(),
      selinuxEnabled: existsSync('/sys/fs/selinux/enforce'),
    },
    swapFree: meminfo('SwapFree'),
    swapTotal: meminfo('SwapTotal'),
    uptime: uptime(),
  };
}

export async function storeInfo(env: EngineEnv): Promise<Record<string, unknown>> {
  const counts = { number: 0, paused: 0, running: 0, stopped: 0 };
  for (const rec of listRecords(env)) {
    counts.number++;
    // podman counts created and exited containers as stopped.
    const status = observedStatus(env, rec).status;
    if (status === 'running') counts.running++;
    else if (status === 'paused') counts.paused++;
    else counts.stopped++;
  }
  let allocated = 0;
  let used = 0;
  try {
    // The filesystem the data root is (or will be) on: its nearest existing ancestor's.
    let dir = env.dataRoot;
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    const fs = statfsSync(dir);
    allocated = fs.blocks * fs.bsize;
    used = (fs.blocks - fs.bfree) * fs.bsize;
  } catch { /* no such filesystem yet */ }
  return {
    containerStore: counts,
    graphDriverName: 'overlay',
    graphRoot: env.dataRoot,
    graphRootAllocated: allocated,
    graphRootUsed: used,
    imageStore: { number: (await listImages(env)).length },
    runRoot: env.runRoot,
  };
}

/** registries.conf as podman's info shows it: the search list, and each [[registry]] by prefix. */
export async function registriesInfo(): Promise<Record<string, unknown>> {
  const { loadRegistriesConf } = await import('@berth/registry');
  const conf = loadRegistriesConf();
  const out: Record<string, unknown> = {};
  for (const r of conf.registries) {
    out[r.prefix] = {
      Prefix: r.prefix, Location: r.location, Insecure: r.insecure, Blocked: r.blocked, MirrorByDigestOnly: r.mirrorByDigestOnly,
      Mirrors: r.mirrors.map((m) => ({ Location: m.location, Insecure: m.insecure, PullFromMirror: m.pullFromMirror })),
    };
  }
  if (conf.unqualifiedSearchRegistries.length > 0) out.search = conf.unqualifiedSearchRegistries;
  return out;
}
