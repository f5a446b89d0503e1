import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { stableHostInterfaces } from '../helpers/net.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { makeUser, runAs, type TestUser } from './users.ts';
import { liveProcess } from '../helpers/proc.ts';

// Rootless pods (issue 12): an ordinary user creates a pod with --network
// none or host. Its namespaces are held by a catatonit in a user namespace
// that maps the user's subordinate range (no bind mounts: those need root);
// containers join that user namespace by path and then the pod's network,
// IPC and UTS namespaces. This suite's user cannot open /dev/net/tun, so the
// default private network (slirp4netns, network.test.ts) is refused, naming it.


function ownerUid(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[1]);
}

interface PodJson { name: string; id: string; namespaces: Record<string, string>; network: string; status?: string; namespaceHolder?: { pid: number }; containers?: Array<{ id: string; status: string }> }

describe('rootless berth-pod', () => {
  const suffix = process.pid.toString(36);
  const range = { start: 600000, count: 65536 };
  let user: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-pod-');
  let ref = '';
  const holders: number[] = [];
  const containers: string[] = [];
  const pods: string[] = [];

  const pod = (args: string[], input?: string) => runAs(user, 'berth-pod', args, { input });

  function createPod(name: string, network: string, share?: string): PodJson {
    const r = pod(['create', '--name', name, '--network', network, ...(share ? ['--share', share] : [])]);
    expect(r.code, r.stderr).toBe(0);
    pods.push(name);
    const doc = JSON.parse(r.stdout) as PodJson;
    const inspect = JSON.parse(pod(['inspect', name]).stdout) as PodJson;
    if (inspect.namespaceHolder) holders.push(inspect.namespaceHolder.pid);
    return doc;
  }

  /** berth-store prepare + berth-bundle --pod as the user; returns the bundle directory. */
  function bundleInPod(id: string, podDoc: string, command: string[]): string {
    const prep = runAs(user, 'berth-store', ['prepare', id, '--image', ref]);
    expect(prep.code, prep.stderr).toBe(0);
    const podFile = join(work.path, `${id}.pod.json`);
    spawnSync('sh', ['-c', `printf '%s' "$1" > "$2" && chmod 644 "$2"`, 'sh', podDoc, podFile]);
    const bundle = runAs(user, 'berth-bundle', ['--name', id, '--pod', podFile, '-', '--', ...command], prep.stdout);
    expect(bundle.code, bundle.stderr).toBe(0);
    return JSON.parse(bundle.stdout).bundle as string;
  }

  beforeAll(async () => {
    user = makeUser(`brp${suffix}`, range);
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/pod:1');
    const pull = runAs(user, 'berth-pull', ['--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (user) {
      for (const id of containers) runAs(user, 'berth-runtime', ['delete', '--force', id]);
      for (const name of pods) pod(['rm', '--force', name]);
      // A holder left by a failed test would keep userdel from removing the user.
      for (const pid of holders) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      rmSync(`/tmp/berth-run-${user.uid}`, { recursive: true, force: true });
      user.remove();
    }
    await registry?.stop();
    work.cleanup();
  });

  it('without /dev/net/tun access the default network (slirp4netns) is refused naming the device, its mode, owner and the setfacl; --network bridge needs root; nothing is created', () => {
    const r = pod(['create', '--name', 'rl']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--network slirp4netns: a private network for an ordinary user is a user-mode network (slirp4netns) on /dev/net/tun');
    expect(r.stderr).toMatch(new RegExp(`user ${user.name} \\(uid ${user.uid}\\) cannot open \\(mode \\d{4}, owner root:root, uid 0, gid 0\\)`));
    expect(r.stderr).toContain(`setfacl -m u:${user.name}:rw /dev/net/tun`);
    expect(r.stderr).toContain('--network none or --network host');
    const bridge = pod(['create', '--name', 'rl', '--network', 'bridge']);
    expect(bridge.code).toBe(1);
    expect(bridge.stderr).toContain('--network bridge: a CNI network changes the host\'s network and needs root');
    expect(bridge.stderr).toContain('--network slirp4netns');
    const list = JSON.parse(pod(['list', '--format', 'json']).stdout) as { pods: PodJson[] };
    expect(list.pods).toEqual([]);
  });

  it('--network none: two containers share the hostname and 127.0.0.1, run as root with the range map; rm refuses, then --force cleans up', () => {
    const name = `web${suffix}`;
    const doc = createPod(name, 'none');
    const holder = JSON.parse(pod(['inspect', name]).stdout) as PodJson;
    const pid = holder.namespaceHolder!.pid;
    expect(doc.network).toBe('none');
    expect(Object.keys(doc.namespaces).sort()).toEqual(['ipc', 'network', 'user', 'uts']);
    expect(doc.namespaces.user).toMatch(/^\/proc\/\d+\/ns\/user$/);
    expect(liveProcess(pid)).toBe(true);
    expect(ownerUid(pid)).toBe(user.uid);
    // The holder's user namespace maps root to the user and 1.. to the range.
    const nsPid = Number(/^\/proc\/(\d+)\//.exec(doc.namespaces.user!)![1]);
    expect(readFileSync(`/proc/${nsPid}/uid_map`, 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)))
      .toEqual([[0, user.uid, 1], [1, range.start, range.count]]);
    const podDoc = JSON.stringify(doc);

    // Container 1 serves on the pod's loopback only.
    const server = `srv${suffix}`;
    const serverBundle = bundleInPod(server, podDoc, ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www']);
    const config = JSON.parse(readFileSync(join(serverBundle, 'config.json'), 'utf8'));
    expect(config.linux.namespaces[0]).toEqual({ type: 'user', path: doc.namespaces.user });
    containers.push(server);
    const create = runAs(user, 'berth-runtime', ['create', '--bundle', serverBundle, server], { detached: true });
    expect(create.code, create.stderr).toBe(0);
    expect(runAs(user, 'berth-runtime', ['start', server]).code).toBe(0);
    expect(pod(['join', name, server]).code).toBe(0);

    // Container 2 fetches it from 127.0.0.1 (bounded retries while httpd starts).
    const client = `cli${suffix}`;
    const clientBundle = bundleInPod(client, podDoc, ['sh', '-c',
      'hostname; id; cat /proc/self/uid_map; i=0; while [ $i -lt 100 ]; do if wget -q -O - http://127.0.0.1:8080/; then exit 0; fi; i=$((i+1)); sleep 0.1; done; exit 7']);
    containers.push(client);
    const r = runAs(user, 'berth-runtime', ['run', '--bundle', clientBundle, client]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    // The pod's hostname, set by the holder, seen by both: the server wrote it into index.html.
    expect(lines[0]).toBe(name);
    expect(lines.filter((l) => l === name)).toHaveLength(2);
    expect(r.stdout).toContain('uid=0(root) gid=0(root)');
    expect(lines.filter((l) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(l)).map((l) => l.trim().split(/\s+/).map(Number)))
      .toEqual([[0, user.uid, 1], [1, range.start, range.count]]);

    const listed = (JSON.parse(pod(['list', '--format', 'json']).stdout) as { pods: PodJson[] }).pods.find((p) => p.name === name)!;
    expect(listed.status).toBe('Running');
    expect(listed.containers).toEqual([expect.objectContaining({ id: server, status: 'running' })]);

    const refused = pod(['rm', name]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('running container');
    expect(liveProcess(pid)).toBe(true);

    const rm = pod(['rm', '--force', name]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(liveProcess(pid)).toBe(false);
    expect(liveProcess(nsPid)).toBe(false);
    // No holder of this user is left (a zombie, not yet reaped by whoever inherited it, holds nothing).
    const left = spawnSync('pgrep', ['-u', String(user.uid), 'catatonit'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number).filter(liveProcess);
    expect(left).toEqual([]);
    expect((JSON.parse(pod(['list', '--format', 'json']).stdout) as { pods: PodJson[] }).pods).toEqual([]);
  }, 120_000);

  it('--network host with a shared PID namespace: the host\'s interfaces, the pod\'s hostname, catatonit as PID 1', () => {
    const name = `hst${suffix}`;
    const doc = createPod(name, 'host', 'net,ipc,uts,pid');
    expect(doc.network).toBe('host');
    expect(Object.keys(doc.namespaces).sort()).toEqual(['ipc', 'pid', 'user', 'uts']);
    const id = `h${suffix}`;
    containers.push(id);
    const bundle = bundleInPod(id, JSON.stringify(doc), ['sh', '-c', 'hostname; cat /proc/1/comm; cat /proc/net/dev']);
    const { result: r, interfaces: hostIfaces } = stableHostInterfaces(() => runAs(user, 'berth-runtime', ['run', '--bundle', bundle, id]));
    expect(r.code, r.stderr).toBe(0);
    const [hostname, pid1] = r.stdout.split('\n');
    expect(hostname).toBe(name);
    expect(pid1).toBe('catatonit');
    for (const i of hostIfaces) expect(r.stdout).toContain(`${i}:`);
    expect(pod(['rm', name]).code).toBe(0);
  }, 90_000);

  it('a root pod cannot be joined by an ordinary user: berth-bundle says whose pod it is', () => {
    const runRoot = join(work.path, 'root-run');
    const created = runTool('berth-pod', ['--run-root', runRoot, 'create', '--name', `root${suffix}`, '--network', 'none']);
    expect(created.code, created.stderr).toBe(0);
    try {
      expect(Object.keys(JSON.parse(created.stdout).namespaces)).not.toContain('user');
      const prep = runAs(user, 'berth-store', ['prepare', `rp${suffix}`, '--image', ref]);
      expect(prep.code, prep.stderr).toBe(0);
      const podFile = join(work.path, 'root.pod.json');
      spawnSync('sh', ['-c', `printf '%s' "$1" > "$2" && chmod 644 "$2"`, 'sh', created.stdout, podFile]);
      const bundle = runAs(user, 'berth-bundle', ['--name', `rp${suffix}`, '--pod', podFile, '-', '--', 'true'], prep.stdout);
      expect(bundle.code).toBe(2);
      expect(bundle.stderr).toContain('the pod was created by root');
    } finally {
      expect(runTool('berth-pod', ['--run-root', runRoot, 'rm', `root${suffix}`]).code).toBe(0);
    }
  }, 60_000);

  it('a pod whose holder died is listed as Dead, refused by berth-bundle, and rm still removes it', () => {
    const name = `dead${suffix}`;
    const doc = createPod(name, 'none');
    const pid = (JSON.parse(pod(['inspect', name]).stdout) as PodJson).namespaceHolder!.pid;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (liveProcess(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    const listed = (JSON.parse(pod(['list', '--format', 'json']).stdout) as { pods: PodJson[] }).pods.find((p) => p.name === name)!;
    expect(listed.status).toBe('Dead');
    expect(pod(['list']).stdout).toMatch(new RegExp(`${name}\\s+Dead`));

    const prep = runAs(user, 'berth-store', ['prepare', `d${suffix}`, '--image', ref]);
    expect(prep.code, prep.stderr).toBe(0);
    const podFile = join(work.path, 'dead.pod.json');
    spawnSync('sh', ['-c', `printf '%s' "$1" > "$2" && chmod 644 "$2"`, 'sh', JSON.stringify(doc), podFile]);
    const bundle = runAs(user, 'berth-bundle', ['--name', `d${suffix}`, '--pod', podFile, '-', '--', 'true'], prep.stdout);
    expect(bundle.code).toBe(2);
    expect(bundle.stderr).toContain('namespace holder is gone');

    expect(pod(['rm', name]).code).toBe(0);
    expect((JSON.parse(pod(['list', '--format', 'json']).stdout) as { pods: PodJson[] }).pods).toEqual([]);
  }, 60_000);
});
