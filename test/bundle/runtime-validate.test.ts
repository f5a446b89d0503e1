import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BerthError } from '@berth/cli-kit';
import { validateRuntimeSpec } from '@berth/oci-spec';

/** validateRuntimeSpec names the field that is wrong, with a JSON path. */

function base(): Record<string, any> {
  return {
    ociVersion: '1.0.2',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], env: ['PATH=/bin'], cwd: '/' },
    root: { path: 'rootfs' },
    hostname: 'h',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }] },
  };
}

function rejects(mutate: (s: Record<string, any>) => void, message: string): void {
  const s = base();
  mutate(s);
  let err: unknown;
  try { validateRuntimeSpec(s); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(BerthError);
  expect((err as BerthError).code).toBe('E_CONFIG');
  expect((err as Error).message).toBe(message);
}

describe('validateRuntimeSpec', () => {
  test('a minimal valid config passes and comes back typed', () => {
    expect(validateRuntimeSpec(base()).process!.args).toEqual(['sh']);
  });
  test('names a wrong field by its path', () => {
    rejects((s) => s.linux.namespaces.push({ type: 'foo' }), 'linux.namespaces[3].type: unknown namespace "foo"');
    rejects((s) => s.linux.namespaces.push({ type: 'pid' }), 'linux.namespaces[3].type: namespace "pid" is listed twice');
    rejects((s) => { s.ociVersion = 'latest'; }, 'ociVersion: "latest" is not a 1.x semantic version');
    rejects((s) => { s.process.cwd = 'work'; }, 'process.cwd: "work" is not an absolute path');
    rejects((s) => { s.process.user.uid = -1; }, 'process.user.uid: -1 is out of range [0, 4294967295]');
    rejects((s) => { s.process.env.push('NOVALUE'); }, 'process.env[1]: "NOVALUE" is not of the form KEY=value');
    rejects((s) => { s.process.args = []; }, 'process.args: must name at least the program to run');
    rejects((s) => { s.process.capabilities = { bounding: ['CAP_CHOWN', 'CAP_FLY'] }; }, 'process.capabilities.bounding[1]: unknown capability "CAP_FLY"');
    rejects((s) => { s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }]; }, 'process.rlimits[0]: soft limit 10 is above hard limit 5');
    rejects((s) => { s.process.rlimits = [{ type: 'RLIMIT_FILES', soft: 1, hard: 1 }]; }, 'process.rlimits[0].type: unknown rlimit "RLIMIT_FILES"');
    rejects((s) => { s.mounts[0].destination = 'proc'; }, 'mounts[0].destination: "proc" is not an absolute path');
    rejects((s) => { s.mounts.push({ destination: '/x', type: 'bind', options: ['rbind'] }); }, 'mounts[1].source: a bind mount needs a source');
    rejects((s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_NOPE' }; }, 'linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_NOPE"');
    rejects((s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 7, value: 0, op: 'SCMP_CMP_EQ' }] }] }; }, 'linux.seccomp.syscalls[0].args[0].index: 7 is out of range [0, 5]');
    rejects((s) => { s.linux.resources = { devices: [{ allow: true, access: 'rwx' }] }; }, 'linux.resources.devices[0].access: "rwx" is not a subset of "rwm"');
    rejects((s) => { s.linux.resources = { memory: { limit: 100, swap: 50 } }; }, 'linux.resources.memory.swap: 50 is below memory.limit 100 (swap counts memory plus swap)');
    rejects((s) => { s.annotations = { a: 1 }; }, 'annotations["a"]: expected a string, got number 1');
    rejects((s) => { s.linux.namespaces = [{ type: 'pid' }]; }, 'hostname: is set but linux.namespaces has no "uts" namespace');
    rejects((s) => { s.root = 'rootfs'; }, 'root: expected an object, got the string "rootfs"');
  });
  test.each(['runc', 'crun'])('accepts the default config.json that `%s spec` writes', (runtime) => {
    const dir = mkdtempSync(join(tmpdir(), `berth-${runtime}-spec-`));
    try {
      execFileSync(runtime, runtime === 'runc' ? ['spec', '--bundle', dir] : ['spec'], { cwd: dir });
      const spec = validateRuntimeSpec(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
      expect(spec.process!.args).toEqual(['sh']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('a non-object is refused', () => {
    expect(() => validateRuntimeSpec([])).toThrow('config: expected an object, got an array');
  });
});
