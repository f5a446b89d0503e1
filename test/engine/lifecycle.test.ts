import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages, until } from './fixtures.ts';

interface PsEntry { Id: string; Names: string[]; State: string; ExitCode: number; Restarts: number; Pid: number }

// Container lifecycle under runc (the runtime swap): what a user notices
// about run, logs, exit codes, restart policies, names and ids, and what
// survives a wiped run root. berth's own monitor is conmon; the runtime is
// given with --runtime, so the same verbs drive a different OCI runtime.
describe('berth: container lifecycle with --runtime runc', () => {
  let reg: TestRegistry;
  const layout = tempDir('berth-engine-layout-');
  const berth = new Berth('runc');
  let refs: { db: string; web: string; plain: string };
  const ps = (): PsEntry[] => JSON.parse(berth.ok('ps', '-a', '--format', 'json')) as PsEntry[];
  const entry = (name: string) => ps().find((c) => c.Names[0] === name);

  beforeAll(async () => {
    reg = await startRegistry();
    refs = await pushGuideImages(reg, layout.path);
  }, 120_000);

  afterAll(async () => {
    await berth.cleanup();
    await reg?.stop();
    layout.cleanup();
  });

  it('pulls from the registry, and lists images by label with full ids as the guide\'s clean_images does', () => {
    const id = berth.ok('pull', '--tls-verify=false', refs.web).trim();
    berth.ok('pull', '--tls-verify=false', refs.plain);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(berth.ok('images', '--filter', 'label=my-project.purpose=app-image', '--no-trunc', '--quiet').trim()).toBe(`sha256:${id}`);
    const table = berth.ok('images', '--filter', 'label=my-project.purpose=app-image', '--no-trunc');
    // awk '/latest/ {print $3}' in the guide's Makefile reads the IMAGE ID column.
    const row = table.split('\n').find((l) => l.includes('latest'))!;
    expect(row.split(/\s+/)[2]).toBe(`sha256:${id}`);
    expect(berth.ok('images', '--quiet').trim().split('\n')).toHaveLength(2);
  });

  it('runs in the foreground: output on stdout/stderr, the container\'s exit status, logs kept', () => {
    const r = berth.run('run', '--name', 'fg', refs.plain, 'sh', '-c', 'echo to-out; echo to-err >&2; exit 3');
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('to-out\n');
    expect(r.stderr).toBe('to-err\n');
    expect(entry('fg')).toMatchObject({ State: 'exited', ExitCode: 3 });
    expect(berth.ok('logs', 'fg')).toBe('to-out\n');
  });

  it('maps a command that cannot run to 126 and one that does not exist to 127, berth\'s own errors to 125', () => {
    expect(berth.run('run', '--rm', refs.plain, 'no-such-program').code).toBe(127);
    expect(berth.run('run', '--rm', refs.plain, '/etc/passwd').code).toBe(126);
    expect(berth.run('run', '--rm', '--restart', 'sometimes', refs.plain, 'true').code).toBe(125);
    expect(berth.run('run', '--rm', '--no-such-flag', refs.plain, 'true').code).toBe(125);
    // A runtime that cannot create the container is podman's 126 too, in the foreground and detached.
    const fake = join(berth.dir.path, 'failing-runtime');
    writeFileSync(fake, '#!/bin/sh\necho "failing-runtime: cannot create" >&2\nexit 1\n', { mode: 0o755 });
    const withFake = (...args: string[]) => runTool('berth', ['--root', berth.root, '--runroot', berth.runRoot, '--runtime', fake, ...args]);
    const fg = withFake('run', '--rm', refs.plain, 'true');
    expect(fg.code).toBe(126);
    expect(fg.stderr).toContain('failing-runtime: cannot create');
    const detached = withFake('run', '--rm', '-d', refs.plain, 'true');
    expect(detached.code).toBe(126);
    expect(detached.stderr).toContain('OCI runtime create failed: failing-runtime: cannot create');
    // --rm left nothing behind, even when the command could not run.
    expect(ps().map((c) => c.Names[0])).toEqual(['fg']);
  });

  it('keeps a detached container running after berth exits, with its output in the log and its exit code recorded', async () => {
    const r = berth.run('run', '-d', '--name', 'bg', refs.plain, 'sh', '-c', 'echo hello from bg; sleep 2; echo bye >&2; exit 7');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    // berth has exited (runTool waited for it); the container still runs.
    const running = entry('bg')!;
    expect(running.State).toBe('running');
    expect(existsSync(`/proc/${running.Pid}`)).toBe(true);
    expect(berth.ok('logs', id.slice(0, 12))).toBe('hello from bg\n');
    expect(berth.ok('wait', 'bg').trim()).toBe('7');
    expect(entry('bg')).toMatchObject({ State: 'exited', ExitCode: 7 });
    const logs = berth.run('logs', 'bg');
    expect(logs.stdout).toBe('hello from bg\n');
    expect(logs.stderr).toBe('bye\n');
    expect(berth.ok('ps', '-a')).toMatch(/Exited \(7\) .* bg\n/);
  });

  it('exec -d returns at once, even to a caller reading its output through a pipe; the process runs on; a runtime failure is named', async () => {
    const started = berth.run('run', '-d', '--tls-verify=false', '--name', 'execd', refs.plain, 'sleep', '600');
    expect(started.code, started.stderr).toBe(0);
    // runTool reads berth's stdout and stderr through pipes, as $(...) in a script does.
    const r = berth.run('exec', '-d', 'execd', 'sh', '-c', 'echo not-for-the-caller; exec sleep 601');
    expect(r).toMatchObject({ code: 0, stdout: '' });
    await until('the detached process', () => berth.ok('top', 'execd', 'args').includes('sleep 601'));
    // The runtime's own error (a working directory that is not there) comes back through its --log.
    const bad = berth.run('exec', '-d', '-w', '/no/such/dir', 'execd', 'true');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/no\/such\/dir/);
    expect(berth.run('rm', '-f', 'execd').code).toBe(0);
  });

  it('restarts a container that exits when --restart=always, until it is stopped', async () => {
    berth.ok('run', '-d', '--name', 'looper', '--restart=always', refs.plain, 'sh', '-c', 'echo round; sleep 0.3; exit 1');
    const restarts = await until('two restarts', () => { const e = entry('looper'); return e && e.Restarts >= 2 ? e.Restarts : undefined; }, 30_000);
    expect(restarts).toBeGreaterThanOrEqual(2);
    expect(berth.ok('logs', 'looper').split('\n').filter((l) => l === 'round').length).toBeGreaterThanOrEqual(3);
    berth.ok('stop', '-t', '1', 'looper');
    const after = entry('looper')!;
    expect(after.State).toBe('exited');
    await new Promise((r) => setTimeout(r, 1500));
    expect(entry('looper')).toMatchObject({ State: 'exited', Restarts: after.Restarts });
  });

  it('restarts on failure at most N times with --restart=on-failure:N, and not after a success', async () => {
    berth.ok('run', '-d', '--name', 'flaky', '--restart=on-failure:2', refs.plain, 'sh', '-c', 'echo try; exit 3');
    berth.ok('run', '-d', '--name', 'fine', '--restart=on-failure', refs.plain, 'true');
    const done = await until('two retries, then exited', () => { const e = entry('flaky'); return e && e.Restarts === 2 && e.State === 'exited' ? e : undefined; }, 30_000);
    expect(done.ExitCode).toBe(3);
    expect(berth.ok('logs', 'flaky')).toBe('try\ntry\ntry\n');
    expect(berth.ok('wait', 'fine').trim()).toBe('0');
    await new Promise((r) => setTimeout(r, 1000));
    expect(entry('fine')).toMatchObject({ State: 'exited', ExitCode: 0, Restarts: 0 });
    berth.ok('rm', 'flaky', 'fine');
  });

  it('keeps names unique, also against a concurrent create, and accepts short ids', async () => {
    const dup = berth.run('create', '--name', 'fg', refs.plain, 'true');
    expect(dup.code).toBe(125);
    expect(dup.stderr).toContain('the container name "fg" is already in use');
    // Two creates of one name at once: exactly one wins.
    const racers = await Promise.all([berth.runAsync('create', '--name', 'race', refs.plain, 'true'), berth.runAsync('create', '--name', 'race', refs.plain, 'true')]);
    expect(racers.map((r) => r.code).sort()).toEqual([0, 125]);
    berth.ok('rm', 'race');
    const id = berth.ok('create', '--name', 'made', refs.plain, 'true').trim();
    expect(entry('made')).toMatchObject({ State: 'created' });
    expect(berth.ok('start', id.slice(0, 12)).trim()).toBe(id.slice(0, 12));
    expect(berth.ok('wait', id.slice(0, 12)).trim()).toBe('0');
    const inspect = JSON.parse(berth.ok('inspect', id.slice(0, 12))) as Array<{ Id: string; Name: string; OCIRuntime: string }>;
    expect(inspect[0]).toMatchObject({ Id: id, Name: 'made' });
    expect(inspect[0]!.OCIRuntime).toMatch(/runc$/);
  });

  it('still lists every container from the data root after the run root is wiped (a reboot)', () => {
    berth.ok('create', '--name', 'never-started', refs.plain, 'true');
    const before = ps().map((c) => `${c.Names[0]}:${c.State}`).sort();
    // The runtime state, monitor pid files and exit files all live in the run root.
    expect(existsSync(`${berth.runRoot}/exits`)).toBe(true);
    rmSync(berth.runRoot, { recursive: true, force: true });
    const after = ps().map((c) => `${c.Names[0]}:${c.State}`).sort();
    expect(after).toEqual(before);
    expect(after).toEqual(['bg:exited', 'fg:exited', 'looper:exited', 'made:exited', 'never-started:created']);
    expect(berth.ok('ps', '-a')).toMatch(/Created\s+never-started/);
    // A reboot also takes the overlay mounts: a created container still starts,
    // its rootfs mounted again from the snapshot on disk.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(`${berth.root}/containers/`));
    expect(mounts.length).toBeGreaterThan(0);
    for (const m of mounts) execFileSync('umount', [m]);
    expect(berth.ok('start', 'never-started').trim()).toBe('never-started');
    expect(berth.ok('wait', 'never-started').trim()).toBe('0');
    expect(entry('never-started')).toMatchObject({ State: 'exited', ExitCode: 0 });
  });

  it('removes containers, refusing a running one without -f; rmi refuses an image in use', () => {
    berth.ok('run', '-d', '--name', 'busy', refs.plain, 'sleep', '60');
    const rm = berth.run('rm', 'busy');
    expect(rm.code).toBe(125);
    expect(rm.stderr).toContain('cannot remove container');
    const rmi = berth.run('rmi', refs.plain);
    expect(rmi.code).toBe(125);
    expect(rmi.stderr).toContain('image is in use by a container');
    expect(berth.ok('rm', '-f', 'busy').trim()).toBe('busy');
    for (const n of ['fg', 'bg', 'looper', 'made', 'never-started']) berth.ok('rm', n);
    expect(ps()).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`${berth.root}/containers`);
    const gone = berth.run('rmi', refs.plain);
    expect(gone.code).toBe(0);
    expect(gone.stdout).toContain('Untagged:');
    expect(berth.ok('images', '-q').trim().split('\n')).toHaveLength(1);
    // image prune -a: every image no container uses goes, through berth-gc.
    berth.ok('image', 'prune', '-a');
    expect(berth.ok('images', '-q')).toBe('');
  });
});
