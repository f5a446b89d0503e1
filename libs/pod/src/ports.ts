/**
 * Published ports: `[HOSTIP:]HOSTPORT:PORT[/tcp|udp]` as podman's --publish
 * takes it, and the check that a host port is free before portmap's DNAT
 * rules would silently shadow a listening service.
 */
import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { BerthError, BerthUsageError } from '@berth/cli-kit';

export interface PublishedPort {
  /** Empty means every host address (0.0.0.0). */
  hostIP: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

function portNumber(value: string, what: string, spec: string): number {
  if (!/^\d{1,5}$/.test(value)) throw new BerthUsageError(`--publish ${spec}: ${what} "${value}" is not a port number (1-65535)`);
  const n = Number(value);
  if (n < 1 || n > 65535) throw new BerthUsageError(`--publish ${spec}: ${what} ${n} is out of range (1-65535)`);
  return n;
}

/** Parse one --publish value; every mistake names the value and what a good one looks like. */
export function parsePublish(spec: string): PublishedPort {
  const example = 'expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp], e.g. 8080:80 or 127.0.0.1:8080:80/tcp';
  let rest = spec;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1);
    if (proto !== 'tcp' && proto !== 'udp') throw new BerthUsageError(`--publish ${spec}: unknown protocol "${proto}" (tcp or udp)`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  const parts = rest.split(':');
  if (parts.length < 2 || parts.length > 3) throw new BerthUsageError(`--publish ${spec}: ${example}`);
  let hostIP = '';
  if (parts.length === 3) {
    hostIP = parts[0]!;
    if (hostIP !== '' && !isIPv4(hostIP)) throw new BerthUsageError(`--publish ${spec}: host address "${hostIP}" is not an IPv4 address`);
    if (hostIP === '0.0.0.0') hostIP = '';
  }
  const [hp, cp] = parts.slice(-2) as [string, string];
  if (hp === '') throw new BerthUsageError(`--publish ${spec}: the host port is missing (${example}; berth does not pick random host ports)`);
  if (hp.includes('-') || cp.includes('-')) throw new BerthUsageError(`--publish ${spec}: port ranges are not supported; publish each port`);
  return { hostIP, hostPort: portNumber(hp, 'host port', spec), containerPort: portNumber(cp, 'container port', spec), protocol };
}

export function formatPort(p: PublishedPort): string {
  return `${p.hostIP || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`;
}

/** Two mappings meet when they share protocol and host port and one of them listens on every address. */
export function portsClash(a: PublishedPort, b: PublishedPort): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIP === '' || b.hostIP === '' || a.hostIP === b.hostIP);
}

/**
 * Is the host port free? Bind it for a moment, as the kernel is the only
 * judge. When it is taken, name the holder from /proc/net/{tcp,udp} and the
 * process whose fd points at that socket inode.
 */
export async function assertPortFree(p: PublishedPort): Promise<void> {
  const err = await tryBind(p);
  if (!err) return;
  if (err.code === 'EADDRINUSE') {
    const holder = portHolder(p.hostPort, p.protocol);
    throw new BerthError('E_PORT_IN_USE', `--publish ${formatPort(p)}: host port ${p.hostPort}/${p.protocol} is already in use${holder ? ` by ${holder}` : ''}`);
  }
  if (err.code === 'EADDRNOTAVAIL') throw new BerthError('E_PORT', `--publish ${formatPort(p)}: ${p.hostIP} is not an address of this host`);
  if (err.code === 'EACCES') {
    // An ordinary user binds only from net.ipv4.ip_unprivileged_port_start up (ip(7)); so does slirp4netns for them.
    let start = '1024';
    try { start = readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim(); } catch { /* the kernel's default */ }
    throw new BerthError('E_PORT', `--publish ${formatPort(p)}: host port ${p.hostPort} is privileged: an ordinary user may bind ports from ${start} up (net.ipv4.ip_unprivileged_port_start); publish a higher host port, e.g. -p ${Math.max(Number(start), 8000) + p.containerPort}:${p.containerPort}`);
  }
  throw new BerthError('E_PORT', `bind ${p.hostIP || '0.0.0.0'}:${p.hostPort}/${p.protocol}: ${err.code ?? err.message}`);
}

/**
 * portmap's DNAT rules take a port without binding it, so the bind test
 * cannot see a port another CNI attachment (a pod under another run root, a
 * podman container) already maps: look at portmap's shared chain for it.
 * Each rule reads `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat
 * name: \"NET\" id: \"ID\"" -m multiport --dports 8080,8443 -j CNI-DN-…`.
 */
export function assertPortNotMapped(p: PublishedPort): void {
  const r = spawnSync('iptables', ['-w', '-t', 'nat', '-S', 'CNI-HOSTPORT-DNAT'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return; // no chain yet: nothing is mapped
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('-A CNI-HOSTPORT-DNAT') || !line.includes(`-p ${p.protocol} `)) continue;
    const ports = /--dports (\S+)/.exec(line)?.[1]?.split(',').map(Number) ?? [];
    if (!ports.includes(p.hostPort)) continue;
    const who = /name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\"/.exec(line);
    throw new BerthError('E_PORT_IN_USE', `--publish ${formatPort(p)}: host port ${p.hostPort}/${p.protocol} is already mapped by portmap${who ? ` for ${who[2]!.slice(0, 12)} on network ${who[1]}` : ''}`);
  }
}

function tryBind(p: PublishedPort): Promise<NodeJS.ErrnoException | undefined> {
  const host = p.hostIP || '0.0.0.0';
  return new Promise((resolve) => {
    if (p.protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (e) => { s.close(); resolve(e as NodeJS.ErrnoException); });
      s.bind({ port: p.hostPort, address: host, exclusive: true }, () => s.close(() => resolve(undefined)));
      return;
    }
    const srv = createServer();
    srv.once('error', (e) => resolve(e as NodeJS.ErrnoException));
    srv.listen({ port: p.hostPort, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

/** "pid 123 (nc)" for the socket bound to this port, when /proc tells. */
export function portHolder(port: number, protocol: 'tcp' | 'udp'): string | undefined {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = f[1]!;
      const state = f[3]!;
      // 0A is TCP_LISTEN; a UDP socket that is bound shows 07 (TCP_CLOSE in the shared table).
      if (protocol === 'tcp' && state !== '0A') continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try { pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return undefined; }
  for (const pid of pids) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link: string;
      try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        let comm = '?';
        try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone */ }
        return `pid ${pid} (${comm})`;
      }
    }
  }
  return 'another process';
}
