/**
 * The default network's subnet must not already be routed elsewhere on this
 * host: the bridge would take over those addresses. /proc/net/route lists
 * the IPv4 routes with destination and mask as little-endian hex.
 */
import { readFileSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { DEFAULT_BRIDGE, DEFAULT_SUBNET } from '@berth/cni';

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

function leHex(hex: string): number {
  const n = parseInt(hex, 16);
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

export function checkSubnetFree(subnet = DEFAULT_SUBNET, bridge = DEFAULT_BRIDGE, routeTable?: string): void {
  const [base, bits] = subnet.split('/') as [string, string];
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  const net = ipToInt(base) & mask;
  let text: string;
  try { text = routeTable ?? readFileSync('/proc/net/route', 'utf8'); } catch { return; }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[0] === bridge) continue;
    const rmask = leHex(f[7]!);
    if (rmask === 0) continue; // the default route overlaps everything and takes nothing
    const rnet = leHex(f[1]!) & rmask;
    const common = (mask & rmask) >>> 0;
    if ((net & common) === (rnet & common)) {
      throw new BerthError('E_SUBNET', `the default pod network ${subnet} overlaps a route of this host on ${f[0]}: define your own network (a *.conflist with another subnet) and use --network NAME`);
    }
  }
}
