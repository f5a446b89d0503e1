import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { berthAs, makeUser, runAs, type TestUser } from './users.ts';
import { liveProcess } from '../helpers/proc.ts';

// A private network for an ordinary user (issue 12): slirp4netns gives a
// rootless pod tap0 (10.0.2.100/24) in its network namespace and publishes
// ports on the host as the user. It needs /dev/net/tun openable by the user,
// which on this machine is 0600 root: the suite grants its one user the
// device with an ACL entry for its duration and restores the ACL exactly.

const TUN = '/dev/net/tun';


/** The user's live processes named `comm` (pgrep, then zombies dropped). */
function processesOf(user: TestUser, comm: string): number[] {
  return spawnSync('pgrep', ['-u', String(user.uid), '-x', comm], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number).filter(liveProcess);
}

/** Unix sockets left anywhere under the user's run root. */
function socketsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isSocket()) out.push(p);
      else if (st?.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** GET http://127.0.0.1:PORT/PATH from the host, retried (bounded) while the server in the pod starts. */
async function fetchFromHost(port: number, path = '/', attempts = 50): Promise<string> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path, timeout: 2_000 }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => { body += d.toString(); });
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`GET 127.0.0.1:${port}${path}: ${last} after ${attempts} attempts`);
}

/** Can the host bind this TCP port again (nothing, slirp4netns included, still holds it)? */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rootless berth: a private network with published ports (slirp4netns)', () => {
  const suffix = process.pid.toString(36);
  let user: TestUser;
  let denied: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-net-');
  const aclBackup = join(work.path, 'tun.acl');
  let tunModeBefore = 0;
  let aclBefore = '';
  let granted = false;
  let ref = '';
  const pods: string[] = [];
  let hostServer: ChildProcess | undefined;

  const runRoot = () => `/tmp/berth-run-${user.uid}`;
  const getfacl = () => spawnSync('getfacl', ['--absolute-names', TUN], { encoding: 'utf8' }).stdout;

  beforeAll(async () => {
    user = makeUser(`brw${suffix}`, { start: 1100000, count: 65536 });
    denied = makeUser(`brw2${suffix}`, { start: 1200000, count: 65536 });
    // Exactly what to restore: the ACL (with owner and mode) as getfacl prints it.
    tunModeBefore = statSync(TUN).mode;
    aclBefore = getfacl();
    expect(aclBefore).toContain('user::');
    writeFileSync(aclBackup, aclBefore);
    const grant = spawnSync('setfacl', ['-m', `u:${user.name}:rw`, TUN], { encoding: 'utf8' });
    expect(grant.status, `setfacl (Debian package acl): ${grant.stderr ?? grant.error?.message}`).toBe(0);
    granted = true;
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/net:1');
    for (const u of [user, denied]) {
      const pull = berthAs(u, ['pull', '--tls-verify=false', ref]);
      expect(pull.code, pull.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    hostServer?.kill('SIGKILL');
    try {
      for (const u of [user, denied]) {
        if (!u) continue;
        for (const name of pods) berthAs(u, ['pod', 'rm', '-f', name]);
        berthAs(u, ['rm', '-f', '-a']);
        // Whatever a failed test left running as this user (the suite started all of it): by pid.
        for (const comm of ['slirp4netns', 'catatonit', 'conmon']) for (const pid of processesOf(u, comm)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        rmSync(`/tmp/berth-run-${u.uid}`, { recursive: true, force: true });
      }
    } finally {
      if (granted) {
        const restore = spawnSync('setfacl', [`--restore=${aclBackup}`], { encoding: 'utf8', cwd: '/' });
        expect(restore.status, restore.stderr).toBe(0);
        expect(getfacl()).toBe(aclBefore);
        expect(statSync(TUN).mode).toBe(tunModeBefore);
      }
      user?.remove();
      denied?.remove();
      await registry?.stop();
      work.cleanup();
    }
  }, 120_000);

  it('a pod (slirp4netns by default) with --publish serves a page the host fetches from 127.0.0.1:HOSTPORT; inside: tap0 10.0.2.100, resolv.conf at 10.0.2.3', async () => {
    const name = `web_${suffix}`;
    const hostPort = await freePort();
    pods.push(name);
    const create = berthAs(user, ['pod', 'create', '--name', name, '-p', `${hostPort}:8080`]);
    expect(create.code, create.stderr).toBe(0);
    const inspect = JSON.parse(berthAs(user, ['pod', 'inspect', name]).stdout) as {
      IP: string; InfraConfig: { NetworkMode: string; PortBindings: unknown[]; Slirp4netns: { Pid: number; APISocket: string; Running: boolean } };
    };
    expect(inspect.InfraConfig.NetworkMode).toBe('slirp4netns');
    expect(inspect.IP).toBe('10.0.2.100');
    expect(inspect.InfraConfig.PortBindings).toEqual([{ hostIP: '', hostPort, containerPort: 8080, protocol: 'tcp' }]);
    const slirp = inspect.InfraConfig.Slirp4netns;
    expect(slirp.Running).toBe(true);
    expect(liveProcess(slirp.Pid)).toBe(true);
    // slirp4netns runs as the user, on the host: it is what listens on the published port.
    expect(readFileSync(`/proc/${slirp.Pid}/comm`, 'utf8').trim()).toBe('slirp4netns');
    expect(readFileSync(`/proc/${slirp.Pid}/status`, 'utf8')).toMatch(new RegExp(`\\nUid:\\s+${user.uid}\\s`));
    expect(statSync(slirp.APISocket).isSocket()).toBe(true);

    const srv = berthAs(user, ['run', '-d', '--pod', name, '--name', `srv_${suffix}`, ref, 'sh', '-c',
      `mkdir -p /www && echo "served by ${name}" > /www/index.html && exec httpd -f -p 8080 -h /www`]);
    expect(srv.code, srv.stderr).toBe(0);
    expect(await fetchFromHost(hostPort)).toBe(`served by ${name}\n`);

    const inside = berthAs(user, ['exec', `srv_${suffix}`, 'sh', '-c', 'ip -4 -o addr show tap0; ip route; cat /etc/resolv.conf']);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stdout).toMatch(/tap0\s+inet 10\.0\.2\.100\/24/);
    expect(inside.stdout).toContain('default via 10.0.2.2 dev tap0');
    expect(inside.stdout.split('\n').filter((l) => l.startsWith('nameserver'))).toEqual(['nameserver 10.0.2.3']);

    // ps shows the pod's ports on its member, as for a root pod.
    const ps = berthAs(user, ['ps']);
    expect(ps.stdout).toMatch(new RegExp(`0\\.0\\.0\\.0:${hostPort}->8080/tcp\\s+srv_${suffix}`));
  }, 120_000);

  it('the host\'s 127.0.0.1 is out of reach through 10.0.2.2 (network unreachable), unless --network slirp4netns:allow_host_loopback=true', async () => {
    const port = await freePort();
    // A server of the host's on 127.0.0.1, in a process of its own: berthAs
    // blocks this one (spawnSync), which could then accept nothing.
    hostServer = spawn(process.execPath, ['-e', `require('net').createServer((s) => { console.log('connection'); s.end('host loopback\\n'); }).listen(${port}, '127.0.0.1', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let serverLog = '';
    hostServer.stdout!.on('data', (d: Buffer) => { serverLog += d.toString(); });
    await waitFor('the host server to listen', () => serverLog.includes('listening'));
    const connections = () => serverLog.split('\n').filter((l) => l === 'connection').length;
    const r = berthAs(user, ['run', '--rm', '--network', 'slirp4netns', ref, 'sh', '-c', `nc -w 5 10.0.2.2 ${port} </dev/null; echo "exit=$?"`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('exit=1');
    expect(r.stdout).not.toContain('host loopback');
    // slirp4netns answers the SYN for a host loopback address with ICMP net-unreachable.
    expect(r.stderr).toContain("nc: can't connect to remote host (10.0.2.2): Network is unreachable");
    // podman's option: slirp4netns without --disable-host-loopback, so 10.0.2.2 is the host's loopback.
    const allowed = berthAs(user, ['run', '--rm', '--network', 'slirp4netns:allow_host_loopback=true', ref, 'sh', '-c', `nc -w 5 10.0.2.2 ${port} </dev/null; echo "exit=$?"`]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toBe('host loopback\nexit=0\n');
    await waitFor('the host server to log the connection', () => connections() === 1);
    const bad = berthAs(user, ['run', '--rm', '--network', 'slirp4netns:port_handler=rootlesskit', ref, 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--network slirp4netns:port_handler=rootlesskit: option "port_handler" is not supported');
    expect(connections()).toBe(1);
    hostServer.kill('SIGKILL');
    hostServer = undefined;
  }, 90_000);

  it('two pods each publish their own port (one made by run -p); berth port names it; each answers with its own page', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = `a_${suffix}`;
    pods.push(a);
    expect(berthAs(user, ['pod', 'create', '--name', a, '-p', `${portA}:80`]).code).toBe(0);
    const srvA = berthAs(user, ['run', '-d', '--pod', a, ref, 'sh', '-c', 'mkdir -p /w && echo pod-a > /w/index.html && exec httpd -f -p 80 -h /w']);
    expect(srvA.code, srvA.stderr).toBe(0);
    // A one-container pod for run -p, as podman gives a rootless container its own slirp4netns.
    const b = `b_${suffix}`;
    const srvB = berthAs(user, ['run', '-d', '--name', b, '-p', `${portB}:80`, ref, 'sh', '-c', 'mkdir -p /w && echo pod-b > /w/index.html && exec httpd -f -p 80 -h /w']);
    expect(srvB.code, srvB.stderr).toBe(0);
    expect(berthAs(user, ['port', b]).stdout.trim()).toBe(`80/tcp -> 0.0.0.0:${portB}`);
    expect(await fetchFromHost(portA)).toBe('pod-a\n');
    expect(await fetchFromHost(portB)).toBe('pod-b\n');
    // Two slirp4netns (pod a, b's own), plus the first test's pod.
    expect(processesOf(user, 'slirp4netns').length).toBeGreaterThanOrEqual(2);
    // b's pod is b's: rm of the container takes it, its slirp4netns and the port.
    expect(berthAs(user, ['rm', '-f', b]).code).toBe(0);
    await waitFor(`host port ${portB} free after rm`, () => portFree(portB));
    expect(await fetchFromHost(portA)).toBe('pod-a\n');
  }, 120_000);

  it('pod rm -f leaves no slirp4netns process, no API socket, no pod, and frees the host ports', async () => {
    for (const name of [...pods]) {
      const rm = berthAs(user, ['pod', 'rm', '-f', name]);
      expect(rm.code, rm.stderr).toBe(0);
      pods.splice(pods.indexOf(name), 1);
    }
    expect(berthAs(user, ['pod', 'list', '-q']).stdout.trim()).toBe('');
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(processesOf(user, 'slirp4netns')).toEqual([]);
    expect(processesOf(user, 'catatonit')).toEqual([]);
    expect(socketsUnder(runRoot())).toEqual([]);
  }, 120_000);

  it('run --rm --network slirp4netns without -p: tap0 and 10.0.2.3 inside, and nothing left after', () => {
    const r = berthAs(user, ['run', '--rm', '--network', 'slirp4netns', ref, 'sh', '-c', 'ip -4 -o addr show tap0; grep nameserver /etc/resolv.conf']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tap0\s+inet 10\.0\.2\.100\/24/);
    expect(r.stdout).toContain('nameserver 10.0.2.3');
    expect(processesOf(user, 'slirp4netns')).toEqual([]);
    expect(socketsUnder(runRoot())).toEqual([]);
    expect(existsSync(join(runRoot(), 'berth', 'pods')) ? readdirSync(join(runRoot(), 'berth', 'pods')).filter((d) => d !== '.lock') : []).toEqual([]);
  }, 90_000);

  it('when the pod\'s holder dies, slirp4netns ends with it and the port is free; the pod is Dead and rm removes its socket', async () => {
    const name = `dead_${suffix}`;
    const port = await freePort();
    pods.push(name);
    const create = runAs(user, 'berth-pod', ['create', '--name', name, '-p', `${port}:80`]);
    expect(create.code, create.stderr).toBe(0);
    const doc = JSON.parse(runAs(user, 'berth-pod', ['inspect', name]).stdout) as { namespaceHolder: { pid: number }; slirp4netns: { pid: number; apiSocket: string } };
    expect(await portFree(port)).toBe(false);
    process.kill(doc.namespaceHolder.pid, 'SIGKILL');
    await waitFor('slirp4netns to exit with the holder', () => !liveProcess(doc.slirp4netns.pid));
    await waitFor(`host port ${port} free`, () => portFree(port));
    const listed = JSON.parse(runAs(user, 'berth-pod', ['inspect', name]).stdout) as { status: string; slirp4netns: { running: boolean } };
    expect(listed.status).toBe('Dead');
    expect(listed.slirp4netns.running).toBe(false);
    expect(runAs(user, 'berth-pod', ['rm', name]).code).toBe(0);
    pods.splice(pods.indexOf(name), 1);
    expect(existsSync(doc.slirp4netns.apiSocket)).toBe(false);
  }, 60_000);

  it('a host port below net.ipv4.ip_unprivileged_port_start is refused up front, naming the sysctl', () => {
    const r = berthAs(user, ['pod', 'create', '--name', `low_${suffix}`, '-p', '80:80']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('host port 80 is privileged');
    expect(r.stderr).toContain('net.ipv4.ip_unprivileged_port_start');
    expect(berthAs(user, ['pod', 'list', '-q']).stdout.trim()).toBe('');
    expect(processesOf(user, 'slirp4netns')).toEqual([]);
  });

  it('a user without the grant: pod create and run -p say which device, its mode and owner, and the setfacl to run; exit 125, nothing made', async () => {
    const port = await freePort();
    const st = statSync(TUN);
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    for (const args of [['pod', 'create', '--name', `nope_${suffix}`, '-p', `${port}:80`], ['run', '--rm', '-p', `${port}:80`, ref, 'true'], ['run', '--rm', '--network', 'slirp4netns', ref, 'true']]) {
      const r = berthAs(denied, args);
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`user ${denied.name} (uid ${denied.uid}) cannot open`);
      expect(r.stderr).toContain(`${TUN}`);
      expect(r.stderr).toContain(`mode ${mode}, owner root:root`);
      expect(r.stderr).toContain(`setfacl -m u:${denied.name}:rw ${TUN}`);
      expect(r.stderr).toContain('--network none or --network host');
    }
    expect(berthAs(denied, ['pod', 'list', '-q']).stdout.trim()).toBe('');
    expect(berthAs(denied, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(processesOf(denied, 'catatonit')).toEqual([]);
    expect(await portFree(port)).toBe(true);
  }, 60_000);
});
