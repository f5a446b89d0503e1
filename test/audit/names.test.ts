/**
 * berth-audit with the names users give `berth run --name`: inspect and
 * events --container take the name and find the container the berth front
 * made (its record in the data root names the runtime root), with the same
 * answer as the runtime's id.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages } from '../engine/fixtures.ts';
import { auditEnabled, auditctl, ensureBuilt, follow, holdAuditLock, LOCK_WAIT, within, type Follower } from './helpers.ts';

const T = 120_000;

interface PsEntry { Id: string; Names: string[]; Pid: number }

describe('berth-audit by berth container name', () => {
  const tag = randomBytes(4).toString('hex');
  const name = `aud-${tag}`;
  const key = `berth-names-${tag}`;
  const berth = new Berth();
  const layout = tempDir('berth-audit-names-layout-');
  const shared = tempDir('berth-audit-names-');
  const target = join(shared.path, 'target');
  let reg: TestRegistry;
  let savedEnabled: number;
  let releaseAudit: (() => void) | undefined;
  let followers: Follower[] = [];

  beforeAll(async () => {
    ensureBuilt();
    releaseAudit = await holdAuditLock(LOCK_WAIT);
    savedEnabled = auditEnabled();
    mkdirSync(shared.path, { recursive: true });
    writeFileSync(target, '');
    reg = await startRegistry();
    const refs = await pushGuideImages(reg, layout.path);
    berth.ok('pull', '--tls-verify=false', refs.plain);
    berth.ok('run', '-d', '--name', name, '-v', `${shared.path}:/w`, refs.plain, 'sleep', '300');
  }, LOCK_WAIT + T);

  afterAll(async () => {
    for (const f of followers) if (f.child.exitCode === null) f.child.kill('SIGKILL');
    auditctl('-W', target, '-k', key);
    if (auditEnabled() !== savedEnabled) auditctl('-e', String(savedEnabled));
    releaseAudit?.();
    await berth.cleanup();
    await reg?.stop();
    layout.cleanup();
    shared.cleanup();
  }, T);

  const psEntry = (): PsEntry => (JSON.parse(berth.ok('ps', '--format', 'json')) as PsEntry[]).find((c) => c.Names[0] === name)!;

  it('inspect NAME reports the container berth runs under that name: its id, its name and its init pid', () => {
    const c = psEntry();
    const r = runTool('berth-audit', ['inspect', name, '--root', berth.root]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ kind: 'audit-inspect', pid: c.Pid, container: { id: c.Id, name, matchedBy: 'init-pid' } });
    // The same container by the id the runtime knows, as before.
    const byId = runTool('berth-audit', ['inspect', c.Id.slice(0, 12), '--root', berth.root, '--runtime-root', join(berth.runRoot, 'runtimes', 'berth-runtime')]);
    expect(byId.code, byId.stderr).toBe(0);
    expect(byId.json).toMatchObject({ pid: c.Pid, container: { id: c.Id } });
  });

  it('a name no berth container has is an error naming it', () => {
    const r = runTool('berth-audit', ['inspect', `nosuch-${tag}`, '--root', berth.root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no such container "nosuch-${tag}"`);
  });

  it('events --container NAME follows what that container does', async () => {
    expect(runTool('berth-audit', ['watch', target, '--key', key, '--perm', 'wa']).code).toBe(0);
    const f = await follow(['--key', key, '--container', name, '--root', berth.root, '--count', '1', '--timeout', '60']);
    followers.push(f);
    // A write from the host first: not the container's, so it must not end the follow.
    writeFileSync(target, 'from the host\n', { flag: 'a' });
    // The writer stays a few seconds: a process is tied to its container through
    // /proc/PID (its pid namespace, its cgroup), which is gone once it has exited.
    berth.ok('exec', name, 'sh', '-c', 'echo from the container >> /w/target; sleep 5');
    expect(await within(f, 30_000)).toBe(0);
    const [ev] = f.lines();
    expect(ev).toMatchObject({ kind: 'audit-event', key, container: { id: psEntry().Id } });
    followers = [];
  }, T);
});
