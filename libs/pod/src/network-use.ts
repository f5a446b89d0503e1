/**
 * Who uses a CNI network, and what is left of it on the host once nobody
 * does. A network is used by the pods attached to it (a container run with
 * `--network NAME` has a pod of its own); pods of another run root, or
 * another engine's containers, are not in this run root's records, but
 * their veths hang off the network's bridge, which the kernel lists in
 * /sys/class/net/BRIDGE/brif. The bridge plugin makes the bridge at the
 * first attachment and never removes it, so `network rm` does, once no
 * interface is attached (podman does the same for its cni-podmanN).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import type { StoredNetwork } from '@berth/cni';
import { listPods, type PodEnv, type PodInspect } from './pod.ts';

/** The pods of this run root attached to the network (a `run --network NAME` container's own pod included). */
export async function podsOnNetwork(networkName: string, env: PodEnv = {}): Promise<PodInspect[]> {
  return (await listPods(env)).filter((p) => p.networkName === networkName);
}

/** The interfaces attached to a bridge (veths of pods and containers, whoever made them); none when it does not exist. */
export function bridgePorts(bridge: string | undefined): string[] {
  if (bridge === undefined || !/^[\w.-]{1,15}$/.test(bridge)) return [];
  try { return readdirSync(join('/sys/class/net', bridge, 'brif')).sort(); } catch { return []; }
}

/**
 * What `network rm` leaves of a network whose file is gone: its bridge
 * device (deleted when it exists, is a bridge, has nothing attached and no
 * remaining network names it) and host-local's lease directory (removed when
 * it holds no lease, only host-local's `lock` and `last_reserved_ip.*`).
 * Returns what was not removed and why, for a warning.
 */
export function releaseNetwork(n: StoredNetwork, remaining: StoredNetwork[]): string[] {
  const kept: string[] = [];
  const br = n.bridge;
  if (br !== undefined && existsSync(join('/sys/class/net', br, 'bridge')) && !remaining.some((o) => o.bridge === br)) {
    const ports = bridgePorts(br);
    if (ports.length > 0) {
      kept.push(`bridge ${br} kept: ${ports.join(', ')} still attached (a pod of another run root or another engine)`);
    } else {
      const r = spawnSync('ip', ['link', 'delete', 'dev', br], { encoding: 'utf8' });
      if (r.error) throw new BerthError('E_NETWORK_RM', `ip link delete dev ${br}: ${r.error.message} (install iproute2)`);
      if (r.status !== 0 && existsSync(join('/sys/class/net', br))) kept.push(`bridge ${br} kept: ip link delete: ${r.stderr.trim()}`);
    }
  }
  if (n.leaseDir !== undefined && !remaining.some((o) => o.leaseDir === n.leaseDir)) {
    let entries: string[] | undefined;
    try { entries = readdirSync(n.leaseDir); } catch { entries = undefined; }
    if (entries !== undefined) {
      const leases = entries.filter((e) => e !== 'lock' && !e.startsWith('last_reserved_ip'));
      if (leases.length > 0) {
        kept.push(`leases in ${n.leaseDir} kept: ${leases.join(', ')} still leased`);
      } else {
        for (const e of entries) unlinkSync(join(n.leaseDir, e));
        rmdirSync(n.leaseDir);
      }
    }
  }
  return kept;
}
