import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { hostVeth, PodWorld, unique } from './fixtures.ts';
import { liveProcess } from '../helpers/proc.ts';

/**
 * Pods end to end, as root: berth-pod creates the pod (namespaces + CNI
 * bridge network + portmap), berth-bundle --pod makes bundles that join it,
 * runc runs them. Traffic goes to 127.0.0.1 inside the pods, to the pods'
 * own addresses, and to 127.0.0.1:HOSTPORT on the host; every wait is a
 * bounded loop.
 */

const world = new PodWorld();

beforeAll(async () => { await world.init(); }, 60_000);
afterAll(() => world.cleanup(), 60_000);

/** A server on 127.0.0.1:8080 in the pod: httpd serving a page that names the server's hostname. */
const server = (bind: string) => ['sh', '-c', `echo "page from $(hostname)" > /www/index.html && exec httpd -f -p ${bind}:8080 -h /www`];
/**
 * A client retrying for at most ~5 s, so a slow server start does not fail the test.
 * (No wget -T: Debian's busybox-static wget segfaults with it.)
 */
const fetchLoop = (url: string, tries = 50) => `ok=1; for i in $(seq 1 ${tries}); do if wget -q -O - ${url}; then ok=0; break; fi; sleep 0.1; done; [ $ok = 0 ]`;


function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('containers in a pod', () => {
  test.each(['runc', 'berth-runtime'] as const)('two containers share 127.0.0.1 and the hostname; /etc/hosts names the pod address (%s)', (runtime) => {
    const hostname = unique('podhost');
    const pod = world.createPod(['--name', unique('pair'), '--hostname', hostname]);
    expect(pod).toMatchObject({ kind: 'pod', hostname, namespaces: { network: expect.any(String), ipc: expect.any(String), uts: expect.any(String) } });
    expect(pod.id).toMatch(/^[0-9a-f]{64}$/);
    expect(pod.ip).toMatch(/^10\.89\.0\.\d+$/);

    world.start(pod, server('127.0.0.1'), ['--tmpfs', '/www'], runtime);
    const client = world.run(pod, ['sh', '-c', `${fetchLoop('http://127.0.0.1:8080/')} && hostname && cat /etc/hostname /etc/hosts`], [], runtime);
    expect(client.code, client.out).toBe(0);
    const lines = client.out.split('\n');
    // The page was written by the server container with its hostname: same UTS namespace, same name.
    expect(lines[0]).toBe(`page from ${hostname}`);
    expect(lines[1]).toBe(hostname);
    expect(lines[2]).toBe(hostname);
    expect(client.out).toContain(`${pod.ip}\t${hostname}\n`);
    expect(client.out).toContain('127.0.0.1\tlocalhost');
  });

  test('a published port: the host fetches the page from 127.0.0.1:HOSTPORT', async () => {
    const port = await freePort();
    const pod = world.createPod(['--name', unique('web'), '--publish', `127.0.0.1:${port}:8080`]);
    expect(pod.ports).toEqual([{ hostIP: '127.0.0.1', hostPort: port, containerPort: 8080, protocol: 'tcp' }]);
    world.start(pod, server('0.0.0.0'), ['--tmpfs', '/www']);
    let res: { status: number; body: string } | undefined;
    for (let i = 0; i < 50 && !res; i++) {
      try { res = await httpGet(`http://127.0.0.1:${port}/`); } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    expect(res).toEqual({ status: 200, body: `page from ${pod.hostname}\n` });
    // 127.0.0.1 -> pod works because portmap (snat) lets the bridge route loopback-sourced traffic.
    expect(readFileSync('/proc/sys/net/ipv4/conf/berth0/route_localnet', 'utf8')).toBe('1\n');
    const ports = world.pod(['ports', pod.name]);
    expect(ports.code).toBe(0);
    expect(ports.json.ports[0].text).toBe(`8080/tcp -> 127.0.0.1:${port}`);
  }, 30_000);

  test('two pods are isolated: 127.0.0.1 of one is not reachable from the other, and each sees its own address', () => {
    const a = world.createPod(['--name', unique('iso-a')]);
    const b = world.createPod(['--name', unique('iso-b')]);
    expect(a.ip).not.toBe(b.ip);
    world.start(a, server('127.0.0.1'), ['--tmpfs', '/www']);
    const inA = world.run(a, ['sh', '-c', `${fetchLoop('http://127.0.0.1:8080/')} && ip -4 -o addr show eth0`]);
    expect(inA.code, inA.out).toBe(0);
    expect(inA.out).toContain(`inet ${a.ip}/24`);
    const inB = world.run(b, ['sh', '-c', `wget -q -O - http://127.0.0.1:8080/; echo "wget=$?"; ip -4 -o addr show eth0`]);
    expect(inB.out).toMatch(/wget=[1-9]/);
    expect(inB.out).not.toContain('page from');
    expect(inB.out).toContain(`inet ${b.ip}/24`);
    expect(inB.out).not.toContain(`inet ${a.ip}/`);
  });

  test('the guide\'s pod name wp_pod, underscore and all, is the pod\'s hostname, as in podman', () => {
    const name = `wp_pod_${unique('g').replace(/-/g, '_')}`.slice(0, 60);
    const pod = world.createPod(['--name', name, '--network', 'none']);
    expect(pod.hostname).toBe(name);
    const r = world.run(pod, ['hostname']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toBe(name);
  });

  test('--share pid: the pod\'s containers see each other\'s processes under one catatonit', () => {
    const pod = world.createPod(['--name', unique('pidpod'), '--share', 'net,ipc,uts,pid', '--network', 'none']);
    expect(pod.namespaces.pid).toBeDefined();
    expect(pod.ip).toBeNull();
    world.start(pod, ['sleep', '300']);
    const r = world.run(pod, ['ps', '-o', 'pid,comm']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^\s*1\s+catatonit$/m);
    expect(r.out).toMatch(/\ssleep$/m);
  });
});

describe('a user network', () => {
  test('--network NAME with --cni-config-dir attaches the pod to the user\'s conflist', () => {
    const dir = join(world.tmp.path, 'user-net.d');
    mkdirSync(dir, { recursive: true });
    const name = unique('usernet');
    const bridge = `bu${process.pid.toString(36)}`.slice(0, 15);
    writeFileSync(join(dir, `50-${name}.conflist`), JSON.stringify({
      cniVersion: '1.0.0',
      name,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: '10.89.252.0/24', gateway: '10.89.252.1' }]] } },
        { type: 'firewall' },
      ],
    }));
    try {
      const pod = world.createPod(['--name', unique('onuser'), '--network', name, '--cni-config-dir', dir]);
      expect(pod.ip).toMatch(/^10\.89\.252\.\d+$/);
      expect(pod).toMatchObject({ network: name, networkName: name });
      const r = world.run(pod, ['ip', '-4', '-o', 'route']);
      expect(r.out).toContain('default via 10.89.252.1 dev eth0');
      expect(existsSync(`/var/lib/cni/networks/${name}/${pod.ip}`)).toBe(true);
      expect(world.pod(['rm', pod.name]).code).toBe(0);
      expect(readdirSync(`/var/lib/cni/networks/${name}`).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
    } finally {
      rmSync(`/var/lib/cni/networks/${name}`, { recursive: true, force: true });
      execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    }
  });
});

describe('CNI CHECK', () => {
  test('check passes on an intact pod, names the firewall plugin once its rule is gone, and rm still cleans up', () => {
    // No --publish: Debian's portmap 1.1.1 fails CHECK on IPv4-only attachments (containernetworking/plugins#819).
    const pod = world.createPod(['--name', unique('checked')]);
    const ok = world.pod(['check', pod.name]);
    expect(ok.stderr).toBe('');
    expect(ok.json).toEqual({ kind: 'podCheck', name: pod.name, id: pod.id, network: 'berth' });
    // Break what the firewall plugin added (not the veth: bridge 1.1.1's DEL needs eth0 to find the masquerade rule).
    execFileSync('iptables', ['-D', 'CNI-FORWARD', '-s', `${pod.ip}/32`, '-j', 'ACCEPT']);
    const broken = world.pod(['check', pod.name]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`CNI plugin firewall CHECK on network berth: expected rule [-s ${pod.ip}/32 -j ACCEPT] not found (CNI error code 999)`);
    expect(world.pod(['rm', pod.name]).code).toBe(0);
    expect(existsSync(join(world.runRoot, 'pods', pod.id))).toBe(false);
    expect(execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' })).not.toContain(pod.id);
    expect(execFileSync('iptables', ['-S'], { encoding: 'utf8' })).not.toContain(`${pod.ip}/32`);
  });
});

describe('rm leaves nothing behind', () => {
  test('after rm, ip link, the nat and filter tables, the mounts and the run dir hold nothing of the pod', async () => {
    const port = await freePort();
    const pod = world.createPod(['--name', unique('gone'), '--publish', `${port}:80`, '--share', 'net,ipc,uts,pid']);
    const veth = hostVeth(world.runRoot, pod.id);
    expect(veth).toBeDefined();
    // Before: the pod is visible in each place the test looks, so the checks below can fail.
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).toContain(`${veth}@`);
    expect(execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' })).toContain(pod.id);
    expect(execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' })).toContain(`--dport ${port}`);
    const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mountinfo()).toContain(pod.id);
    const holder = world.pod(['inspect', pod.id.slice(0, 12)]).json.pidHolder.pid as number;
    expect(liveProcess(holder)).toBe(true);

    const r = world.pod(['rm', pod.name]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ kind: 'podRemoval', removed: [{ name: pod.name, id: pod.id }] });

    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(`${veth}@`);
    const nat = execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' });
    expect(nat).not.toContain(pod.id);
    expect(nat).not.toContain(`--dport ${port} `);
    expect(nat).not.toContain(`${pod.ip}/32`);
    expect(execFileSync('iptables', ['-S'], { encoding: 'utf8' })).not.toContain(`${pod.ip}/32`);
    expect(mountinfo()).not.toContain(pod.id);
    expect(existsSync(join(world.runRoot, 'pods', pod.id))).toBe(false);
    expect(liveProcess(holder)).toBe(false);
    const list = world.pod(['list', '--format', 'json']);
    expect(list.json.pods.map((p: { id: string }) => p.id)).not.toContain(pod.id);
  });
});
