import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { berthAs, makeUser, type TestUser } from '../rootless/users.ts';
import { Berth, pushGuideImages, until } from './fixtures.ts';

// `berth pause`/`unpause` and `berth rename` as podman has them. Pause is the
// OCI runtime's `pause`/`resume` (the cgroup freezer), so every behaviour is
// pinned under berth-runtime and under runc; the freezer is checked where
// the kernel shows it, the container's own freezer.state.
let reg: TestRegistry;
let layout: ReturnType<typeof tempDir> | undefined;
let plain = '';

beforeAll(async () => {
  layout = tempDir('berth-engine-pause-layout-');
  reg = await startRegistry();
  plain = (await pushGuideImages(reg, layout.path)).plain;
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  layout?.cleanup();
});

/** The part of `berth inspect`'s document these tests read. */
interface InspectDoc {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; Paused: boolean; Pid: number; ExitCode: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A busybox loop that prints a counter ten times a second: its log shows whether it makes progress. */
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done';

/** The v1 freezer (or v2 cgroup.freeze) file of the cgroup a process is in, as the kernel names it in /proc/PID/cgroup. */
function freezerFile(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.map((l) => /^\d+:([^:]*):(.*)$/.exec(l)).find((m) => m && m[1]!.split(',').includes('freezer'));
  if (v1) return join('/sys/fs/cgroup', v1[1]!, v1[2]!, 'freezer.state');
  const v2 = lines.find((l) => l.startsWith('0::'))!.slice(3);
  return join('/sys/fs/cgroup', v2, 'cgroup.freeze');
}

function frozen(file: string): boolean {
  const s = readFileSync(file, 'utf8').trim();
  return s === 'FROZEN' || s === '1';
}

describe.each([['berth-runtime', undefined], ['runc', 'runc']] as const)('berth pause, unpause and rename under %s', (_name, runtime) => {
  // Made when the suite runs, not when it is collected: a suite a -t filter skips leaves no temp dir.
  let berth: Berth;
  beforeAll(() => { berth = new Berth(runtime); });
  afterAll(() => berth?.cleanup());

  /** The last number the counter container printed. */
  const counter = (name: string) => Number(berth.ok('logs', name).trim().split('\n').at(-1));
  const inspect = (name: string) => (JSON.parse(berth.ok('inspect', name)) as InspectDoc[])[0]!;

  it('a paused container makes no progress and its cgroup is frozen; unpause lets it go on from where it was', async () => {
    berth.ok('pull', '--tls-verify=false', plain);
    berth.ok('run', '-d', '--name', 'count', plain, 'sh', '-c', COUNTER);
    await until('the counter to start', () => counter('count') >= 3);
    expect(berth.ok('pause', 'count')).toBe('count\n');
    const pid = inspect('count').State.Pid;
    expect(pid).toBeGreaterThan(0);
    expect(frozen(freezerFile(pid))).toBe(true);
    // conmon may still be copying a line the loop wrote just before the freeze:
    // wait until two reads 300 ms apart agree, then the count must stay put.
    let at = counter('count');
    await until('the log to settle', async () => { await sleep(300); const now = counter('count'); const same = now === at; at = now; return same; });
    await sleep(1200);
    expect(counter('count')).toBe(at);
    expect(berth.ok('container', 'unpause', 'count')).toBe('count\n');
    expect(frozen(freezerFile(pid))).toBe(false);
    await until('the counter to move again', () => counter('count') > at + 3);
  });

  it('ps -a, ps --filter status=paused, ps --format json and inspect show it paused; plain ps lists only running ones, as podman', () => {
    berth.ok('pause', 'count');
    const row = berth.ok('ps', '-a').split('\n').find((l) => l.endsWith('count'))!;
    expect(row).toMatch(/\sPaused\s/);
    expect(berth.ok('ps', '-q', '--filter', 'status=paused').trim()).toBe(inspect('count').Id.slice(0, 12));
    expect(berth.ok('ps', '--format', '{{.Names}}').trim()).toBe('');
    const [doc] = JSON.parse(berth.ok('ps', '-a', '--format', 'json')) as Array<Record<string, unknown>>;
    expect(doc).toMatchObject({ Names: ['count'], State: 'paused', Status: 'Paused', Exited: false });
    expect(doc!.Pid).toBeGreaterThan(0);
    const state = inspect('count').State;
    expect(state).toMatchObject({ Status: 'paused', Paused: true, Running: false });
    expect(berth.ok('inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'count').trim()).toBe('paused true');
    expect(JSON.parse(berth.ok('info', '--format', 'json')).store.containerStore).toMatchObject({ paused: 1, running: 0 });
  });

  it('exec into a paused container is refused (125) and starts nothing; stats keeps reading its cgroup', () => {
    const exec = berth.run('exec', 'count', 'touch', '/tmp/ran');
    expect(exec.code).toBe(125);
    expect(exec.stderr).toContain('can only create exec sessions on running containers: count is paused');
    const stats = JSON.parse(berth.ok('stats', '--no-stream', '--format', 'json', 'count')) as Array<Record<string, string>>;
    expect(stats[0]!.name).toBe('count');
    expect(Number(stats[0]!.pids)).toBeGreaterThanOrEqual(1);
    berth.ok('unpause', 'count');
    expect(berth.run('exec', 'count', 'test', '-e', '/tmp/ran').code).toBe(1);
  });

  it('refuses what podman refuses, exit 125 with the reason: pause twice, unpause of a running one, pause of a created one, unknown names', () => {
    berth.ok('pause', 'count');
    const twice = berth.run('pause', 'count');
    expect(twice.code).toBe(125);
    expect(twice.stderr).toMatch(/Error: "[0-9a-f]{64}" is already paused: container state improper/);
    berth.ok('unpause', 'count');
    const notPaused = berth.run('unpause', 'count');
    expect(notPaused.code).toBe(125);
    expect(notPaused.stderr).toMatch(/is not paused \(it is running\), can't unpause: container state improper/);
    berth.ok('create', '--name', 'made', plain, 'true');
    const created = berth.run('pause', 'made');
    expect(created.code).toBe(125);
    expect(created.stderr).toMatch(/is not running \(it is created\), can't pause: container state improper/);
    expect(berth.run('unpause', 'made').code).toBe(125);
    const missing = berth.run('pause', 'nosuch');
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('no container with name or ID "nosuch" found: no such container');
    expect(berth.run('pause').stderr).toContain('you must provide at least one name or id');
    expect(berth.run('pause', '--all', 'count').stderr).toContain('no arguments are needed with --all');
    // One bad name does not stop the others, as with berth's other verbs; the exit says it failed.
    const mixed = berth.run('pause', 'nosuch', 'count');
    expect(mixed.code).toBe(125);
    expect(mixed.stdout).toBe('count\n');
    berth.ok('unpause', 'count');
    berth.ok('rm', 'made');
  });

  it('pause --all and unpause --all act on the running (paused) ones and print their full ids', () => {
    berth.ok('create', '--name', 'idle', plain, 'true');
    const id = inspect('count').Id;
    expect(berth.ok('pause', '--all')).toBe(`${id}\n`);
    expect(berth.ok('pause', '--all')).toBe('');
    expect(berth.ok('unpause', '--all')).toBe(`${id}\n`);
    expect(inspect('count').State.Status).toBe('running');
    berth.ok('rm', 'idle');
  });

  it('stop of a paused container: the stop signal is acted on once thawed (its trap runs, its exit code is kept), and no frozen cgroup is left', async () => {
    berth.ok('run', '-d', '--name', 'trap', plain, 'sh', '-c', 'trap "echo got TERM; exit 3" TERM; while :; do sleep 0.1; done');
    berth.ok('pause', 'trap');
    const pid = inspect('trap').State.Pid;
    const file = freezerFile(pid);
    expect(frozen(file)).toBe(true);
    expect(berth.ok('stop', 'trap')).toBe('trap\n');
    // The trap ran and set the status: the TERM was acted on, no SIGKILL (137) was needed.
    expect(berth.ok('logs', 'trap')).toContain('got TERM');
    expect(inspect('trap').State).toMatchObject({ Status: 'exited', ExitCode: 3, Paused: false });
    expect(existsSync(file) && frozen(file)).toBe(false);
    // A stopped container starts again, not paused.
    berth.ok('start', 'trap');
    expect(inspect('trap').State.Status).toBe('running');
    berth.ok('rm', '-f', 'trap');
  });

  it('kill of a paused container: SIGKILL ends it; another signal waits for unpause, as in podman; rm needs -f, which works', async () => {
    berth.ok('run', '-d', '--name', 'k', plain, 'sh', '-c', 'trap "exit 4" TERM; while :; do sleep 0.1; done');
    berth.ok('pause', 'k');
    berth.ok('kill', '-s', 'TERM', 'k');
    // Thawed, the trap would end it with status 4 at once; frozen, the TERM stays pending.
    await sleep(700);
    expect(inspect('k').State.Status).toBe('paused');
    berth.ok('kill', 'k');
    await until('the killed container to be exited', () => inspect('k').State.Status === 'exited');
    expect(inspect('k').State.ExitCode).toBe(137);
    berth.ok('rm', 'k');

    berth.ok('run', '-d', '--name', 'r', plain, 'sleep', '300');
    berth.ok('pause', 'r');
    const file = freezerFile(inspect('r').State.Pid);
    const rm = berth.run('rm', 'r');
    expect(rm.code).toBe(125);
    expect(rm.stderr).toContain('as it is paused - running or paused containers cannot be removed without force');
    expect(berth.ok('rm', '-f', 'r')).toBe('r\n');
    expect(berth.run('inspect', 'r').code).toBe(125);
    expect(existsSync(file) && frozen(file)).toBe(false);
  });

  it('rename of a running container: ps, inspect, logs, exec and stop find it by the new name, and by the old one no more', () => {
    const id = inspect('count').Id;
    expect(berth.ok('rename', 'count', 'tally')).toBe('');
    expect(berth.ok('ps', '--format', '{{.ID}} {{.Names}}').trim()).toBe(`${id.slice(0, 12)} tally`);
    expect(inspect('tally')).toMatchObject({ Id: id, Name: 'tally' });
    expect(Number(berth.ok('logs', 'tally').trim().split('\n').at(-1))).toBeGreaterThan(0);
    expect(berth.ok('exec', 'tally', 'echo', 'in tally')).toBe('in tally\n');
    for (const verb of [['inspect'], ['logs'], ['exec', '--', 'true'], ['stop'], ['pause']]) {
      const r = berth.run(verb[0]!, 'count', ...verb.slice(1));
      expect(r.code, verb.join(' ')).toBe(125);
      expect(r.stderr).toMatch(/no such (container|object)/);
    }
    // The old name is free again.
    berth.ok('create', '--name', 'count', plain, 'true');
    berth.ok('rm', 'count');
    expect(berth.ok('stop', '-t', '0', 'tally')).toBe('tally\n');
  });

  it('rename of stopped and paused containers, by id prefix; renaming to its own name is no change', () => {
    const id = inspect('tally').Id;
    berth.ok('rename', id.slice(0, 12), 'stopped.one_2-x');
    expect(berth.ok('ps', '-a', '--format', '{{.Names}}').trim()).toBe('stopped.one_2-x');
    expect(berth.ok('rename', 'stopped.one_2-x', 'stopped.one_2-x')).toBe('');
    berth.ok('start', 'stopped.one_2-x');
    berth.ok('pause', 'stopped.one_2-x');
    berth.ok('rename', 'stopped.one_2-x', 'frozen');
    expect(inspect('frozen').State.Status).toBe('paused');
    expect(berth.ok('unpause', 'frozen')).toBe('frozen\n');
    berth.ok('rm', '-f', 'frozen');
  });

  it('rename refuses a name in use, a bad name and a missing container (125); nothing is changed', () => {
    berth.ok('create', '--name', 'one', plain, 'true');
    berth.ok('create', '--name', 'two', plain, 'true');
    const twoId = inspect('two').Id;
    const taken = berth.run('rename', 'one', 'two');
    expect(taken.code).toBe(125);
    expect(taken.stderr).toContain(`name two already in use by container ${twoId}`);
    for (const bad of ['a/b', '../x', '.hidden', '_x', 'sp ace', 'x'.repeat(129)]) {
      const r = berth.run('rename', 'one', bad);
      expect(r.code, bad).toBe(125);
      expect(r.stderr, bad).toContain('names are letters, digits');
    }
    const missing = berth.run('rename', 'nosuch', 'three');
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('no container with name or ID "nosuch" found');
    expect(berth.run('rename', 'one').code).toBe(125);
    expect(berth.ok('ps', '-a', '--format', '{{.Names}}').trim().split('\n').sort()).toEqual(['one', 'two']);
    berth.ok('rm', 'one', 'two');
  });

  it('two renames racing for one name: exactly one wins, the other is told the name is in use', async () => {
    berth.ok('create', '--name', 'ra', plain, 'true');
    berth.ok('create', '--name', 'rb', plain, 'true');
    const results = await Promise.all([berth.runAsync('rename', 'ra', 'winner'), berth.runAsync('rename', 'rb', 'winner')]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 125]);
    expect(results.find((r) => r.code === 125)!.stderr).toContain('name winner already in use');
    expect(berth.ok('ps', '-a', '--format', '{{.Names}}').trim().split('\n').filter((n) => n === 'winner')).toHaveLength(1);
    berth.ok('rm', '-a');
  });

  it('a container with -p renamed: its old name is free again, for a new container with -p too', async () => {
    const [first, second] = [await freePort(), await freePort()];
    berth.ok('run', '-d', '--name', 'pweb', '-p', `127.0.0.1:${first}:80`, plain, 'sleep', '300');
    berth.ok('rename', 'pweb', 'pweb-old');
    berth.ok('run', '-d', '--name', 'pweb', '-p', `127.0.0.1:${second}:80`, plain, 'sleep', '300');
    expect(berth.ok('ps', '--format', '{{.Names}}').trim().split('\n').sort()).toEqual(['pweb', 'pweb-old']);
    // The hidden pods stay hidden from pod ls, and go with their containers.
    expect(berth.ok('pod', 'ps', '-q').trim()).toBe('');
    berth.ok('rm', '-f', 'pweb', 'pweb-old');
    expect(berth.ok('ps', '-a', '-q').trim()).toBe('');
  });
});

// As an ordinary user on this cgroup v1 (hybrid) host the container's
// processes stay in root's freezer hierarchy, so there is nothing the user
// may freeze: berth refuses in podman's words before asking the runtime. On a
// pure v2 host with a delegated cgroup pausing can work, so this is pinned
// only where the host is v1 or hybrid.
const v1Host = !existsSync('/sys/fs/cgroup/cgroup.controllers');
describe.runIf(v1Host)('rootless berth pause on a cgroup v1 host', () => {
  const suffix = process.pid.toString(36);
  let user: TestUser;
  let ref = '';
  let work: ReturnType<typeof tempDir> | undefined;

  beforeAll(async () => {
    work = tempDir('berth-rootless-pause-');
    user = makeUser(`bpz${suffix}`, { start: 1700000, count: 65536 });
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(reg, join(work.path, 'layout'), 'rootless/pause:1');
    const pull = berthAs(user, ['pull', '--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
  }, 120_000);

  afterAll(() => {
    if (user) {
      berthAs(user, ['rm', '-f', '-a']);
      rmSync(`/tmp/berth-run-${user.uid}`, { recursive: true, force: true });
      user.remove();
    }
    work?.cleanup();
  }, 60_000);

  it('pause is refused with the reason and the container keeps running; rename works', () => {
    const run = berthAs(user, ['run', '-d', '--name', 'web', ref, 'sleep', '300']);
    expect(run.code, run.stderr).toBe(0);
    const pause = berthAs(user, ['pause', 'web']);
    expect(pause.code, pause.stderr).toBe(125);
    expect(pause.stderr).toContain('Error: can not pause containers on rootless containers with cgroup V1: this container does not have a cgroup');
    expect(pause.stderr).toContain('cgroup v2 host with a delegated cgroup');
    expect(berthAs(user, ['ps', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^web Up/);
    const unpause = berthAs(user, ['unpause', 'web']);
    expect(unpause.code, unpause.stderr).toBe(125);
    expect(unpause.stderr).toContain('is not paused (it is running)');
    expect(berthAs(user, ['rename', 'web', 'site']).code).toBe(0);
    expect(berthAs(user, ['exec', 'site', 'echo', 'ok']).stdout).toBe('ok\n');
    expect(berthAs(user, ['rm', '-f', 'site']).code).toBe(0);
  }, 90_000);
});
