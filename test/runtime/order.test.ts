/**
 * The order of the last steps before execve, with a recording double instead
 * of the kernel (no root needed). Each rule is one the kernel imposes.
 */
import { describe, expect, it } from 'vitest';
import type { Process } from '@berth/oci-spec';
import { finalizeAndExec, type ProcessSyscalls } from '../../tools/runtime/src/process-setup.ts';

function record(proc: Process, withSeccomp: boolean): string[] {
  const calls: string[] = [];
  const k = new Proxy({} as ProcessSyscalls, {
    get: (_t, name: string) => (...args: unknown[]) => {
      calls.push(name === 'raiseAmbient' ? `raiseAmbient(${String(args[0])})` : name);
      if (name === 'execve') throw new Error('exec');
    },
  });
  expect(() => finalizeAndExec(proc, { path: '/bin/true', args: ['true'], env: [] },
    { preserveFds: 0, ...(withSeccomp ? { seccomp: { defaultAction: 'SCMP_ACT_ALLOW' } } : {}) }, k)).toThrow('exec');
  return calls;
}

const caps = ['CAP_NET_BIND_SERVICE'];
const base: Process = {
  user: { uid: 1000, gid: 1000 }, cwd: '/', args: ['true'],
  capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps },
};

describe('finalizeAndExec order', () => {
  it('with no_new_privs: seccomp last, just before execve', () => {
    const calls = record({ ...base, noNewPrivileges: true }, true);
    expect(calls.slice(-2)).toEqual(['loadSeccomp', 'execve']);
    expect(calls.filter((c) => c === 'loadSeccomp')).toHaveLength(1);
    expect(calls.indexOf('setNoNewPrivs')).toBeLessThan(calls.indexOf('loadSeccomp'));
  });

  it('without no_new_privs: seccomp while CAP_SYS_ADMIN is still there (before the bounding set and uid change)', () => {
    const calls = record({ ...base, noNewPrivileges: false }, true);
    expect(calls.indexOf('loadSeccomp')).toBeLessThan(calls.indexOf('dropBoundingSet'));
    expect(calls.filter((c) => c === 'loadSeccomp')).toHaveLength(1);
    expect(calls).not.toContain('setNoNewPrivs');
  });

  it('bounding set while root, keep-caps across setresuid, capset after it, ambient after capset', () => {
    const calls = record(base, false);
    const at = (c: string) => calls.findIndex((x) => x.startsWith(c));
    expect(at('dropBoundingSet')).toBeLessThan(at('setresuid'));
    expect(at('setKeepCaps')).toBeLessThan(at('setresuid'));
    expect(at('setgroups')).toBeLessThan(at('setresgid'));
    expect(at('setresgid')).toBeLessThan(at('setresuid'));
    expect(at('setresuid')).toBeLessThan(at('capset'));
    expect(at('capset')).toBeLessThan(at('raiseAmbient'));
    expect(calls).toContain('raiseAmbient(1024)');
    expect(at('prepareFds')).toBeLessThan(at('execve'));
    expect(calls).not.toContain('loadSeccomp');
  });

  it('raises only ambient caps that are also inheritable and permitted (as runc does)', () => {
    const calls = record({ ...base, capabilities: { ...base.capabilities, inheritable: [] } }, false);
    expect(calls).toContain('raiseAmbient(0)');
  });
});
