/**
 * berth-audit inspect on a real container (berth-runtime, busybox) with
 * dropped capabilities, a seccomp profile, no_new_privs, its own namespaces
 * and memory/pids limits; on a host process; and the bad inputs a user meets:
 * a pid that does not exist, an unknown container id, audit refused by the
 * kernel (from a user namespace, where the kernel answers no audit request).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/run.ts';
import { auditBin, ensureBuilt, makeRootfs, runtimeBin, writeBundle } from './helpers.ts';

const T = 90_000;
const KEPT = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const MEMORY = 64 * 1024 * 1024;
const LOGIN_UID = 4243;

describe('berth-audit inspect', () => {
  // A 64-hex id, like podman's, so a 12-character prefix can be tried.
  const id = randomBytes(32).toString('hex');
  let dir: string;
  let stateRoot: string;
  let initPid: number;
  let namespacesInSpec: string[];

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'berth-audit-insp-'));
    chmodSync(dir, 0o755);
    const rootfs = await makeRootfs(dir);
    stateRoot = join(dir, 'state');
    const bundle = writeBundle(join(dir, 'bundle'), rootfs, ['sleep', '120'], (s) => {
      s.process!.capabilities = { bounding: KEPT, effective: KEPT, permitted: KEPT, inheritable: [], ambient: [] };
      s.process!.noNewPrivileges = true;
      s.linux!.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      };
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: MEMORY }, pids: { limit: 32 } };
      namespacesInSpec = s.linux!.namespaces!.map((n) => n.type);
    });
    // Started by a launcher with a login uid, detached: the container keeps running for inspect.
    const r = spawnSync('sh', ['-c', `echo ${LOGIN_UID} > /proc/self/loginuid && exec "$0" "$@"`, process.execPath, runtimeBin, '--root', stateRoot, 'run', '-d', '-b', bundle, id], { stdio: 'ignore', timeout: 60_000 });
    expect(r.status).toBe(0);
    const state = spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'state', id], { encoding: 'utf8' });
    initPid = (JSON.parse(state.stdout) as { pid: number }).pid;
  }, T);

  afterAll(() => {
    spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'delete', '-f', id]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the container\'s login uid, capabilities, no_new_privs, seccomp, namespaces, limits and ancestry', () => {
    const r = runTool('berth-audit', ['inspect', id, '--runtime-root', stateRoot]);
    expect(r.code, r.stderr).toBe(0);
    const d = r.json;
    expect(d).toMatchObject({ kind: 'audit-inspect', pid: initPid, container: { id, runtime: 'berth-runtime', root: stateRoot, initPid, matchedBy: 'init-pid' } });
    expect(d.process.comm).toBe('sleep');
    expect(d.login).toEqual({ loginuid: LOGIN_UID, user: null, unset: false, sessionid: expect.any(Number) });
    for (const set of ['bounding', 'effective', 'permitted'] as const) expect(d.capabilities[set]).toEqual(KEPT);
    expect(d.capabilities.ambient).toEqual([]);
    expect(d.capabilities.diff.bounding.missing).toEqual(expect.arrayContaining(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE']));
    expect(d.capabilities.diff.bounding.extra).toEqual([]);
    expect(d.noNewPrivs).toBe(true);
    expect(d.seccomp.mode).toBe('filter');
    expect(d.seccomp.filters).toBeGreaterThanOrEqual(1);
    const ns = Object.fromEntries((d.namespaces as { type: string; host: boolean }[]).map((n) => [n.type, n.host]));
    const kernelName: Record<string, string> = { mount: 'mnt', network: 'net', pid: 'pid', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup' };
    for (const t of namespacesInSpec) if (kernelName[t]) expect(ns[kernelName[t]!], t).toBe(false);
    expect(ns.user).toBe(true);
    expect(d.limits.memoryBytes).toBe(MEMORY);
    expect(d.limits.pidsMax).toBe(32);
    const memory = (d.cgroups as { version: number; controllers: string[]; limits: Record<string, string> }[]).find((c) => c.controllers.includes('memory'));
    expect(memory?.limits['memory.limit_in_bytes'] ?? memory?.limits['memory.max']).toBe(String(MEMORY));
    // The chain from the container's init up to pid 1; the init carries the launcher's login uid.
    const chain = d.ancestry as { pid: number; loginuid: number | null }[];
    expect(chain[0]).toMatchObject({ pid: initPid, loginuid: LOGIN_UID });
    expect(chain.at(-1)!.pid).toBe(1);
  }, T);

  it('resolves a 12-character id prefix and prints a table with --format table', () => {
    const r = runTool('berth-audit', ['inspect', id.slice(0, 12), '--runtime-root', stateRoot, '--format', 'table']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`CONTAINER          ${id} (berth-runtime`);
    expect(r.stdout).toMatch(/CAP BOUNDING\s+3 caps: CHOWN KILL NET_BIND_SERVICE; \d+ fewer than pid \d+/);
    expect(r.stdout).toMatch(/SECCOMP\s+filter \(\d+ filters\)/);
    expect(r.stdout).toMatch(/LOGINUID\s+4243/);
    expect(r.stdout).toMatch(/^pid\s+\d+\s+no \(own\)$/m);
  }, T);

  it('a pid of a process exec\'d into the container is tied to the container too', () => {
    const x = spawnSync(process.execPath, [runtimeBin, '--root', stateRoot, 'exec', '-d', id, 'sleep', '77'], { stdio: 'ignore', timeout: 60_000 });
    expect(x.status).toBe(0);
    const initNs = readlinkSync(`/proc/${initPid}/ns/pid`);
    const member = readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== initPid).find((n) => {
      try {
        return readlinkSync(`/proc/${n}/ns/pid`) === initNs && readFileSync(`/proc/${n}/cmdline`, 'utf8').includes('77');
      } catch {
        return false;
      }
    });
    expect(member).toBeDefined();
    const r = runTool('berth-audit', ['inspect', member!, '--runtime-root', stateRoot]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.container).toMatchObject({ id, initPid, matchedBy: expect.stringMatching(/^(pid-namespace|descendant)$/) });
    // exec is fork/exec from its caller too: the process has the test runner's login uid, not the container init's.
    const mine = Number(readFileSync('/proc/self/loginuid', 'utf8'));
    expect(r.json.login.loginuid).toBe(mine === 4294967295 ? null : mine);
  }, T);

  it('resolves a runc container through --runtime-root (runc\'s state.json)', () => {
    const runcRoot = join(dir, 'runc-state');
    const runcId = `audit-runc-${id.slice(0, 8)}`;
    const bundle = writeBundle(join(dir, 'bundle-runc'), join(dir, 'rootfs'), ['sleep', '120']);
    try {
      const r = spawnSync('runc', ['--root', runcRoot, 'run', '-d', '-b', bundle, runcId], { stdio: 'ignore', timeout: 60_000 });
      expect(r.status).toBe(0);
      const pid = (JSON.parse(spawnSync('runc', ['--root', runcRoot, 'state', runcId], { encoding: 'utf8' }).stdout) as { pid: number }).pid;
      const i = runTool('berth-audit', ['inspect', runcId, '--runtime-root', runcRoot, '--runtime-root', stateRoot]);
      expect(i.code, i.stderr).toBe(0);
      expect(i.json).toMatchObject({ pid, container: { id: runcId, runtime: 'runc', root: runcRoot, bundle } });
    } finally {
      spawnSync('runc', ['--root', runcRoot, 'delete', '-f', runcId]);
    }
  }, T);

  it('on a host process reports the host\'s namespaces and no container', () => {
    const r = runTool('berth-audit', ['inspect', String(process.pid)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.container).toBeNull();
    expect(r.json.pid).toBe(process.pid);
    for (const n of r.json.namespaces as { type: string; host: boolean }[]) expect(n.host, n.type).toBe(true);
    expect(r.json.seccomp.mode).toBe('disabled');
  }, T);

  it('a pid that does not exist: exit 1 naming it', () => {
    const r = runTool('berth-audit', ['inspect', '99999999']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no process with pid 99999999');
    expect(r.stdout).toBe('');
  }, T);

  it('an unknown container id: exit 1 naming it and where it looked', () => {
    const r = runTool('berth-audit', ['inspect', `nope-${id.slice(0, 8)}`, '--runtime-root', stateRoot]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no such container "nope-${id.slice(0, 8)}" in ${stateRoot}`);
    expect(r.stdout).toBe('');
  }, T);

  it('audit not available (the kernel refuses a user namespace): watch and events exit 1 saying so', () => {
    const inUserNs = (...args: string[]) => spawnSync('unshare', ['--user', '--map-root-user', process.execPath, auditBin, ...args], { encoding: 'utf8', timeout: 30_000 });
    const w = inUserNs('watch', join(dir, 'x'), '--key', 'never-added');
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(/audit is not available: AUDIT_GET: ECONNREFUSED/);
    const e = inUserNs('events', '--follow', '--source', 'kernel', '--timeout', '5');
    expect(e.status).toBe(1);
    expect(e.stderr).toMatch(/audit is not available: bind NETLINK_AUDIT to AUDIT_NLGRP_READLOG: EPERM/);
  }, T);

  it('no auditd log for history, bad --since, bad --perm: clear errors', () => {
    const missing = join(dir, 'no-such-audit.log');
    const h = runTool('berth-audit', ['events', '--log-file', missing]);
    expect(h.code).toBe(1);
    expect(h.stderr).toContain(`read ${missing}: ENOENT`);
    const s = runTool('berth-audit', ['events', '--since', 'last tuesday-ish']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('invalid time "last tuesday-ish"');
    const p = runTool('berth-audit', ['watch', join(dir, 'x'), '--perm', 'rwz']);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('invalid permission filter "rwz"');
  }, T);
});
