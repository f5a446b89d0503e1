/**
 * IPv4 subnets for user networks: CIDR text in and out, overlap, the
 * host's routes (/proc/net/route), and the pick of a free /24 when
 * `berth network create` is given no --subnet. A bridge network takes
 * over its subnet on the host (the bridge gets the gateway address and a
 * connected route), so a subnet must not overlap another network's or any
 * route the host already has, or traffic to those addresses would be
 * captured by the bridge.
 */
import { readFileSync } from 'node:fs';
import { BerthUsageError } from '@berth/cli-kit';

/** An IPv4 network: its address as an unsigned 32-bit number and its prefix length. */
export interface Ipv4Net {
  base: number;
  bits: number;
}

/** A non-default route of this host (the default route overlaps everything and takes nothing). */
export interface HostRoute {
  device: string;
  net: Ipv4Net;
}

/** Dotted quad to number, or undefined when it is not one (no leading zeros: 010 is not 8 nor 10). */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

export function netmask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The last address of a network (its broadcast address). */
export function lastAddress(net: Ipv4Net): number {
  return (net.base | (~netmask(net.bits) >>> 0)) >>> 0;
}

/**
 * `A.B.C.D/N` to a network. Host bits are cleared, as podman does
 * (10.99.10.5/24 is 10.99.10.0/24). `flag` names the option in the error.
 */
export function parseCidr(text: string, flag: string): Ipv4Net {
  if (text.includes(':')) throw new BerthUsageError(`${flag} ${text}: berth networks are IPv4 only (no IPv6 subnets yet)`);
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const ip = m ? parseIpv4(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(bits >= 0 && bits <= 32)) throw new BerthUsageError(`${flag} ${text}: not an IPv4 CIDR such as 10.89.5.0/24`);
  return { base: (ip & netmask(bits)) >>> 0, bits };
}

export function formatCidr(net: Ipv4Net): string {
  return `${formatIpv4(net.base)}/${net.bits}`;
}

export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  const common = netmask(Math.min(a.bits, b.bits));
  return ((a.base & common) >>> 0) === ((b.base & common) >>> 0);
}

export function contains(net: Ipv4Net, ip: number): boolean {
  return ((ip & netmask(net.bits)) >>> 0) === net.base;
}

function leHex(hex: string): number {
  const n = parseInt(hex, 16);
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

/**
 * The host's IPv4 routes other than default routes, from /proc/net/route
 * (destination and mask as little-endian hex). Every address the host has
 * on an interface brings its connected route, so this covers them too.
 */
export function hostRoutes(routeTable?: string): HostRoute[] {
  let text: string;
  try { text = routeTable ?? readFileSync('/proc/net/route', 'utf8'); } catch { return []; }
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const mask = leHex(f[7]!);
    if (mask === 0) continue;
    // The leading ones of the mask are the leading zeros of its complement (32 for a host route).
    const bits = Math.clz32(~mask >>> 0);
    out.push({ device: f[0]!, net: { base: (leHex(f[1]!) & mask) >>> 0, bits } });
  }
  return out;
}

/** Where auto-picked subnets come from: 10.89.N.0/24, as podman's CNI backend picks 10.89.N.0/24 after its default. */
export const AUTO_SUBNET_POOL: Ipv4Net = { base: parseIpv4('10.89.0.0')!, bits: 16 };

/**
 * The first 10.89.N.0/24 (N from 1) that overlaps nothing in `taken`
 * (other networks' subnets, the host's routes). 10.89.0.0/24 is the default
 * network's and is expected in `taken`.
 */
export function pickFreeSubnet(taken: Ipv4Net[]): Ipv4Net | undefined {
  for (let n = 1; n < 256; n++) {
    const candidate: Ipv4Net = { base: (AUTO_SUBNET_POOL.base | (n << 8)) >>> 0, bits: 24 };
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  return undefined;
}
