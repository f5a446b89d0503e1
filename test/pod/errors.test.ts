import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { runTool, runToolAsync } from '../helpers/run.ts';
import { PodWorld, unique } from './fixtures.ts';

/**
 * What a user gets wrong, and what berth-pod says: every case exits non-zero
 * with a message naming the problem and leaves no pod, mount or network
 * attachment behind. Also membership: rm refuses a pod whose container runs.
 */

const world = new PodWorld();

beforeAll(async () => { await world.init(); }, 60_000);
afterAll(() => world.cleanup(), 60_000);

function expectNothingLeft(): void {
  expect(world.podIds()).toEqual([]);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(join(world.runRoot, 'pods'));
}

describe('berth-pod create refuses bad input and leaves nothing behind', () => {
  test('a missing CNI plugin directory names the plugin and the Debian package', () => {
    const r = world.pod(['create', '--name', unique('noplug'), '--cni-plugin-dir', '/nonexistent-cni-dir']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/CNI plugin "bridge" not found in \/nonexistent-cni-dir: install the Debian package containernetworking-plugins/);
    expectNothingLeft();
  });

  test.each([
    ['8o:80', /host port "8o" is not a port number/],
    ['80', /expected \[HOSTIP:\]HOSTPORT:PORT\[\/tcp\|udp\]/],
    ['70000:80', /host port 70000 is out of range/],
    ['8080:80/sctp', /unknown protocol "sctp"/],
    ['localhost:8080:80', /host address "localhost" is not an IPv4 address/],
    [':80', /the host port is missing/],
    ['8000-8001:80-81', /port ranges are not supported/],
  ])('--publish %s is a usage error (exit 2)', (spec, message) => {
    const r = world.pod(['create', '--name', unique('badport'), '--publish', spec]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(`--publish ${spec}`);
    expectNothingLeft();
  });

  test('a host port in use names the port and the process holding it', async () => {
    const port = await freePort();
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      for (const spec of [`127.0.0.1:${port}:80`, `${port}:80`]) {
        const r = world.pod(['create', '--name', unique('busy'), '--publish', spec]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`host port ${port}/tcp is already in use by pid ${process.pid} (`);
        expectNothingLeft();
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a host port another pod maps (under another run root, no socket bound) is refused too', async () => {
    const port = await freePort();
    const first = world.createPod(['--name', unique('mapper'), '--publish', `127.0.0.1:${port}:80`]);
    const otherRoot = join(world.tmp.path, 'other-run');
    const r = runTool('berth-pod', ['create', '--run-root', otherRoot, '--name', unique('late'), '--publish', `${port}:80`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`host port ${port}/tcp is already mapped by portmap for ${first.id.slice(0, 12)} on network berth`);
    expect(existsSync(join(otherRoot, 'pods')) ? readdirSync(join(otherRoot, 'pods')).filter((d) => !d.startsWith('.')) : []).toEqual([]);
    expect(world.pod(['rm', first.name]).code).toBe(0);
  });

  test('a duplicate pod name is refused; the first pod stays', () => {
    const name = unique('dup');
    const first = world.createPod(['--name', name, '--network', 'none']);
    const r = world.pod(['create', '--name', name, '--network', 'none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`a pod named ${name} already exists`);
    expect(world.podIds()).toEqual([first.id]);
    expect(world.pod(['rm', name]).code).toBe(0);
    expectNothingLeft();
  });

  test('concurrent creates with one name: the lock lets exactly one through', async () => {
    const name = unique('race');
    const results = await Promise.all([0, 1, 2].map(() => runToolAsync('berth-pod', ['create', '--run-root', world.runRoot, '--name', name, '--network', 'none'])));
    expect(results.map((r) => r.code).sort()).toEqual([0, 1, 1]);
    for (const r of results.filter((x) => x.code === 1)) expect(r.stderr).toContain(`a pod named ${name} already exists`);
    expect(world.podIds()).toHaveLength(1);
    expect(world.pod(['rm', name]).code).toBe(0);
    expectNothingLeft();
  });

  test('a plugin failing part-way through ADD: its CNI error is shown, and DEL undoes the plugins that ran', () => {
    const confDir = join(world.tmp.path, 'net.d');
    mkdirSync(confDir, { recursive: true });
    const netName = unique('broken');
    const bridge = `bt${process.pid.toString(36)}`.slice(0, 15);
    writeFileSync(join(confDir, `${netName}.conflist`), JSON.stringify({
      cniVersion: '1.0.0',
      name: netName,
      plugins: [
        // Its own bridge and subnet, so its addresses never collide with the default network's pods.
        { type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: '10.89.251.0/24', gateway: '10.89.251.1' }]] } },
        // portmap's snat is a boolean: the plugin fails to decode its config, after bridge made the veth.
        { type: 'portmap', capabilities: { portMappings: true }, snat: 'yes' },
      ],
    }));
    const r = world.pod(['create', '--name', unique('half'), '--network', netName, '--cni-config-dir', confDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`CNI plugin portmap ADD on network ${netName}: failed to parse config: .*snat.* \\(CNI error code 999\\)`));
    expectNothingLeft();
    expect(execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' })).not.toContain(`name: \\"${netName}\\"`);
    // host-local reserved an address for the ADD (last_reserved_ip shows it) and DEL released it again.
    const ipamDir = `/var/lib/cni/networks/${netName}`;
    try {
      const files = readdirSync(ipamDir);
      expect(files.some((f) => f.startsWith('last_reserved_ip'))).toBe(true);
      expect(files.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
    } finally {
      rmSync(ipamDir, { recursive: true, force: true });
      // Bridges outlive DEL by design (shared by every attachment); this one was the test's own.
      execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    }
  });

  test('an unknown network name says where it looked', () => {
    const r = world.pod(['create', '--name', unique('nonet'), '--network', 'nosuchnet', '--cni-config-dir', world.tmp.path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no network named "nosuchnet"`);
    expectNothingLeft();
  });
});

describe('membership: rm and list know the pod\'s containers', () => {
  // runc's state.json says init_process_pid/init_process_start, berth-runtime's pid/pidStartTime: both are read.
  test.each(['runc', 'berth-runtime'] as const)('rm refuses a pod with a running container; list shows it; rm --force kills it and removes the pod (%s)', (runtime) => {
    const pod = world.createPod(['--name', unique('busy'), '--network', 'none']);
    const id = world.start(pod, ['sleep', '300'], [], runtime);
    const pid = world.containerPid(id, runtime);
    const joined = world.pod(['join', pod.name, id, '--runtime-root', world.runtimeRoot(runtime)]);
    expect(joined.code).toBe(0);

    const table = world.pod(['list']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^POD ID\s+NAME\s+STATUS\s+INFRA ID\s+# OF CONTAINERS$/);
    const row = lines.find((l) => l.startsWith(pod.id.slice(0, 12)));
    expect(row).toMatch(new RegExp(`^${pod.id.slice(0, 12)}\\s+${pod.name}\\s+Running\\s+1$`));

    const refused = world.pod(['rm', pod.name]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`pod ${pod.name} has 1 running container(s) (${id}): stop them first or use --force`);
    expect(world.podIds()).toEqual([pod.id]);

    const forced = world.pod(['rm', '--force', pod.id.slice(0, 12)]);
    expect(forced.code).toBe(0);
    expect(forced.json.removed).toEqual([{ name: pod.name, id: pod.id }]);
    let state = '';
    try { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); state = s.slice(s.lastIndexOf(')') + 2)[0]!; } catch { state = 'gone'; }
    expect(['gone', 'Z']).toContain(state);
    expectNothingLeft();
  });

  test('inspect and rm of an unknown pod fail with "no such pod"', () => {
    for (const verb of ['inspect', 'rm', 'ports']) {
      const r = world.pod([verb, 'no-such-pod']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no such pod: no-such-pod');
    }
  });
});
