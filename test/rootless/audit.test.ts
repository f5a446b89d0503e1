import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { makeUser, runAs, type TestUser } from './users.ts';

// `berth-audit inspect` as an ordinary user (issue 12): a container id of
// their own `berth run` resolves through their private runtime state
// (/tmp/berth-run-UID/berth/runtimes/..., with no XDG_RUNTIME_DIR), and the
// kernel's view shows the user namespace berth made: root inside is the user,
// 1.. the subordinate range. Another user finds nothing under that id.

interface Inspect {
  kind: string;
  pid: number;
  container?: { id: string; runtime: string; root: string; initPid: number; matchedBy: string } | null;
  process: { comm: string; cmdline: string[] };
  credentials: { uid: number[]; uidMap: Array<{ inside: number; outside: number; count: number }> };
  capabilities: { effective: string[]; ownUserNamespace: boolean | null };
  namespaces: Array<{ type: string; inode: number | null; host: boolean | null }>;
}

describe('rootless berth-audit inspect', () => {
  const suffix = process.pid.toString(36);
  const range = { start: 900000, count: 65536 };
  let user: TestUser;
  let other: TestUser;
  let registry: TestRegistry;
  let hostProcess: ChildProcess | undefined;
  /** runuser's child: SIGKILL to runuser does not reach it, and a live process of the user keeps userdel from removing them. */
  let hostSleep = 0;
  const work = tempDir('berth-rootless-audit-');
  let ref = '';
  let id = '';

  beforeAll(async () => {
    user = makeUser(`bra${suffix}`, range);
    other = makeUser(`bra2${suffix}`, { start: 1000000, count: 65536 });
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/aud:1');
    const pull = runAs(user, 'berth', ['pull', '--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    const run = runAs(user, 'berth', ['run', '-d', '--name', `aud_${suffix}`, ref, 'sleep', '300']);
    expect(run.code, run.stderr).toBe(0);
    id = run.stdout.trim();
  }, 120_000);

  afterAll(async () => {
    hostProcess?.kill('SIGKILL');
    if (hostSleep > 0) { try { process.kill(hostSleep, 'SIGKILL'); } catch { /* already gone */ } }
    for (const u of [user, other]) {
      if (!u) continue;
      runAs(u, 'berth', ['rm', '-f', '-a']);
      rmSync(`/tmp/berth-run-${u.uid}`, { recursive: true, force: true });
      u.remove();
    }
    await registry?.stop();
    work.cleanup();
  }, 60_000);

  it('a container id prefix of the user\'s own berth run resolves through their runtime state; the user namespace maps root to them and 1.. to their range', () => {
    const r = runAs(user, 'berth-audit', ['inspect', id.slice(0, 12)]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Inspect;
    expect(doc.kind).toBe('audit-inspect');
    expect(doc.container?.id).toBe(id);
    expect(doc.container?.root.startsWith(`/tmp/berth-run-${user.uid}/berth/runtimes/`)).toBe(true);
    expect(doc.pid).toBe(doc.container?.initPid);
    expect(doc.process.cmdline).toEqual(['sleep', '300']);
    // Root in the container is the user on the host.
    expect(doc.credentials.uid).toEqual([user.uid, user.uid, user.uid, user.uid]);
    expect(doc.credentials.uidMap).toEqual([
      { inside: 0, outside: user.uid, count: 1 },
      { inside: 1, outside: range.start, count: range.count },
    ]);
    // The container's capabilities are root's in its own user namespace, and said to be.
    expect(doc.capabilities.effective).toContain('CAP_SYS_CHROOT');
    expect(doc.capabilities.ownUserNamespace).toBe(true);
    const ns = Object.fromEntries(doc.namespaces.map((n) => [n.type, n]));
    for (const t of ['user', 'mnt', 'pid', 'net', 'ipc', 'uts']) {
      expect(ns[t]?.inode, t).toBeGreaterThan(0);
      expect(ns[t]?.host, t).toBe(false);
    }
  });

  it('--format table names the container, the uid map and the capabilities\' user namespace', () => {
    const r = runAs(user, 'berth-audit', ['inspect', id, '--format', 'table']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^CONTAINER\\s+${id} \\(berth-runtime`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^UID MAP\\s+0->${user.uid} x1, 1->${range.start} x${range.count}`, 'm'));
    expect(r.stdout).toMatch(/^CAP SCOPE\s+held in the process's own user namespace/m);
  });

  it('a host pid of the user\'s: their own credentials, the host\'s namespaces, no container', async () => {
    hostProcess = spawn('runuser', ['-u', user.name, '--', 'sleep', '120'], { stdio: 'ignore' });
    // runuser forks the command: its child is the user's sleep (bounded wait for it to appear).
    let pid = 0;
    for (let i = 0; i < 50 && pid === 0; i++) {
      const p = spawnSync('pgrep', ['-P', String(hostProcess.pid), '-x', 'sleep'], { encoding: 'utf8' }).stdout.trim();
      if (p) pid = hostSleep = Number(p.split('\n')[0]);
      else await new Promise((res) => setTimeout(res, 50));
    }
    expect(pid).toBeGreaterThan(0);
    const r = runAs(user, 'berth-audit', ['inspect', String(pid)]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Inspect;
    expect(doc.pid).toBe(pid);
    expect(doc.container ?? null).toBeNull();
    expect(doc.credentials.uid).toEqual([user.uid, user.uid, user.uid, user.uid]);
    expect(doc.credentials.uidMap).toEqual([{ inside: 0, outside: 0, count: 4294967295 }]);
    expect(doc.namespaces.find((n) => n.type === 'user')?.host).toBe(true);
    expect(doc.capabilities.ownUserNamespace).toBe(false);
  });

  it('another user finds no container under that id, and is told where berth-audit looked', () => {
    const r = runAs(other, 'berth-audit', ['inspect', id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no such container "${id}"`);
    expect(r.stderr).toContain(`/tmp/berth-run-${other.uid}/berth/runtime`);
    expect(r.stderr).not.toContain(`/tmp/berth-run-${user.uid}`);
  });
});
