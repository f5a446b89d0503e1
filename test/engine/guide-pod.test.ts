import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { Berth, httpGet, pushGuideImages, until } from './fixtures.ts';

// The guide's walkthrough ("Containers and Pods 101", section 3), typed as a
// user types it with berth and the default runtime (berth-runtime): a pod
// with a published port, a "database" and a "web" container joined to it,
// the page fetched from the host, exec, stop, rm, and podman's exit 125.
describe('berth: the guide\'s wp_pod walkthrough', () => {
  let reg: TestRegistry;
  const layout = tempDir('berth-engine-layout-');
  const berth = new Berth();
  const suffix = Math.random().toString(16).slice(2, 8);
  const pod = `wp_pod_${suffix}`;
  let refs: { db: string; web: string };
  let port: number;

  beforeAll(async () => {
    reg = await startRegistry();
    refs = await pushGuideImages(reg, layout.path);
    port = await freePort();
    berth.ok('pull', '--tls-verify=false', refs.db);
    berth.ok('pull', '--tls-verify=false', refs.web);
  }, 120_000);

  afterAll(async () => {
    await berth.cleanup();
    await reg?.stop();
    layout.cleanup();
  });

  it('creates the pod and lists it', () => {
    const id = berth.ok('pod', 'create', '--name', pod, '--publish', `${port}:80`).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const list = berth.ok('pod', 'list');
    expect(list.split('\n')[0]).toMatch(/^POD ID\s+NAME\s+STATUS\s+CREATED\s+INFRA ID\s+# OF CONTAINERS/);
    expect(list).toContain(id.slice(0, 12));
    expect(list).toMatch(new RegExp(`${pod}\\s+Created`));
  });

  it('runs the db and the web container in the pod; the host reaches the page, which reached the db over 127.0.0.1', async () => {
    const db = berth.run('run', '--detach', '--pod', pod, '--restart=always', '-e', 'DB_USER=tux', '--name=wp_db', refs.db);
    expect(db.stderr).toBe('');
    expect(db.code).toBe(0);
    expect(db.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    const web = berth.run('run', '--detach', '--restart=always', `--pod=${pod}`, '-e', 'DB_HOST=127.0.0.1', '--name', 'mypress', refs.web);
    expect(web.code).toBe(0);
    // Bounded: until() gives up after 20 s.
    const res = await until('the page through the published port', async () => {
      try { return await httpGet(`http://127.0.0.1:${port}/cgi-bin/index.cgi`); } catch { return undefined; }
    });
    expect(res.status).toBe(200);
    expect(res.body).toContain('web page; db at 127.0.0.1 said: db answers: user=tux');
    const ps = berth.ok('ps');
    expect(ps).toMatch(/wp_db/);
    expect(ps).toMatch(new RegExp(`0\\.0\\.0\\.0:${port}->80/tcp\\s+mypress`));
    expect(berth.ok('pod', 'list')).toMatch(new RegExp(`${pod}\\s+Running\\s+.*\\s2$`, 'm'));
    expect(berth.ok('ps', '--filter', `pod=${pod}`, '--format', '{{.Names}} {{.PodName}}').split('\n').filter(Boolean).sort()).toEqual([`mypress ${pod}`, `wp_db ${pod}`]);
  });

  it('execs in a running container, by name and by short id', () => {
    const r = berth.run('exec', 'mypress', 'cat', '/etc/os-release');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('PRETTY_NAME="berth test image (busybox)"');
    const short = berth.ok('ps', '-q', '--filter', 'name=wp_db').trim();
    expect(short).toMatch(/^[0-9a-f]{12}$/);
    expect(berth.ok('exec', short, 'sh', '-c', 'echo $DB_USER').trim()).toBe('tux');
    expect(berth.run('exec', 'mypress', 'no-such-command').code).toBe(127);
  });

  it('stops and removes the containers; stopped containers are not restarted', async () => {
    expect(berth.ok('stop', '-t', '2', 'mypress').trim()).toBe('mypress');
    expect(berth.ok('stop', '-t', '2', 'wp_db').trim()).toBe('wp_db');
    await new Promise((r) => setTimeout(r, 1500));
    const all = berth.ok('ps', '-a', '--format', 'json');
    const states = (JSON.parse(all) as Array<{ Names: string[]; State: string }>).map((c) => `${c.Names[0]}:${c.State}`).sort();
    expect(states).toEqual(['mypress:exited', 'wp_db:exited']);
    await expect(httpGet(`http://127.0.0.1:${port}/`, 1500)).rejects.toThrow();
    expect(berth.ok('rm', 'mypress').trim()).toBe('mypress');
    expect(berth.ok('rm', 'wp_db').trim()).toBe('wp_db');
    expect(berth.ok('ps', '-a', '-q')).toBe('');
    // Nothing of the containers is left mounted.
    expect(execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })).not.toContain(join(berth.root, 'containers'));
  });

  it('exits 125 for a container that does not exist, with podman\'s message', () => {
    const rm = berth.run('rm', 'nosuch');
    expect(rm.code).toBe(125);
    expect(rm.stderr).toBe('Error: no container with name or ID "nosuch" found: no such container\n');
    expect(berth.run('stop', 'nosuch').code).toBe(125);
  });

  it('removes the pod and what it held', () => {
    const id = berth.ok('pod', 'list', '-q', '--no-trunc').trim();
    expect(berth.ok('pod', 'rm', pod).trim()).toBe(id);
    expect(berth.ok('pod', 'list', '-q')).toBe('');
    const pods = join(berth.runRoot, 'pods');
    expect(existsSync(pods) ? readdirSync(pods).filter((d) => !d.startsWith('.')) : []).toEqual([]);
  });
});
