/**
 * Pods: a group of containers sharing network, IPC and UTS namespaces (and,
 * on request, a PID namespace), with one CNI network attachment and published
 * ports. The record lives at RUNROOT/pods/ID/pod.json next to the namespace
 * files (RUNROOT/pods/ID/ns/{net,ipc,uts,pid}) and the CNI result cache: all
 * of it runtime state, gone at reboot like the namespaces themselves.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, BerthUsageError, OBJECT_NAME_RE, defaultRunRoot, isRoot, log, rootlessPlan } from '@berth/cli-kit';
import { withFileLock, writeFileAtomic } from '@berth/content';
import {
  CniRuntime, DEFAULT_CONFIG_DIR, DEFAULT_NETWORK_NAME, findNetwork, resultAddress,
  type CniDns, type CniResult, type NetworkConfigList, type PortMapping, type RuntimeConf,
} from '@berth/cni';
import { defaultRuntimeRoot, memberState, type MemberState, type PodMember } from './members.ts';
import {
  createNamespaces, processAlive, releaseNamespaces, startNamespaceHolder, startPidHolder, stopPidHolder,
  type PidHolder, type PodNamespacePaths, type SharedNamespace,
} from './namespaces.ts';
import { assertPortFree, assertPortNotMapped, formatPort, parsePublish, portsClash, type PublishedPort } from './ports.ts';
import { checkSubnetFree } from './routes.ts';
import {
  addHostForward, apiSocketPath, makeExitFifo, parseSlirpNetwork, SLIRP_NETWORK, startSlirp4netns, stopSlirp4netns, userModeNetworkProblem,
  type UserModeNetwork,
} from './slirp.ts';

/** Where pods live and where CNI looks: every API call takes these. */
export interface PodEnv {
  /** Runtime root (default /run/berth, or $BERTH_RUN_ROOT). */
  runRoot?: string;
  /** Directories with plugin binaries (CNI_PATH); default /usr/lib/cni, /opt/cni/bin. */
  cniPluginDirs?: string[];
  /** Directories with user *.conflist networks; default /etc/berth/cni/net.d. */
  cniConfigDirs?: string[];
}

export type NetworkMode = 'bridge' | 'none' | 'host' | 'slirp4netns';

export interface CreatePodOptions extends PodEnv {
  name?: string;
  /** --publish values: [HOSTIP:]HOSTPORT:PORT[/tcp|udp]. */
  publish?: string[];
  /**
   * bridge (root's default: the berth CNI network), none, host, the name of a
   * user conflist network, or slirp4netns (an ordinary user's default: a
   * user-mode network, slirp.ts).
   */
  network?: string;
  /** Namespaces the pod shares; default net, ipc, uts. */
  share?: string[];
  hostname?: string;
}

/** The pod document: what `berth-pod create` prints and `berth-bundle --pod` reads. */
export interface PodDocument {
  kind: 'pod';
  name: string;
  id: string;
  created: string;
  hostname?: string;
  /** bridge | none | host | slirp4netns, or a user network's name. */
  network: string;
  /** The CNI network attached (undefined for none and host). */
  networkName?: string;
  share: SharedNamespace[];
  namespaces: PodNamespacePaths;
  ip: string | null;
  gateway?: string;
  dns?: CniDns;
  ports: PublishedPort[];
}

/** What pod.json keeps beyond the document. */
export interface PodRecord extends PodDocument {
  containers: PodMember[];
  pidHolder?: PidHolder;
  /**
   * Rootless pods: the process (unshare, then catatonit) that holds the user
   * namespace and every namespace it owns; they end when it does.
   */
  namespaceHolder?: PidHolder;
  /** The conflist used at ADD, kept so DEL runs the same plugins even if the file changed. */
  networkConfig?: NetworkConfigList;
  /** --network slirp4netns: the user-mode network's process and API socket. */
  slirp4netns?: UserModeNetwork;
}

/** 'Dead': a rootless pod whose namespace holder is gone, so no container can join it; only rm is left. */
export type PodStatus = 'Created' | 'Running' | 'Degraded' | 'Exited' | 'Dead';

export interface PodContainerInfo extends PodMember, MemberState {}

export interface PodInspect extends PodDocument {
  status: PodStatus;
  containers: PodContainerInfo[];
  pidHolder?: PidHolder;
  namespaceHolder?: PidHolder;
  /** With `running`: whether slirp4netns still runs (it ends with the holder). */
  slirp4netns?: UserModeNetwork & { running: boolean };
}

const SHAREABLE: SharedNamespace[] = ['net', 'ipc', 'uts', 'pid'];
const IFNAME = 'eth0';

export function podsDir(env: PodEnv = {}): string {
  return join(env.runRoot ?? defaultRunRoot(), 'pods');
}

function lockPath(env: PodEnv): string {
  return join(podsDir(env), '.lock');
}

async function locked<T>(env: PodEnv, fn: () => Promise<T>): Promise<T> {
  // An ordinary user's run root is private, like its runtime state: another
  // user must not read the pod records or the holder pids.
  mkdirSync(podsDir(env), { recursive: true, mode: isRoot() ? 0o711 : 0o700 });
  return withFileLock(lockPath(env), fn);
}

function readRecord(dir: string): PodRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(join(dir, 'pod.json'), 'utf8')) as PodRecord;
    return rec.kind === 'pod' ? rec : undefined;
  } catch {
    return undefined;
  }
}

function allRecords(env: PodEnv): PodRecord[] {
  let ids: string[];
  try { ids = readdirSync(podsDir(env)).filter((d) => /^[0-9a-f]{64}$/.test(d)); } catch { return []; }
  return ids.map((id) => readRecord(join(podsDir(env), id))).filter((r): r is PodRecord => r !== undefined);
}

async function saveRecord(env: PodEnv, rec: PodRecord): Promise<void> {
  await writeFileAtomic(join(podsDir(env), rec.id, 'pod.json'), JSON.stringify(rec, null, 2) + '\n');
}

/** A name, a full id, or a unique id prefix (podman's 12-character short ids included). */
function resolve(env: PodEnv, nameOrId: string): PodRecord {
  const all = allRecords(env);
  const byName = all.find((r) => r.name === nameOrId);
  if (byName) return byName;
  if (/^[0-9a-f]{3,64}$/.test(nameOrId)) {
    const hits = all.filter((r) => r.id.startsWith(nameOrId));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw new BerthError('E_AMBIGUOUS', `pod id prefix ${nameOrId} matches ${hits.length} pods: give more characters`);
  }
  throw new BerthError('E_NO_POD', `no such pod: ${nameOrId}`);
}

export function documentOf(rec: PodRecord): PodDocument {
  const { containers: _c, pidHolder: _p, namespaceHolder: _h, networkConfig: _n, slirp4netns: _s, ...doc } = rec;
  return doc;
}

function parseShare(share: string[] | undefined): SharedNamespace[] {
  if (share === undefined) return ['net', 'ipc', 'uts'];
  const out: SharedNamespace[] = [];
  for (const s of share.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
    if (!SHAREABLE.includes(s as SharedNamespace)) throw new BerthUsageError(`--share ${s}: a pod can share ${SHAREABLE.join(', ')}`);
    if (!out.includes(s as SharedNamespace)) out.push(s as SharedNamespace);
  }
  return out;
}

function validateHostname(h: string): string {
  if (h.length === 0 || h.length > 64 || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(h)) {
    throw new BerthUsageError(`--hostname ${JSON.stringify(h)}: not a valid hostname (letters, digits, '-', '_' and '.', at most 64 characters)`);
  }
  return h;
}

function cniRuntime(env: PodEnv, podDir: string): CniRuntime {
  return new CniRuntime({ pluginDirs: env.cniPluginDirs, cacheDir: join(podDir, 'cni') });
}

function runtimeConf(rec: { id: string; name: string; namespaces: PodNamespacePaths; ports: PublishedPort[] }): RuntimeConf {
  const mappings: PortMapping[] = rec.ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, ...(p.hostIP ? { hostIP: p.hostIP } : {}) }));
  return {
    containerId: rec.id,
    netns: rec.namespaces.network!,
    ifName: IFNAME,
    args: [['IgnoreUnknown', '1'], ['K8S_POD_NAME', rec.name]],
    capabilityArgs: mappings.length > 0 ? { portMappings: mappings } : undefined,
  };
}

/**
 * Why an ordinary user gets no pod with the network asked for, precisely.
 * The CNI plugins change the host's network, which is root's; a private
 * network without root is slirp4netns on /dev/net/tun (as rootless podman's
 * default), refused with the device's mode and owner and the setfacl that
 * would grant it when this user cannot open it. Undefined: no objection.
 */
export function rootlessPodMessage(network: string): string | undefined {
  if (network === 'none' || network === 'host') return undefined;
  if (parseSlirpNetwork(network)) return userModeNetworkProblem(`--network ${network}`);
  return `--network ${network}: a CNI network changes the host's network and needs root; an ordinary user's private network is --network slirp4netns (the default), or use --network none or --network host`;
}

/**
 * Create a pod. The order matters for "nothing half-written": every check
 * that can fail on user input (name, ports, network config, plugins, free
 * host ports) runs before anything is created; then namespaces, then the
 * PID holder, then CNI ADD (it needs the network namespace file), and the
 * record last, so a pod is listed only once it is complete. A failure after
 * the first step undoes the steps already taken, in reverse.
 */
export async function createPod(opts: CreatePodOptions = {}): Promise<PodDocument> {
  const env: PodEnv = opts;
  const rootless = !isRoot();
  const id = randomBytes(32).toString('hex');
  const name = opts.name ?? `pod_${id.slice(0, 12)}`;
  if (!OBJECT_NAME_RE.test(name) || name.length > 128) throw new BerthUsageError(`--name ${JSON.stringify(name)}: a pod name is letters, digits, '_', '.' and '-', starting with a letter or digit`);
  if (/^[0-9a-f]{64}$/.test(name)) throw new BerthUsageError(`--name ${name}: a 64-hex name would read as a pod id`);
  const share = parseShare(opts.share);
  // podman's defaults: the CNI bridge for root, slirp4netns for an ordinary user.
  const requested = opts.network ?? (rootless ? 'slirp4netns' : 'bridge');
  const slirpOptions = parseSlirpNetwork(requested);
  if (slirpOptions && !rootless) {
    throw new BerthUsageError(`--network ${requested}: berth runs slirp4netns for ordinary users only; as root a pod's private network is the CNI bridge (the default)`);
  }
  // The record says slirp4netns; its options are kept with the process (rec.slirp4netns).
  const network = slirpOptions ? 'slirp4netns' : requested;
  const userMode = slirpOptions !== undefined;
  const ports = (opts.publish ?? []).map(parsePublish);
  for (let i = 0; i < ports.length; i++) {
    for (let j = 0; j < i; j++) if (portsClash(ports[i]!, ports[j]!)) throw new BerthUsageError(`--publish ${formatPort(ports[i]!)} clashes with --publish ${formatPort(ports[j]!)}`);
  }
  if (!share.includes('net') && network !== 'host' && opts.network !== undefined) throw new BerthUsageError(`--network ${network} needs the pod to share its network namespace (--share net)`);
  if (ports.length > 0 && (network === 'none' || network === 'host' || !share.includes('net'))) {
    throw new BerthUsageError(`--publish needs a pod network: with --network ${network}${share.includes('net') ? '' : ' and no shared net namespace'} there is nothing to map a port to`);
  }
  const hostname = opts.hostname !== undefined ? validateHostname(opts.hostname) : share.includes('uts') ? name : undefined;
  if (opts.hostname !== undefined && !share.includes('uts')) throw new BerthUsageError('--hostname needs the pod to share its UTS namespace (--share uts)');
  const netShared = share.includes('net') && network !== 'host';
  const nsShare = share.filter((s) => s !== 'net' || netShared);
  if (rootless && netShared) {
    const refusal = rootlessPodMessage(requested);
    if (refusal !== undefined) throw new BerthError('E_PERM', refusal);
  }
  // Rootless: the user's subordinate range (or a clear error for a broken uidmap install) before anything is made.
  const plan = rootless ? rootlessPlan() : undefined;

  let netConfig: NetworkConfigList | undefined;
  if (netShared && network !== 'none' && !userMode) {
    netConfig = findNetwork(network === 'bridge' ? DEFAULT_NETWORK_NAME : network, env.cniConfigDirs ?? [DEFAULT_CONFIG_DIR]);
    cniRuntime(env, join(podsDir(env), id)).checkPlugins(netConfig);
    if (netConfig.source === 'berth default network') checkSubnetFree();
  }

  return locked(env, async () => {
    const existing = allRecords(env);
    if (existing.some((r) => r.name === name)) throw new BerthError('E_EXISTS', `a pod named ${name} already exists: choose another --name or remove it first (berth-pod rm ${name})`);
    for (const p of ports) {
      const owner = existing.find((r) => r.ports.some((q) => portsClash(p, q)));
      if (owner) throw new BerthError('E_PORT_IN_USE', `--publish ${formatPort(p)}: host port ${p.hostPort}/${p.protocol} is already published by pod ${owner.name}`);
      await assertPortFree(p);
      // portmap's chain is root's to read (and an ordinary user's ports never go through it).
      if (!rootless) assertPortNotMapped(p);
    }

    const dir = join(podsDir(env), id);
    const nsDir = join(dir, 'ns');
    mkdirSync(nsDir, { recursive: true, mode: 0o711 });
    const rec: PodRecord = {
      kind: 'pod', name, id, created: new Date().toISOString(), ...(hostname !== undefined ? { hostname } : {}),
      network: netShared || network === 'host' ? network : 'none', ...(netConfig ? { networkName: netConfig.name } : {}),
      share, namespaces: {}, ip: null, ports, containers: [], ...(netConfig ? { networkConfig: netConfig } : {}),
    };
    let cniAdded = false;
    try {
      if (rootless) {
        const slirp = userMode && netShared;
        const exitFifo = slirp ? makeExitFifo(dir) : undefined;
        const { paths, holder } = await startNamespaceHolder(dir, nsShare, hostname, plan, exitFifo);
        rec.namespaces = paths;
        rec.namespaceHolder = holder;
        if (slirp) {
          // slirp4netns enters the namespaces of the process that is in all of them (catatonit).
          const targetPid = Number(/^\/proc\/(\d+)\//.exec(paths.network!)![1]);
          rec.slirp4netns = await startSlirp4netns({ podDir: dir, targetPid, apiSocket: apiSocketPath(podsDir(env), id), exitFifo: exitFifo!, options: slirpOptions! });
          for (const p of ports) await addHostForward(rec.slirp4netns, p);
          rec.ip = SLIRP_NETWORK.ip;
          rec.gateway = SLIRP_NETWORK.gateway;
          rec.dns = { nameservers: [SLIRP_NETWORK.dns] };
        }
      } else {
        rec.namespaces = await createNamespaces(nsDir, nsShare, hostname);
      }
      if (share.includes('pid') && !rootless) {
        const { path, holder } = await startPidHolder(nsDir);
        rec.namespaces.pid = path;
        rec.pidHolder = holder;
      }
      if (netConfig) {
        const result: CniResult = await cniRuntime(env, dir).add(netConfig, runtimeConf(rec));
        cniAdded = true;
        const addr = resultAddress(result);
        rec.ip = addr?.ip ?? null;
        if (addr?.gateway) rec.gateway = addr.gateway;
        if (result.dns && Object.keys(result.dns).length > 0) rec.dns = result.dns;
      }
      await saveRecord(env, rec);
    } catch (err) {
      await teardown(env, rec, dir, { cni: cniAdded, keepOnCniFailure: false }).catch((e: unknown) => log.warn(`cleanup after failed create: ${(e as Error).message}`));
      throw err;
    }
    return documentOf(rec);
  });
}

/**
 * Undo a pod, in the reverse of create: CNI DEL first (the plugins enter the
 * network namespace to remove the container's veth end and need the file
 * still mounted), then the PID holder, then the namespace mounts, then the
 * directory. DEL is tolerant (all plugins run); when some failed and
 * `keepOnCniFailure` is set, nothing else is undone, so a retry finds the
 * namespace and the cached result again.
 */
async function teardown(env: PodEnv, rec: PodRecord, dir: string, opts: { cni: boolean; keepOnCniFailure: boolean }): Promise<Error[]> {
  let errors: Error[] = [];
  if (opts.cni && rec.networkConfig && rec.namespaces.network) {
    errors = await cniRuntime(env, dir).del(rec.networkConfig, runtimeConf(rec));
    if (errors.length > 0 && opts.keepOnCniFailure) return errors;
  }
  // slirp4netns before the holder: it would end with it, but stopping it by pid frees the host ports before rm returns.
  if (rec.slirp4netns) await stopSlirp4netns(rec.slirp4netns);
  if (rec.pidHolder) await stopPidHolder(rec.pidHolder);
  // A rootless pod's namespace files are the holder's /proc entries, not mounts: they go with it.
  if (rec.namespaceHolder) await stopPidHolder(rec.namespaceHolder);
  else await releaseNamespaces(rec.namespaces);
  rmSync(dir, { recursive: true, force: true });
  return errors;
}

export interface RemovePodOptions extends PodEnv {
  /** Remove even with running containers: they are killed (SIGKILL) first. */
  force?: boolean;
}

/**
 * Remove a pod. Without force, a pod with a running container is refused
 * (podman's rule: its processes would lose their network under them).
 */
export async function removePod(nameOrId: string, opts: RemovePodOptions = {}): Promise<PodDocument> {
  return locked(opts, async () => {
    const rec = resolve(opts, nameOrId);
    const running = rec.containers.map((c) => ({ c, s: memberState(c) })).filter((x) => x.s.status === 'running');
    if (running.length > 0) {
      if (!opts.force) {
        throw new BerthError('E_POD_RUNNING', `pod ${rec.name} has ${running.length} running container(s) (${running.map((x) => x.c.id).join(', ')}): stop them first or use --force`);
      }
      for (const { s } of running) { try { process.kill(s.pid!, 'SIGKILL'); } catch { /* already gone */ } }
      const deadline = Date.now() + 10_000;
      while (running.some((x) => processAlive(x.s.pid!, x.s.startTime)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    }
    const errors = await teardown(opts, rec, join(podsDir(opts), rec.id), { cni: true, keepOnCniFailure: !opts.force });
    if (errors.length > 0) {
      if (!opts.force) {
        throw new BerthError('E_CNI_DEL', `pod ${rec.name}: CNI DEL failed, the pod is kept so rm can be retried (or use --force): ${errors.map((e) => e.message).join('; ')}`);
      }
      for (const e of errors) log.warn(`pod ${rec.name}: ${e.message}`);
    }
    return documentOf(rec);
  });
}

function podStatus(states: MemberState[], holderGone: boolean): PodStatus {
  if (holderGone && !states.some((s) => s.status === 'running')) return 'Dead';
  if (states.length === 0) return 'Created';
  const up = states.filter((s) => s.status === 'running').length;
  if (up === states.length) return 'Running';
  return up === 0 ? 'Exited' : 'Degraded';
}

function inspectRecord(rec: PodRecord): PodInspect {
  const containers = rec.containers.map((c) => ({ ...c, ...memberState(c) }));
  const holderGone = rec.namespaceHolder !== undefined && !processAlive(rec.namespaceHolder.pid, rec.namespaceHolder.startTime);
  return {
    ...documentOf(rec), status: podStatus(containers, holderGone), containers,
    ...(rec.pidHolder ? { pidHolder: rec.pidHolder } : {}), ...(rec.namespaceHolder ? { namespaceHolder: rec.namespaceHolder } : {}),
    ...(rec.slirp4netns ? { slirp4netns: { ...rec.slirp4netns, running: processAlive(rec.slirp4netns.pid, rec.slirp4netns.startTime) } } : {}),
  };
}

export async function inspectPod(nameOrId: string, env: PodEnv = {}): Promise<PodInspect> {
  return inspectRecord(resolve(env, nameOrId));
}

/** Every pod, oldest first. */
export async function listPods(env: PodEnv = {}): Promise<PodInspect[]> {
  return allRecords(env).sort((a, b) => a.created.localeCompare(b.created)).map(inspectRecord);
}

/** Record that a container joined the pod (its runtime root tells later where its state is). */
export async function attachContainer(nameOrId: string, containerId: string, runtimeRoot: string = defaultRuntimeRoot(), env: PodEnv = {}): Promise<PodDocument> {
  if (!/^[\w+.-]+$/.test(containerId)) throw new BerthUsageError(`invalid container id ${JSON.stringify(containerId)}`);
  return locked(env, async () => {
    const rec = resolve(env, nameOrId);
    if (!rec.containers.some((c) => c.id === containerId)) {
      rec.containers.push({ id: containerId, runtimeRoot });
      await saveRecord(env, rec);
    }
    return documentOf(rec);
  });
}

export async function detachContainer(nameOrId: string, containerId: string, env: PodEnv = {}): Promise<PodDocument> {
  return locked(env, async () => {
    const rec = resolve(env, nameOrId);
    const before = rec.containers.length;
    rec.containers = rec.containers.filter((c) => c.id !== containerId);
    if (rec.containers.length === before) throw new BerthError('E_NO_CONTAINER', `container ${containerId} is not in pod ${rec.name}`);
    await saveRecord(env, rec);
    return documentOf(rec);
  });
}

/** `ports`: the pod's published ports in podman's `podman port` form. */
export async function podPorts(nameOrId: string, env: PodEnv = {}): Promise<{ kind: 'podPorts'; name: string; id: string; ports: (PublishedPort & { text: string })[] }> {
  const rec = resolve(env, nameOrId);
  return { kind: 'podPorts', name: rec.name, id: rec.id, ports: rec.ports.map((p) => ({ ...p, text: `${p.containerPort}/${p.protocol} -> ${p.hostIP || '0.0.0.0'}:${p.hostPort}` })) };
}

/** CNI CHECK over the pod's attachment: the plugins confirm the veth, address and rules are still there. */
export async function checkPodNetwork(nameOrId: string, env: PodEnv = {}): Promise<void> {
  const rec = resolve(env, nameOrId);
  if (!rec.networkConfig || !rec.namespaces.network) return;
  await cniRuntime(env, join(podsDir(env), rec.id)).check(rec.networkConfig, runtimeConf(rec));
}
