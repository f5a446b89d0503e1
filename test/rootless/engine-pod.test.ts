import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { berthAs, makeUser, type TestUser } from './users.ts';

// The guide's pod walkthrough as an ordinary user (issue 12): `berth pod
// create --network none`, containers joined with `berth run --pod`, talking
// over the pod's loopback, and `berth pod rm -f` taking the pod's holder with it.

/** A process that still runs (a zombie waiting for its reaper runs nothing and holds no namespace). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('rootless berth: pods through the front', () => {
  const suffix = process.pid.toString(36);
  let user: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-engine-pod-');
  const podName = `web_${suffix}`;
  let ref = '';

  beforeAll(async () => {
    user = makeUser(`brp${suffix}`, { start: 800000, count: 65536 });
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/pod:1');
    const pull = berthAs(user, ['pull', '--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (user) {
      berthAs(user, ['pod', 'rm', '-f', podName]);
      berthAs(user, ['rm', '-f', '-a']);
      rmSync(`/tmp/berth-run-${user.uid}`, { recursive: true, force: true });
      user.remove();
    }
    await registry?.stop();
    work.cleanup();
  }, 60_000);

  it('a pod without --network (slirp4netns) is refused for a user who cannot open /dev/net/tun, with the setfacl that would allow it; nothing is made', () => {
    const r = berthAs(user, ['pod', 'create', '--name', `bridge_${suffix}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('--network none or --network host');
    expect(r.stderr).toContain(`setfacl -m u:${user.name}:rw /dev/net/tun`);
    expect(berthAs(user, ['pod', 'list', '-q']).stdout.trim()).toBe('');
  });

  it('pod create --network none, a server and a client in it: loopback and hostname are shared; pod rm -f leaves no holder', () => {
    const create = berthAs(user, ['pod', 'create', '--name', podName, '--network', 'none']);
    expect(create.code, create.stderr).toBe(0);
    const podId = create.stdout.trim();
    expect(podId).toMatch(/^[0-9a-f]{64}$/);
    const inspect = berthAs(user, ['pod', 'inspect', podName]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const namespaces = (JSON.parse(inspect.stdout) as { Namespaces: Record<string, string> }).Namespaces;
    const holder = Number(/^\/proc\/(\d+)\/ns\/user$/.exec(namespaces.user ?? '')?.[1]);
    expect(holder).toBeGreaterThan(0);
    expect(running(holder)).toBe(true);

    const server = berthAs(user, ['run', '-d', '--pod', podName, '--name', `srv_${suffix}`, ref, 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/etc']);
    expect(server.code, server.stderr).toBe(0);
    // The client polls a bounded number of times: httpd may not listen yet when the client starts.
    const client = berthAs(user, ['run', '--rm', '--pod', podName, ref, 'sh', '-c',
      'hostname; for i in $(seq 1 25); do if wget -qO- http://127.0.0.1:8080/hostname; then exit 0; fi; sleep 0.2; done; exit 1']);
    expect(client.code, client.stderr).toBe(0);
    // The client's own hostname, then the server's /etc/hostname: the pod's UTS namespace for both.
    expect(client.stdout.split('\n').filter((l) => l !== '')).toEqual([podName, podName]);
    const serverHostname = berthAs(user, ['exec', `srv_${suffix}`, 'hostname']);
    expect(serverHostname.stdout.trim()).toBe(podName);

    const list = berthAs(user, ['pod', 'list']);
    expect(list.stdout).toMatch(new RegExp(`${podId.slice(0, 12)}\\s+${podName}\\s+Running`));
    const refused = berthAs(user, ['pod', 'rm', podName]);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain(`srv_${suffix} running`);

    const rm = berthAs(user, ['pod', 'rm', '-f', podName]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout.trim()).toBe(podId);
    expect(berthAs(user, ['pod', 'list', '-q']).stdout.trim()).toBe('');
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(running(holder)).toBe(false);
    expect(existsSync(join(`/tmp/berth-run-${user.uid}`, 'berth', 'pods', podId))).toBe(false);
  }, 120_000);

  it('run --pod of a pod whose holder died is refused before any work, naming pod rm; pod rm removes it', async () => {
    const name = `dead_${suffix}`;
    expect(berthAs(user, ['pod', 'create', '--name', name, '--network', 'none']).code).toBe(0);
    const namespaces = (JSON.parse(berthAs(user, ['pod', 'inspect', name]).stdout) as { Namespaces: Record<string, string> }).Namespaces;
    const holder = Number(/^\/proc\/(\d+)\//.exec(namespaces.user ?? '')?.[1]);
    process.kill(holder, 'SIGKILL');
    for (let i = 0; i < 100 && running(holder); i++) await new Promise((res) => setTimeout(res, 50));
    const r = berthAs(user, ['run', '--rm', '--pod', name, ref, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`--pod ${name}: the process holding the pod's namespaces is gone`);
    expect(r.stderr).toContain(`berth pod rm ${name}`);
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(berthAs(user, ['pod', 'rm', name]).code).toBe(0);
    expect(berthAs(user, ['pod', 'list', '-q']).stdout.trim()).toBe('');
  }, 60_000);

  it('run --pod of a pod that does not exist fails before any work, naming it', () => {
    const r = berthAs(user, ['run', '--rm', '--pod', `nope_${suffix}`, ref, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`--pod nope_${suffix}: no pod with name or ID nope_${suffix} found`);
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
  });
});
