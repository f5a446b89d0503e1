/**
 * User networks as files: `berth network create` writes one
 * NAME.conflist into the directory berth reads networks from
 * (/etc/berth/cni/net.d, where `findNetwork` looks them up for pods), and
 * ls, inspect and rm read and remove them. The conflist is the whole
 * network, as with podman's CNI backend: nothing exists on the host until
 * the first pod attaches (the bridge plugin makes the bridge then), so
 * create only chooses a name, a bridge device name and a subnet that
 * nothing else on the host uses, and writes the file atomically.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, BerthUsageError, OBJECT_NAME_RE, log } from '@berth/cli-kit';
import { withFileLock, writeFileAtomic } from '@berth/content';
import { DEFAULT_CONFIG_DIR, DEFAULT_IPAM_DIR, DEFAULT_NETWORK_NAME, defaultConfList, parseConfList } from './conflist.ts';
import {
  contains, formatCidr, formatIpv4, hostRoutes, lastAddress, overlaps, parseCidr, parseIpv4, pickFreeSubnet, type Ipv4Net,
} from './network-subnet.ts';
import type { NetworkConfigList, PluginConfig } from './types.ts';

/** podman's rule for network names (and berth's for pods and containers). */

/** Values of --network that are modes, not networks: a network with one of these names could never be chosen. */
export const NETWORK_MODES = ['bridge', 'none', 'host', 'private', 'slirp4netns', 'pasta', 'container', 'ns', 'default'];

/** Where host-local keeps leases when a conflist does not say (libcni's default). */
const CNI_DEFAULT_IPAM_DIR = '/var/lib/cni/networks';

/** One subnet in podman's inspect shape. */
export interface NetworkSubnet {
  subnet: string;
  gateway?: string;
  lease_range?: { start_ip: string; end_ip: string };
}

/** `podman network inspect`'s document (podman 4), key for key and in its order. */
export interface NetworkInfo {
  name: string;
  /** sha256 of the name, as podman's CNI backend derives it. */
  id: string;
  driver: string;
  network_interface: string;
  created: string;
  subnets?: NetworkSubnet[];
  ipv6_enabled: boolean;
  internal: boolean;
  dns_enabled: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
  ipam_options: { driver: string };
}

/** A network as berth knows it: podman's document plus what ls/rm need. */
export interface StoredNetwork {
  info: NetworkInfo;
  config: NetworkConfigList;
  /** The conflist file; undefined for the built-in default network. */
  file?: string;
  /** The Linux bridge of a bridge network (made by the bridge plugin at the first attachment). */
  bridge?: string;
  /** host-local's lease directory for this network. */
  leaseDir?: string;
}

export function networkId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/** podman's inspect document for a conflist (`raw` is the file's JSON, for the labels podman and berth keep under "args"). */
export function describeNetwork(list: NetworkConfigList, raw: Record<string, unknown>, created: Date): Omit<StoredNetwork, 'file'> {
  const first = list.plugins[0] as PluginConfig & { bridge?: string; master?: string; isGateway?: boolean; ipMasq?: boolean; mtu?: number; ipam?: Record<string, unknown> };
  const ipam = (first.ipam ?? {}) as { type?: string; ranges?: unknown; subnet?: string; gateway?: string; routes?: { dst?: string }[]; dataDir?: string };
  const subnets: NetworkSubnet[] = [];
  const ranges = Array.isArray(ipam.ranges) ? (ipam.ranges as unknown[]).flatMap((set) => (Array.isArray(set) ? set : [])) : [];
  for (const r of ranges as { subnet?: string; gateway?: string; rangeStart?: string; rangeEnd?: string }[]) {
    if (typeof r.subnet !== 'string') continue;
    subnets.push({
      subnet: r.subnet, ...(r.gateway ? { gateway: r.gateway } : {}),
      ...(r.rangeStart || r.rangeEnd ? { lease_range: { start_ip: r.rangeStart ?? '', end_ip: r.rangeEnd ?? '' } } : {}),
    });
  }
  if (typeof ipam.subnet === 'string') subnets.push({ subnet: ipam.subnet, ...(ipam.gateway ? { gateway: ipam.gateway } : {}) });
  const defaultRoute = (ipam.routes ?? []).some((r) => r.dst === '0.0.0.0/0' || r.dst === '::/0');
  const args = (raw.args ?? {}) as Record<string, unknown>;
  const labels = (args.berth_labels ?? args.podman_labels) as Record<string, string> | undefined;
  const info: NetworkInfo = {
    name: list.name, id: networkId(list.name), driver: first.type,
    network_interface: first.bridge ?? first.master ?? '',
    created: created.toISOString(),
    ...(subnets.length > 0 ? { subnets } : {}),
    ipv6_enabled: subnets.some((s) => s.subnet.includes(':')),
    // No way out: no default route handed to the container and no masquerade (podman's --internal).
    internal: !defaultRoute && first.ipMasq !== true,
    dns_enabled: list.plugins.some((p) => p.type === 'dnsname'),
    ...(labels && typeof labels === 'object' && Object.keys(labels).length > 0 ? { labels } : {}),
    ...(typeof first.mtu === 'number' ? { options: { mtu: String(first.mtu) } } : {}),
    ipam_options: { driver: ipam.type ?? '' },
  };
  return {
    info, config: list,
    ...(first.type === 'bridge' && typeof first.bridge === 'string' ? { bridge: first.bridge } : {}),
    ...(ipam.type === 'host-local' ? { leaseDir: join(ipam.dataDir ?? CNI_DEFAULT_IPAM_DIR, list.name) } : {}),
  };
}

function readNetworkFile(path: string): StoredNetwork {
  const text = readFileSync(path, 'utf8');
  const list = parseConfList(text, path);
  return { ...describeNetwork(list, JSON.parse(text) as Record<string, unknown>, statSync(path).mtime), file: path };
}

/**
 * Every network, sorted by name: the *.conflist files of `dir` (the first
 * file with a name wins, as libcni's lookup and `findNetwork` do) and the
 * built-in default unless a file overrides it. A file that does not parse
 * is skipped with a warning, so one bad file does not hide the others.
 */
export function listNetworks(dir: string = DEFAULT_CONFIG_DIR): StoredNetwork[] {
  let files: string[] = [];
  try { files = readdirSync(dir).filter((f) => f.endsWith('.conflist')).sort(); } catch { /* no user networks yet */ }
  const byName = new Map<string, StoredNetwork>();
  for (const f of files) {
    let n: StoredNetwork;
    try { n = readNetworkFile(join(dir, f)); } catch (err) {
      log.warn(`skipping ${join(dir, f)}: ${(err as Error).message}`);
      continue;
    }
    if (byName.has(n.info.name)) { log.warn(`skipping ${n.file}: network ${n.info.name} is already defined in ${byName.get(n.info.name)!.file}`); continue; }
    byName.set(n.info.name, n);
  }
  if (!byName.has(DEFAULT_NETWORK_NAME)) {
    // Not a file: it exists from the moment berth does (podman dates its in-memory default "now" too).
    const def = defaultConfList();
    byName.set(DEFAULT_NETWORK_NAME, describeNetwork(def, {}, new Date()));
  }
  return [...byName.values()].sort((a, b) => a.info.name.localeCompare(b.info.name));
}

/** A network by name, full id or unique id prefix; undefined when none matches. */
export function findStoredNetwork(nameOrId: string, dir: string = DEFAULT_CONFIG_DIR): StoredNetwork | undefined {
  const all = listNetworks(dir);
  const byName = all.find((n) => n.info.name === nameOrId);
  if (byName) return byName;
  if (!/^[0-9a-f]{1,64}$/.test(nameOrId)) return undefined;
  const hits = all.filter((n) => n.info.id.startsWith(nameOrId));
  if (hits.length > 1) throw new BerthError('E_AMBIGUOUS', `network id prefix ${nameOrId} matches ${hits.length} networks (${hits.map((h) => h.info.name).join(', ')}): give more characters or the name`);
  return hits[0];
}

/** The built-in default network cannot be removed or redefined. */
export function isDefaultNetwork(n: StoredNetwork): boolean {
  return n.file === undefined && n.info.name === DEFAULT_NETWORK_NAME;
}

export interface CreateNetworkOptions {
  /** Default: berthN, the lowest N not taken (podman's podmanN). */
  name?: string;
  /** CIDR; default: the first free 10.89.N.0/24. */
  subnet?: string;
  /** Default: the subnet's first address (none for --internal). */
  gateway?: string;
  /** CIDR inside the subnet that addresses are leased from. */
  ipRange?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  /** bridge is the only driver. */
  driver?: string;
  /** host-local is the only IPAM driver. */
  ipamDriver?: string;
  /** -o KEY=VALUE driver options: mtu. */
  options?: Record<string, string>;
  ipv6?: boolean;
  /** The directory networks are read from (default /etc/berth/cni/net.d). */
  dir?: string;
  /** /proc/net/route text, for tests. */
  routeTable?: string;
}

/** A refusal of `network create`: berth's own error (exit 125 from the front), saying what to change. */
function refuse(message: string): never {
  throw new BerthError('E_NETWORK_CREATE', message);
}

function checkName(name: string): void {
  if (!OBJECT_NAME_RE.test(name) || name.length > 128) {
    throw new BerthUsageError(`network name ${JSON.stringify(name)} invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 128 characters)`);
  }
  if (NETWORK_MODES.includes(name)) refuse(`cannot create network with name "${name}" because it conflicts with a valid network mode: choose another name`);
}

/** The lowest berthN (N from 1) no network uses as a bridge and no host interface has (berth0 is the default's). */
function freeBridgeName(existing: StoredNetwork[]): string {
  const used = new Set(existing.map((n) => n.bridge).filter(Boolean));
  for (let n = 1; ; n++) {
    const name = `berth${n}`;
    if (!used.has(name) && !existsSync(join('/sys/class/net', name))) return name;
  }
}

/** The lowest berthN no network is named. */
function freeNetworkName(existing: StoredNetwork[], dir: string): string {
  const names = new Set(existing.map((n) => n.info.name));
  for (let n = 1; ; n++) {
    const name = `berth${n}`;
    if (!names.has(name) && !existsSync(join(dir, `${name}.conflist`))) return name;
  }
}

interface PlannedSubnet { subnet: Ipv4Net; gateway?: number; rangeStart?: number; rangeEnd?: number }

function planSubnet(opts: CreateNetworkOptions, existing: StoredNetwork[]): PlannedSubnet {
  const routes = hostRoutes(opts.routeTable);
  const others: { net: Ipv4Net; what: string }[] = [];
  for (const n of existing) {
    for (const s of n.info.subnets ?? []) {
      if (s.subnet.includes(':')) continue;
      try { others.push({ net: parseCidr(s.subnet, 'subnet'), what: `network ${n.info.name} (${s.subnet})` }); } catch { /* a hand-written file's oddity: nothing to compare */ }
    }
  }
  let subnet: Ipv4Net;
  if (opts.subnet !== undefined) {
    subnet = parseCidr(opts.subnet, '--subnet');
    if (subnet.bits > 30) throw new BerthUsageError(`--subnet ${opts.subnet}: a /${subnet.bits} has no room for a gateway and a container; use /30 or larger (e.g. /24)`);
    const clash = others.find((o) => overlaps(o.net, subnet));
    if (clash) refuse(`subnet ${formatCidr(subnet)} is already used by ${clash.what}: choose another --subnet, or leave it out and berth picks a free one`);
    const route = routes.find((r) => overlaps(r.net, subnet));
    if (route) refuse(`subnet ${formatCidr(subnet)} is already used on the host: it overlaps the route ${formatCidr(route.net)} on ${route.device}, and the bridge would capture that traffic; choose another --subnet`);
  } else {
    const free = pickFreeSubnet([...others.map((o) => o.net), ...routes.map((r) => r.net)]);
    if (!free) refuse('no free subnet left in 10.89.0.0/16 (every 10.89.N.0/24 is used by a network or a host route): give one with --subnet');
    subnet = free;
  }
  const first = subnet.base + 1;
  const last = lastAddress(subnet) - 1;
  let gateway: number | undefined;
  if (opts.gateway !== undefined) {
    const g = parseIpv4(opts.gateway);
    if (g === undefined) throw new BerthUsageError(`--gateway ${opts.gateway}: not an IPv4 address`);
    if (!contains(subnet, g)) refuse(`gateway ${opts.gateway} not in subnet ${formatCidr(subnet)}`);
    if (g < first || g > last) refuse(`gateway ${opts.gateway} is the network or broadcast address of ${formatCidr(subnet)}: choose an address between ${formatIpv4(first)} and ${formatIpv4(last)}`);
    gateway = g;
  } else if (!opts.internal) {
    gateway = first;
  }
  if (opts.ipRange === undefined) return { subnet, gateway };
  const range = parseCidr(opts.ipRange, '--ip-range');
  if (!contains(subnet, range.base) || range.bits < subnet.bits) refuse(`--ip-range ${opts.ipRange} is not inside subnet ${formatCidr(subnet)}`);
  const rangeStart = Math.max(range.base, first);
  const rangeEnd = Math.min(lastAddress(range), last);
  const leasable = rangeEnd - rangeStart + 1 - (gateway !== undefined && gateway >= rangeStart && gateway <= rangeEnd ? 1 : 0);
  if (leasable < 1) refuse(`--ip-range ${opts.ipRange} leaves no address to lease (without the subnet's network, broadcast and gateway addresses)`);
  return { subnet, gateway, rangeStart, rangeEnd };
}

/**
 * The conflist of a bridge network, as podman's CNI backend writes one
 * (bridge with its own device, host-local, portmap, firewall), with berth's
 * choices of the default network: leases on tmpfs, portmap's snat.
 * --internal: the bridge is no gateway (the host has no address on it), no
 * masquerade and no default route, so a container reaches only its
 * network's peers.
 */
export function bridgeConfList(p: { name: string; bridge: string; plan: PlannedSubnet; internal: boolean; mtu?: number; labels: Record<string, string> }): Record<string, unknown> {
  const range = {
    subnet: formatCidr(p.plan.subnet),
    ...(p.plan.rangeStart !== undefined ? { rangeStart: formatIpv4(p.plan.rangeStart), rangeEnd: formatIpv4(p.plan.rangeEnd!) } : {}),
    ...(p.plan.gateway !== undefined ? { gateway: formatIpv4(p.plan.gateway) } : {}),
  };
  return {
    cniVersion: '1.0.0',
    name: p.name,
    ...(Object.keys(p.labels).length > 0 ? { args: { berth_labels: p.labels } } : {}),
    plugins: [
      {
        type: 'bridge', bridge: p.bridge, isGateway: !p.internal, ...(p.internal ? {} : { ipMasq: true }), hairpinMode: true,
        ...(p.mtu !== undefined ? { mtu: p.mtu } : {}),
        ipam: { type: 'host-local', dataDir: DEFAULT_IPAM_DIR, ...(p.internal ? {} : { routes: [{ dst: '0.0.0.0/0' }] }), ranges: [[range]] },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
    ],
  };
}

function lockPath(dir: string): string {
  return join(dir, '.berth-network.lock');
}

/** Serialize the writers of the network directory (create, rm), so two creates cannot take one name or subnet. */
export async function withNetworkLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return withFileLock(lockPath(dir), fn);
}

/** What `createNetwork` would write now: the network's name, its file and the conflist document. */
export interface NetworkPlan {
  name: string;
  file: string;
  doc: Record<string, unknown>;
}

/** Every flag's syntax and the choices that need no look at the host; `createNetwork` runs it before taking the lock. */
function checkCreateOptions(opts: CreateNetworkOptions): { mtu?: number } {
  const dir = opts.dir ?? DEFAULT_CONFIG_DIR;
  const driver = opts.driver ?? 'bridge';
  if (driver !== 'bridge') refuse(`unsupported driver ${driver}: berth creates bridge networks only (the CNI bridge plugin); for another plugin write a conflist into ${dir}`);
  if ((opts.ipamDriver ?? 'host-local') !== 'host-local') refuse(`unsupported IPAM driver ${opts.ipamDriver}: berth networks lease addresses with host-local`);
  if (opts.ipv6) refuse('--ipv6: berth networks are IPv4 only');
  let mtu: number | undefined;
  for (const [k, v] of Object.entries(opts.options ?? {})) {
    if (k !== 'mtu') refuse(`unsupported bridge option ${k}: berth takes -o mtu=N`);
    mtu = Number(v);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new BerthUsageError(`-o mtu=${v}: an MTU is a whole number from 68 to 65535`);
  }
  if (opts.name !== undefined) checkName(opts.name);
  for (const k of Object.keys(opts.labels ?? {})) if (k === '') throw new BerthUsageError('--label: a label needs a key (KEY=VALUE)');
  if (opts.subnet !== undefined) parseCidr(opts.subnet, '--subnet');
  if (opts.ipRange !== undefined) parseCidr(opts.ipRange, '--ip-range');
  if (opts.ipRange !== undefined && opts.subnet === undefined) throw new BerthUsageError('--ip-range needs --subnet');
  if (opts.gateway !== undefined && opts.subnet === undefined) throw new BerthUsageError('--gateway needs --subnet');
  return mtu !== undefined ? { mtu } : {};
}

/**
 * Choose the name, subnet and bridge device against what exists now, and
 * build the conflist, without writing anything (`--explain` shows it).
 */
export function planNetwork(opts: CreateNetworkOptions = {}): NetworkPlan {
  const { mtu } = checkCreateOptions(opts);
  const dir = opts.dir ?? DEFAULT_CONFIG_DIR;
  const existing = listNetworks(dir);
  const name = opts.name ?? freeNetworkName(existing, dir);
  if (existing.some((n) => n.info.name === name)) refuse(`network name ${name} already used: network already exists`);
  const file = join(dir, `${name}.conflist`);
  if (existsSync(file)) refuse(`network name ${name} already used: ${file} exists (it defines another network or does not parse); remove or rename it`);
  const plan = planSubnet(opts, existing);
  const bridge = freeBridgeName(existing);
  return { name, file, doc: bridgeConfList({ name, bridge, plan, internal: opts.internal === true, mtu, labels: opts.labels ?? {} }) };
}

/**
 * Create a network: every flag is checked first, then, under the
 * directory's lock, the name, subnet and bridge device are chosen against
 * what exists, and NAME.conflist is written (temp file, fsync, rename), so
 * a pod sees the whole network or none.
 */
export async function createNetwork(opts: CreateNetworkOptions = {}): Promise<StoredNetwork> {
  // Flag syntax before the lock, so a typo is told without waiting on another create.
  checkCreateOptions(opts);
  return withNetworkLock(opts.dir ?? DEFAULT_CONFIG_DIR, async () => {
    const { file, doc } = planNetwork(opts);
    await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', 0o644);
    return readNetworkFile(file);
  });
}

/** Remove a network's file (under the directory's lock). The bridge and leases are the caller's (they need the pods gone first). */
export async function removeNetworkFile(n: StoredNetwork, dir: string = DEFAULT_CONFIG_DIR): Promise<void> {
  if (n.file === undefined) refuse(`default network ${n.info.name} cannot be removed`);
  await withNetworkLock(dir, async () => {
    try { unlinkSync(n.file!); } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  });
}
