import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { etcFiles } from '../../tools/bundle-generator/src/spec.ts';
import { readSpec } from '../bundle/fixtures.ts';
import { PodWorld, unique } from './fixtures.ts';

/**
 * berth-bundle --pod: the container's /etc/hosts, /etc/hostname and
 * /etc/resolv.conf come from the pod document (bind-mounted from the bundle,
 * as podman does), and the bundle joins every namespace the pod names.
 */

const world = new PodWorld();
beforeAll(async () => { await world.init(); }, 60_000);
afterAll(() => world.cleanup());

describe('/etc files of a pod member', () => {
  test('hosts names the hostname at the pod address; resolv.conf takes the network\'s DNS', () => {
    const f = etcFiles('web', { hostNetwork: false, podIp: '10.89.0.9', dns: { nameservers: ['10.89.0.1'], search: ['pod.internal'], options: ['ndots:1'] }, hostResolv: 'nameserver 192.0.2.53\n' });
    expect(f.hosts).toBe('127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.9\tweb\n');
    expect(f.resolvConf).toBe('search pod.internal\nnameserver 10.89.0.1\noptions ndots:1\n');
    expect(f.hostname).toBe('web\n');
  });

  test('without DNS from the network, the host\'s resolv.conf minus loopback nameservers', () => {
    const f = etcFiles('web', { hostNetwork: false, podIp: '10.89.0.9', hostResolv: 'search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n' });
    expect(f.resolvConf).toBe('search example.org\nnameserver 192.0.2.53\n');
  });
});

describe('berth-bundle --pod with a pod from berth-pod create', () => {
  test('the bundle joins the pod\'s net, ipc, uts and pid namespaces and writes its /etc files', () => {
    const pod = world.createPod(['--name', unique('bp'), '--hostname', 'member-host', '--share', 'net,ipc,uts,pid']);
    const { bundle } = world.bundle(pod, ['true']);
    const spec = readSpec(bundle);
    const ns = Object.fromEntries((spec.linux?.namespaces ?? []).map((n) => [n.type, n.path]));
    expect(ns).toMatchObject({ network: pod.namespaces.network, ipc: pod.namespaces.ipc, uts: pod.namespaces.uts, pid: pod.namespaces.pid });
    // The runtime must not sethostname in the pod's UTS namespace.
    expect(spec.hostname).toBeUndefined();
    expect(readFileSync(join(bundle, 'hosts'), 'utf8')).toContain(`${pod.ip}\tmember-host\n`);
    expect(readFileSync(join(bundle, 'hostname'), 'utf8')).toBe('member-host\n');
    expect(readFileSync(join(bundle, 'resolv.conf'), 'utf8')).not.toMatch(/nameserver 127\./);
    for (const f of ['hosts', 'hostname', 'resolv.conf']) {
      expect(spec.mounts).toContainEqual(expect.objectContaining({ destination: `/etc/${f}`, type: 'bind', source: join(bundle, f) }));
    }
  });

  test('a pod with --network host: no network namespace, the host\'s /etc/hosts', () => {
    const pod = world.createPod(['--name', unique('hostnet'), '--network', 'host']);
    expect(pod.namespaces.network).toBeUndefined();
    expect(pod.ip).toBeNull();
    const { bundle } = world.bundle(pod, ['true']);
    const spec = readSpec(bundle);
    expect((spec.linux?.namespaces ?? []).map((n) => n.type)).not.toContain('network');
    expect(readFileSync(join(bundle, 'hosts'), 'utf8').startsWith(readFileSync('/etc/hosts', 'utf8'))).toBe(true);
  });
});
