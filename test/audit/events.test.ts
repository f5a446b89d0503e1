/**
 * berth-audit watch / events / unwatch against the real kernel audit
 * subsystem: a container started by berth-runtime writes to a watched file,
 * and the event names the container and the login uid of whoever launched it
 * — kept by fork/exec, lost through a daemon (the guide's Podman vs Docker
 * comparison). Every rule added is removed and the enabled flag restored.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/run.ts';
import { auditEnabled, auditctl, ensureBuilt, follow, holdAuditLock, LOCK_WAIT, makeRootfs, runtimeBin, startAuditd, within, writeBundle, type Auditd, type Follower } from './helpers.ts';

const T = 90_000;
const TEST_AUID = 4242;

describe('berth-audit events', () => {
  const tag = randomBytes(4).toString('hex');
  const key = `berth-test-${tag}`;
  let dir: string;
  let rootfs: string;
  let stateRoot: string;
  let shared: string;
  let target: string;
  let savedEnabled: number;
  let releaseAudit: (() => void) | undefined;
  const ids: string[] = [];
  let auditd: Auditd | undefined;
  /** Background processes a failed test could leave behind. */
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    ensureBuilt();
    releaseAudit = await holdAuditLock(LOCK_WAIT);
    savedEnabled = auditEnabled();
    dir = mkdtempSync(join(tmpdir(), 'berth-audit-'));
    chmodSync(dir, 0o755);
    rootfs = await makeRootfs(dir);
    mkdirSync(join(rootfs, 'w'));
    stateRoot = join(dir, 'state');
    shared = join(dir, 'shared');
    mkdirSync(shared);
    target = join(shared, 'target');
    writeFileSync(target, '');
  }, LOCK_WAIT + T);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await auditd?.stop();
    // Our key only: other rules on this host are not ours to touch.
    auditctl('-W', target, '-k', key);
    if (auditEnabled() !== savedEnabled) auditctl('-e', String(savedEnabled));
    releaseAudit?.();
    for (const id of ids) spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'delete', '-f', id]);
    rmSync(dir, { recursive: true, force: true });
  });

  const track = (f: Follower): Follower => {
    children.push(f.child);
    return f;
  };

  /** A bundle whose container appends to the shared (watched) file, then stays a moment so its state is there. */
  const writerBundle = (name: string): string => writeBundle(join(dir, name), rootfs, ['sh', '-c', 'echo hello >> /w/target; sleep 1'], (s) => {
    s.mounts!.push({ destination: '/w', type: 'bind', source: shared, options: ['rbind', 'rw'] });
  });

  it('watch adds the rule (enabling audit if it was off) and rules lists it', () => {
    const r = runTool('berth-audit', ['watch', target, '--key', key, '--perm', 'wa']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ kind: 'audit-watch', path: target, perm: 'wa', key, added: true, enabledAudit: savedEnabled === 0 });
    if (savedEnabled === 0) expect(r.stderr).toMatch(/enabled it/);
    expect(auditEnabled()).toBeGreaterThan(0);
    expect(auditctl('-l').out).toContain(`-w ${target} -p wa -k ${key}`);
    const rules = runTool('berth-audit', ['rules']);
    expect(rules.json.rules).toContainEqual({ kind: 'watch', path: target, perm: 'wa', key });
  }, T);

  it('a container launched (fork/exec) by a process with loginuid set: the event names the container and that auid', async () => {
    const id = `audit-fx-${tag}`;
    ids.push(id);
    const bundle = writerBundle('bundle-fx');
    const f = track(await follow(['--key', key, '--runtime-root', stateRoot, '--count', '1', '--timeout', '60']));
    // The launcher sets its own login uid (root may, while loginuid_immutable is off), then execs the runtime:
    // the container's processes are its offspring and inherit it, as under podman.
    const run = spawnSync('sh', ['-c', `echo ${TEST_AUID} > /proc/self/loginuid && exec "$0" "$@"`, process.execPath, runtimeBin, '--root', stateRoot, 'run', '-b', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(await within(f, 30_000)).toBe(0);
    const [ev] = f.lines();
    expect(ev).toMatchObject({
      kind: 'audit-event', key, auid: TEST_AUID, auidUnset: false,
      container: { id, runtime: 'berth-runtime' },
      comm: 'sh',
    });
    // The container's shell did the write itself: its pid is the init pid in the runtime's state.json.
    expect((ev!.container as { matchedBy: string }).matchedBy).toBe('init-pid');
    // Inside the container the file is /w/target: the PATH record shows the container's view of the name.
    expect((ev!.paths as { name: string }[]).map((p) => p.name)).toContain('/w/target');
    expect(ev!.types).toEqual(expect.arrayContaining(['SYSCALL', 'PATH']));
  }, T);

  it('the same write from a container launched through a daemon: auid unset, still attributed to the container', async () => {
    const id = `audit-dm-${tag}`;
    ids.push(id);
    const bundle = writerBundle('bundle-dm');
    const fifo = join(dir, 'daemon.fifo');
    spawnSync('mkfifo', [fifo]);
    const f = track(await follow(['--key', key, '--runtime-root', stateRoot, '--count', '1', '--timeout', '60']));
    // The "daemon": started from a context with no login (loginuid unset, its own session), it waits for a
    // request and starts the container itself. The client that asks has a login uid; the container cannot inherit it.
    const daemon = spawn('setsid', ['sh', '-c', 'echo 4294967295 > /proc/self/loginuid && read id < "$1" && exec "$2" "$3" --root "$4" run -b "$5" "$id"', 'daemon', fifo, process.execPath, runtimeBin, stateRoot, bundle], { stdio: 'ignore' });
    children.push(daemon);
    const daemonDone = new Promise<number>((resolve) => daemon.on('exit', (code) => resolve(code ?? -1)));
    const client = spawnSync('sh', ['-c', `echo ${TEST_AUID} > /proc/self/loginuid && echo "$1" > "$2"`, 'client', id, fifo], { encoding: 'utf8', timeout: 30_000 });
    expect(client.status, client.stderr).toBe(0);
    expect(await within(f, 30_000)).toBe(0);
    expect(await daemonDone).toBe(0);
    const [ev] = f.lines();
    expect(ev).toMatchObject({ kind: 'audit-event', key, auid: 4294967295, auidUnset: true, user: null, ses: 4294967295, container: { id, runtime: 'berth-runtime' } });
  }, T);

  it('--container keeps only the events of that container; a child of its init is matched by pid namespace', async () => {
    const id = `audit-flt-${tag}`;
    ids.push(id);
    // Here a child of the container's init writes (and lives on a moment): it is found by its pid namespace.
    const bundle = writeBundle(join(dir, 'bundle-flt'), rootfs, ['sh', '-c', 'sh -c "echo child >> /w/target; sleep 1"; true'], (s) => {
      s.mounts!.push({ destination: '/w', type: 'bind', source: shared, options: ['rbind', 'rw'] });
    });
    const f = track(await follow(['--key', key, '--runtime-root', stateRoot, '--container', id, '--count', '1', '--timeout', '60']));
    // A host write first (no container), then the container's: only the latter may come out.
    writeFileSync(target, 'host\n', { flag: 'a' });
    const run = spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'run', '-b', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(await within(f, 30_000)).toBe(0);
    const lines = f.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ container: { id, matchedBy: 'pid-namespace' } });
    expect(lines[0]!.proctitle).toContain('echo child');
  }, T);

  it('without --follow: the history in auditd\'s log, the same events ausearch finds, attributed to the container', async () => {
    const id = `audit-log-${tag}`;
    ids.push(id);
    auditd = await startAuditd(join(dir, 'auditd'));
    const started = Date.now() / 1000;
    // Detached and still running when the log is read, so its state.json names its init pid.
    const bundle = writeBundle(join(dir, 'bundle-log'), rootfs, ['sh', '-c', 'echo from-log >> /w/target; sleep 60'], (s) => {
      s.mounts!.push({ destination: '/w', type: 'bind', source: shared, options: ['rbind', 'rw'] });
    });
    const run = spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'run', '-d', '-b', bundle, id], { stdio: 'ignore', timeout: 60_000 });
    expect(run.status).toBe(0);
    const deadline = Date.now() + 20_000;
    while (!(existsSync(auditd.logFile) && readFileSync(auditd.logFile, 'utf8').includes(`key="${key}"`))) {
      if (Date.now() > deadline) throw new Error(`auditd wrote no record with key ${key} to ${auditd.logFile}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await auditd.stop();
    const r = runTool('berth-audit', ['events', '--log-file', auditd.logFile, '--key', key, '--since', String(started - 1), '--runtime-root', stateRoot]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    // ausearch (the peer) finds the same events: compare serial numbers.
    // (The key is unique to this run, so no time bound is needed.)
    const raw = spawnSync('ausearch', ['-if', auditd.logFile, '-k', key, '--raw'], { encoding: 'utf8' });
    const theirs = [...new Set([...raw.stdout.matchAll(/audit\(\d+\.\d+:(\d+)\)/g)].map((m) => Number(m[1])))];
    const ours = lines.map((l) => l.serial as number);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.sort()).toEqual(theirs.sort());
    const mine = lines.find((l) => l.container?.id === id);
    expect(mine, JSON.stringify(lines)).toMatchObject({ key, container: { id, matchedBy: 'init-pid' }, syscall: { name: 'openat', success: true } });
    // --since after the events: nothing.
    const later = runTool('berth-audit', ['events', '--log-file', auditd.logFile, '--key', key, '--since', String(Date.now() / 1000 + 60)]);
    expect(later.code).toBe(0);
    expect(later.stdout).toBe('');
  }, T);

  it('a watch the kernel refuses (its directory does not exist): exit 1 naming it, audit flag and rules unchanged', () => {
    const before = auditEnabled();
    const missing = join(dir, 'no-such-dir', 'file');
    const r = runTool('berth-audit', ['watch', missing, '--key', key]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`AUDIT_ADD_RULE watch ${missing} (its directory ${join(dir, 'no-such-dir')} must exist): ENOENT`);
    expect(auditEnabled()).toBe(before);
    expect(auditctl('-l').out).not.toContain(missing);
  }, T);

  it('unwatch removes the rule; a second unwatch has nothing to remove and fails', () => {
    const r = runTool('berth-audit', ['unwatch', target, '--key', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ kind: 'audit-unwatch', removed: [{ path: target, perm: 'wa', key }] });
    expect(auditctl('-l').out).not.toContain(key);
    const again = runTool('berth-audit', ['unwatch', target, '--key', key]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no audit watch on ${target}`);
  }, T);
});
