import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Seccomp } from '@berth/oci-spec';
import { compileSeccomp, explainSeccomp, planSeccomp, SECCOMP_ARCHITECTURES, seccompFeatures, validateSeccomp } from '../src/index.ts';

const repoRoot = join(import.meta.dirname, '../../..');
let work: string;
let childScript: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'berth-seccomp-test-'));
  childScript = join(work, 'child.mjs');
  await build({
    entryPoints: [join(import.meta.dirname, 'fixtures/child.ts')],
    bundle: true, platform: 'node', format: 'esm', external: ['koffi'],
    outfile: childScript, logLevel: 'warning',
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

interface ChildResult { results: Record<string, string>; signal: NodeJS.Signals | null; status: number | null; stderr: string }

/** Load `profile` in a fresh node process and run the probes there. */
function runChild(profile: Seccomp, probes: string[]): ChildResult {
  const r = spawnSync(process.execPath, [childScript, JSON.stringify(profile), ...probes], {
    encoding: 'utf8', timeout: 30_000,
    // The bundle leaves koffi external; NODE_PATH lets its require find it.
    // TMPDIR: the child's scratch directories go in `work`, removed in afterAll.
    env: { ...process.env, NODE_PATH: join(repoRoot, 'node_modules'), TMPDIR: work },
  });
  const results: Record<string, string> = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const { probe, result } = JSON.parse(line) as { probe: string; result: string };
    results[probe] = result;
  }
  return { results, signal: r.signal, status: r.status, stderr: r.stderr };
}

/** What Node's main thread, its workers and libuv call while idling and writing to stdout. */
const NODE_RUNTIME_SYSCALLS = [
  'read', 'write', 'writev', 'pwrite64', 'close', 'fstat', 'newfstatat', 'statx', 'fcntl', 'ioctl', 'fsync',
  'mmap', 'munmap', 'mprotect', 'madvise', 'brk', 'futex', 'sched_yield', 'nanosleep', 'clock_gettime', 'clock_nanosleep',
  'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'epoll_ctl', 'rt_sigprocmask', 'rt_sigaction', 'rt_sigreturn', 'sigaltstack',
  'getpid', 'gettid', 'tgkill', 'exit', 'exit_group',
];

describe('validateSeccomp', () => {
  const cases: Array<[string, unknown, string]> = [
    ['unknown action', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_FOO' }] },
      'seccomp: unknown action "SCMP_ACT_FOO" for syscalls [mkdir]'],
    ['unknown default action', { defaultAction: 'SCMP_ACT_NOPE' }, 'seccomp: unknown action "SCMP_ACT_NOPE" for defaultAction'],
    ['missing default action', { syscalls: [] }, 'seccomp: defaultAction is required'],
    ['unknown architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_Z80'] }, 'unknown architecture "SCMP_ARCH_Z80"'],
    ['unknown operator', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0, op: 'SCMP_CMP_ABOUT' }] }] },
      'unknown operator "SCMP_CMP_ABOUT" in syscalls[0].args[0] for syscalls [personality]'],
    ['argument index 6', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] },
      'syscalls[0].args[0].index must be an argument number 0-5'],
    ['negative value', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] },
      'syscalls[0].args[0].value must be a non-negative integer, got -1'],
    ['errnoRet too large', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 70000 }] },
      'syscalls[0].errnoRet must be an errno number between 0 and 4095, got 70000'],
    ['errnoRet on ALLOW', { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] },
      'errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE'],
    ['defaultErrnoRet on ALLOW', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, 'defaultErrnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW'],
    ['empty names', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] },
      'syscalls[0].names must be a non-empty array'],
    ['unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_FAST'] }, 'unknown flag "SECCOMP_FILTER_FLAG_FAST"'],
    ['flag libseccomp 2.5 cannot set', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] },
      'flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp 2.6'],
    ['NOTIFY without listenerPath', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] },
      'SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath'],
    ['NOTIFY as default', { defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/run/l.sock' }, 'SCMP_ACT_NOTIFY cannot be the default action'],
    ['NOTIFY on write', { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock', syscalls: [{ names: ['write'], action: 'SCMP_ACT_NOTIFY' }] },
      'SCMP_ACT_NOTIFY cannot be used for the write syscall'],
    ['not an object', 'SCMP_ACT_ALLOW', 'linux.seccomp must be an object'],
  ];
  for (const [what, profile, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => validateSeccomp(profile)).toThrow(message);
      // Compiling refuses it the same way, before libseccomp is asked anything.
      expect(() => compileSeccomp(profile as Seccomp)).toThrow(message);
    });
  }

  it('accepts a NOTIFY rule with a listener path', () => {
    const plan = planSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
    expect(plan.usesNotify).toBe(true);
    expect(plan.rules).toEqual([{ syscall: 'mkdir', action: 0x7fc00000, actionName: 'SCMP_ACT_NOTIFY', args: [] }]);
  });
});

describe('planSeccomp', () => {
  it('always synchronises all threads and leaves no_new_privs to the spec', () => {
    const plan = planSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] });
    // NNP=0, TSYNC=1, LOG=1, SSB=1 (enum scmp_filter_attr 3, 4, 6, 7)
    expect(plan.attributes).toEqual([[3, 0], [4, 1], [6, 1], [7, 1]]);
  });

  it('puts ERRNO and TRACE return values in the action, EPERM by default', () => {
    const plan = planSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38,
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' },
        { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['ptrace'], action: 'SCMP_ACT_TRACE', errnoRet: 5 },
        { names: ['reboot'], action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['kexec_load'], action: 'SCMP_ACT_KILL' },
      ],
    });
    expect(plan.defaultAction).toBe(0x00050026);
    expect(plan.rules.map((r) => r.action)).toEqual([0x00050001, 0x0005000d, 0x7ff00005, 0x80000000, 0]);
  });

  it('splits comparisons on the same argument into one rule each (any may match)', () => {
    const plan = planSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }, { index: 0, value: 10, op: 'SCMP_CMP_EQ' }] },
        { names: ['clone'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }, { index: 1, value: 0, op: 'SCMP_CMP_NE' }] },
      ],
    });
    expect(plan.rules.map((r) => [r.syscall, r.args])).toEqual([
      ['socket', [{ arg: 0, op: 4, datum_a: 2n, datum_b: 0n }]],
      ['socket', [{ arg: 0, op: 4, datum_a: 10n, datum_b: 0n }]],
      ['clone', [{ arg: 0, op: 7, datum_a: 0x10000000n, datum_b: 0x10000000n }, { arg: 1, op: 1, datum_a: 0n, datum_b: 0n }]],
    ]);
  });
});

describe('compileSeccomp', () => {
  /** The k fields of a classic BPF program (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k). */
  function constantsOf(bpf: Buffer): number[] {
    const ks: number[] = [];
    for (let off = 0; off + 8 <= bpf.length; off += 8) ks.push(bpf.readUInt32LE(off + 4));
    return ks;
  }
  const AUDIT_ARCH_X86_64 = 0xc000003e;
  const AUDIT_ARCH_I386 = 0x40000003;
  const NR_MKDIR_X86_64 = 83;

  it('exports a BPF program that checks the architecture and returns the errno', () => {
    const bpf = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] });
    expect(bpf.length % 8).toBe(0);
    const ks = constantsOf(bpf);
    expect(ks).toContain(AUDIT_ARCH_X86_64);
    expect(ks).not.toContain(AUDIT_ARCH_I386);
    expect(ks).toContain(NR_MKDIR_X86_64);
    expect(ks).toContain(0x0005000d);
    expect(ks).toContain(0x7fff0000);
  });

  it('adds every architecture the profile lists', () => {
    const bpf = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    const ks = constantsOf(bpf);
    expect(ks).toContain(AUDIT_ARCH_X86_64);
    expect(ks).toContain(AUDIT_ARCH_I386);
    expect(ks).toContain(39); // mkdir on i386
  });

  it('resolves every architecture the spec names, leaving out those of the other byte order', () => {
    const base = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    for (const arch of SECCOMP_ARCHITECTURES) {
      const bpf = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [arch], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
      // Big-endian architectures cannot share a filter with x86_64 (EDOM) and cannot run here.
      const bigEndian = /MIPS(64)?(N32)?$|PPC(64)?$|S390|PARISC/.test(arch) && !/MIPSEL/.test(arch);
      if (bigEndian || arch === 'SCMP_ARCH_X86_64') expect(bpf.equals(base), arch).toBe(true);
      else expect(bpf.equals(base), arch).toBe(false);
    }
  });

  it('skips syscall names libseccomp does not know, as runc does', () => {
    const withUnknown = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'no_such_syscall_berth'], action: 'SCMP_ACT_ERRNO' }] });
    const plain = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    expect(withUnknown.equals(plain)).toBe(true);
  });

  it('drops rules that repeat the default action', () => {
    const redundant = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }, { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    const plain = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    expect(redundant.equals(plain)).toBe(true);
  });

  it('explains the filter as libseccomp pseudo code', () => {
    const text = explainSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0, op: 'SCMP_CMP_NE' }] }] });
    expect(text).toContain('personality');
    expect(text).toContain('action ERRNO(1)');
  });

  it('reports its features in runc features shape', () => {
    const f = seccompFeatures();
    expect(f.enabled).toBe(true);
    expect(f.libseccomp).toMatchObject({ major: 2 });
    expect(f.actions).toContain('SCMP_ACT_KILL_PROCESS');
    expect(f.supportedFlags).not.toContain('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV');
  });
});

describe('loadSeccomp in a child process', () => {
  it('blocks syscalls with ERRNO and honours argument conditions', () => {
    const r = runChild({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 0, op: 'SCMP_CMP_NE' }] },
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }, { index: 0, value: 10, op: 'SCMP_CMP_EQ' }] },
      ],
    }, ['mkdir', 'personality-0', 'personality-query', 'socket-unix', 'socket-inet', 'socket-inet6', 'status']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.results).toEqual({
      loaded: 'ok',
      mkdir: 'EPERM',
      'personality-0': 'ok',
      'personality-query': 'EINVAL',
      'socket-unix': 'ok',
      'socket-inet': 'EACCES',
      'socket-inet6': 'EACCES',
      // Filter mode 2, and loading it did not switch on no_new_privs.
      status: 'Seccomp=2 NoNewPrivs=0',
    });
  });

  it('passes the filter on to what the process forks and execs', () => {
    const r = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 30 }] }, ['exec-mkdir']);
    expect(r.results['exec-mkdir']).toMatch(/Read-only file system/);
  });

  it('filters threads that existed before the load (TSYNC)', () => {
    const r = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] },
      ['mkdir-worker', 'mkdir-threadpool']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.results).toEqual({ loaded: 'ok', 'mkdir-worker': 'EPERM', 'mkdir-threadpool': 'EPERM' });
  });

  it('requires every comparison on different arguments to hold (AND), with GE and LT', () => {
    // Refuse stream sockets (type < 2) of address families >= AF_INET, and nothing else.
    const r = runChild({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 2, op: 'SCMP_CMP_GE' }, { index: 1, value: 2, op: 'SCMP_CMP_LT' }] }],
    }, ['socket-unix', 'socket-inet', 'socket-inet-dgram', 'socket-inet6']);
    expect(r.results).toEqual({ loaded: 'ok', 'socket-unix': 'ok', 'socket-inet': 'EAFNOSUPPORT', 'socket-inet-dgram': 'ok', 'socket-inet6': 'EAFNOSUPPORT' });
  });

  it('compares arguments with MASKED_EQ', () => {
    // Refuse directories with the sticky bit: (mode & 01000) == 01000.
    const r = runChild({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o1000, valueTwo: 0o1000, op: 'SCMP_CMP_MASKED_EQ' }] }],
    }, ['mkdir', 'mkdir-sticky']);
    expect(r.results).toEqual({ loaded: 'ok', mkdir: 'ok', 'mkdir-sticky': 'EPERM' });
  });

  it('default-deny with an allow list refuses everything else with the default errno', () => {
    const r = runChild({
      defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38,
      syscalls: [{ names: [...NODE_RUNTIME_SYSCALLS, 'openat', 'lseek'], action: 'SCMP_ACT_ALLOW' }],
    }, ['status', 'mkdir', 'socket-unix']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.results).toEqual({ loaded: 'ok', status: 'Seccomp=2 NoNewPrivs=0', mkdir: 'ENOSYS', 'socket-unix': 'ENOSYS' });
  });

  it('default-deny KILL_PROCESS kills the process with SIGSYS on a call off the allow list', () => {
    const r = runChild({
      defaultAction: 'SCMP_ACT_KILL_PROCESS',
      syscalls: [{ names: NODE_RUNTIME_SYSCALLS, action: 'SCMP_ACT_ALLOW' }],
    }, ['mkdir']);
    expect(r.results.loaded).toBe('ok');
    expect(r.results.mkdir).toBeUndefined();
    expect(r.signal).toBe('SIGSYS');
  });

  it('hands back the user-notification fd for SCMP_ACT_NOTIFY', () => {
    const r = runChild({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/berth-test.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }, ['notify-fd']);
    expect(r.results).toEqual({ loaded: 'ok', 'notify-fd': 'anon_inode:seccomp notify' });
    const none = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }, ['notify-fd']);
    expect(none.results['notify-fd']).toBe('none');
  });

  it('TRAP raises SIGSYS, TRACE without a tracer fails with ENOSYS, LOG allows', () => {
    const trap = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_TRAP' }] }, ['mkdir']);
    expect(trap.results.loaded).toBe('ok');
    expect(trap.signal).toBe('SIGSYS');
    const trace = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_TRACE' }] }, ['mkdir']);
    expect(trace.results).toEqual({ loaded: 'ok', mkdir: 'ENOSYS' });
    const logged = runChild({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_LOG' }] }, ['mkdir']);
    expect(logged.results).toEqual({ loaded: 'ok', mkdir: 'ok' });
  });
});
