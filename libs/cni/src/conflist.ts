/**
 * Network configuration lists: parsing, the default network berth ships, and
 * lookup of a user's network by name in a directory of *.conflist files (as
 * libcni's ConfFiles does with /etc/cni/net.d).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, OBJECT_NAME_RE } from '@berth/cli-kit';
import type { NetworkConfigList, PluginConfig } from './types.ts';

/** The name of the network berth ships and `--network bridge` selects. */
export const DEFAULT_NETWORK_NAME = 'berth';
export const DEFAULT_BRIDGE = 'berth0';
/**
 * A private subnet next to podman's 10.88.0.0/16, so both engines can run on
 * one host without sharing a bridge or an address pool.
 */
export const DEFAULT_SUBNET = '10.89.0.0/24';
export const DEFAULT_GATEWAY = '10.89.0.1';
/**
 * host-local's address leases for the default network. On tmpfs (/run), like
 * the pods' namespaces: after a reboot no pod exists, and no lease should
 * outlive it (under /var/lib/cni they would pile up until the subnet is full).
 * Host-wide, not per run root, because the bridge and subnet are host-wide.
 */
export const DEFAULT_IPAM_DIR = '/run/berth/cni/networks';
/** Where a user drops extra networks (one NAME.conflist per network). */
export const DEFAULT_CONFIG_DIR = '/etc/berth/cni/net.d';

/**
 * The default network: a Linux bridge with the gateway address on the host,
 * masquerade for traffic leaving the subnet, addresses from host-local IPAM,
 * published ports through portmap (snat so 127.0.0.1 works: the plugin sets
 * route_localnet on the bridge and marks loopback-sourced traffic for
 * masquerade) and the firewall plugin so FORWARD lets the pod's traffic pass.
 */
export function defaultConfList(): NetworkConfigList {
  return {
    cniVersion: '1.0.0',
    name: DEFAULT_NETWORK_NAME,
    plugins: [
      {
        type: 'bridge',
        bridge: DEFAULT_BRIDGE,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: DEFAULT_IPAM_DIR,
          routes: [{ dst: '0.0.0.0/0' }],
          ranges: [[{ subnet: DEFAULT_SUBNET, gateway: DEFAULT_GATEWAY }]],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
    ],
    source: 'berth default network',
  };
}


/** Check a conflist document against the spec's required fields. */
export function parseConfList(text: string, source: string): NetworkConfigList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BerthError('E_CNI_CONFIG', `network config ${source}: not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => { throw new BerthError('E_CNI_CONFIG', `network config ${source}: ${what}`); };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('not a JSON object');
  const d = doc as Record<string, unknown>;
  if (typeof d.cniVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(d.cniVersion)) bad('"cniVersion" must be a version string like "1.0.0"');
  if (typeof d.name !== 'string' || !OBJECT_NAME_RE.test(d.name)) bad('"name" must be letters, digits, "_", "." or "-"');
  if ('type' in d && !('plugins' in d)) bad('a single-plugin .conf is not a list: wrap it as {"cniVersion","name","plugins":[...]}');
  if (!Array.isArray(d.plugins) || d.plugins.length === 0) bad('"plugins" must be a non-empty array');
  (d.plugins as unknown[]).forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as PluginConfig).type !== 'string' || !/^[\w.-]+$/.test((p as PluginConfig).type)) {
      bad(`plugins[${i}] needs a "type" naming a plugin binary`);
    }
  });
  if (d.disableCheck !== undefined && typeof d.disableCheck !== 'boolean') bad('"disableCheck" must be a boolean');
  return { cniVersion: d.cniVersion as string, name: d.name as string, disableCheck: d.disableCheck as boolean | undefined, plugins: d.plugins as PluginConfig[], source };
}

export function loadConfList(path: string): NetworkConfigList {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BerthError('E_CNI_CONFIG', `read network config ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfList(text, path);
}

/**
 * Find a network by name: the default one, else the *.conflist in `dirs`
 * whose "name" matches (files in lexical order, first match wins, as libcni).
 */
export function findNetwork(name: string, dirs: string[] = [DEFAULT_CONFIG_DIR]): NetworkConfigList {
  for (const dir of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.conflist')).sort();
    } catch {
      continue;
    }
    for (const f of files) {
      const list = loadConfList(join(dir, f));
      if (list.name === name) return list;
    }
  }
  if (name === DEFAULT_NETWORK_NAME) return defaultConfList();
  throw new BerthError('E_NO_NETWORK', `no network named "${name}": not the default (${DEFAULT_NETWORK_NAME}) and no *.conflist with that name in ${dirs.join(', ')}`);
}
