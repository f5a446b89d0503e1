import { describe, expect, test } from 'vitest';
import { BerthUsageError } from '@berth/cli-kit';
import {
  mergeEnv, parseCapability, parseCpus, parseEntrypoint, parseEnvFile, parseEnvFlag, parseMemory, parseMountFlag,
  parseNetwork, parsePidsLimit, parseSecurityOpt, parseSysctl, parseTmpfs, parseUlimit, parseVolume, RLIM_INFINITY,
} from '../../tools/bundle-generator/src/options.ts';
import { parseProcLimits } from '../../tools/bundle-generator/src/rlimits.ts';
import { resolveInRoot } from '../../tools/bundle-generator/src/rootfs-path.ts';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Each flag's parser: what it accepts, and that a wrong value is a usage error naming the flag and the form. */

function usageError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(BerthUsageError);
  expect((err as Error).message).toMatch(pattern);
}

describe('-e/--env and --env-file', () => {
  test('KEY=VALUE, and KEY passes the caller\'s value or nothing', () => {
    expect(parseEnvFlag('A=b=c', '-e', {})).toBe('A=b=c');
    expect(parseEnvFlag('HOSTVAR', '-e', { HOSTVAR: 'x' })).toBe('HOSTVAR=x');
    expect(parseEnvFlag('UNSET', '-e', {})).toBeUndefined();
    usageError(() => parseEnvFlag('=x', '-e/--env', {}), /-e\/--env "=x": .*expected KEY=VALUE or KEY/);
  });
  test('env files skip comments and blank lines; errors name the line', () => {
    expect(parseEnvFile('# c\n\nA=1\r\nB\n', 'f', { B: '2' })).toEqual(['A=1', 'B=2']);
    usageError(() => parseEnvFile('A=1\nBAD NAME=2\n', 'f.env', {}), /--env-file f.env:2/);
  });
  test('later values win, the first position is kept', () => {
    expect(mergeEnv(['A=1', 'B=1'], ['A=2'])).toEqual(['A=2', 'B=1']);
  });
});

describe('--entrypoint', () => {
  test('a program, a JSON array, or "" to clear', () => {
    expect(parseEntrypoint('/bin/sh')).toEqual(['/bin/sh']);
    expect(parseEntrypoint('["/bin/sh","-c"]')).toEqual(['/bin/sh', '-c']);
    expect(parseEntrypoint('')).toEqual([]);
    usageError(() => parseEntrypoint('["/bin/sh",'), /--entrypoint .*not a valid JSON array/);
  });
});

describe('sizes, cpus, pids, ulimits', () => {
  test('--memory takes podman units', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 * 1024);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('10485760')).toBe(10485760);
    usageError(() => parseMemory('lots'), /--memory "lots": is not a size/);
    usageError(() => parseMemory('1m'), /minimum memory limit is 6m/);
  });
  test('--cpus becomes a CFS quota per 100ms period', () => {
    expect(parseCpus('1.5')).toEqual({ quota: 150000, period: 100000 });
    usageError(() => parseCpus('-1'), /--cpus "-1"/);
  });
  test('--pids-limit', () => {
    expect(parsePidsLimit('64')).toBe(64);
    expect(parsePidsLimit('0')).toBe(-1);
    usageError(() => parsePidsLimit('many'), /--pids-limit "many"/);
  });
  test('--ulimit NAME=SOFT[:HARD]', () => {
    expect(parseUlimit('nofile=1024:4096')).toEqual({ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 });
    expect(parseUlimit('core=0')).toEqual({ type: 'RLIMIT_CORE', soft: 0, hard: 0 });
    expect(parseUlimit('memlock=-1:-1')).toEqual({ type: 'RLIMIT_MEMLOCK', soft: RLIM_INFINITY, hard: RLIM_INFINITY });
    usageError(() => parseUlimit('files=1'), /--ulimit "files=1": unknown limit "files"/);
    usageError(() => parseUlimit('nofile=10:5'), /soft limit 10 is above hard limit 5/);
    usageError(() => parseUlimit('nofile'), /expected NAME=SOFT\[:HARD\]/);
  });
  test('the caller\'s hard limits from /proc/self/limits', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 20000                files     \nMax core file size        0                    unlimited            bytes     \n';
    const hard = parseProcLimits(text);
    expect(hard.get('RLIMIT_NOFILE')).toBe(20000);
    expect(hard.get('RLIMIT_CORE')).toBe(RLIM_INFINITY);
  });
});

describe('capabilities, network, security options, sysctls', () => {
  test('capability names in podman\'s spellings', () => {
    expect(parseCapability('net_admin', '--cap-add')).toBe('CAP_NET_ADMIN');
    expect(parseCapability('CAP_SYS_TIME', '--cap-add')).toBe('CAP_SYS_TIME');
    expect(parseCapability('all', '--cap-drop')).toBe('ALL');
    usageError(() => parseCapability('FLY', '--cap-add'), /--cap-add "FLY": unknown capability/);
  });
  test('--network', () => {
    expect(parseNetwork('none')).toEqual({ mode: 'none' });
    expect(parseNetwork('host')).toEqual({ mode: 'host' });
    expect(parseNetwork('ns:/run/netns/a')).toEqual({ mode: 'ns', path: '/run/netns/a' });
    usageError(() => parseNetwork('bridge'), /--network "bridge": unknown network mode \(expected none, host or ns:PATH/);
    usageError(() => parseNetwork('ns:relative'), /must be absolute/);
  });
  test('--security-opt', () => {
    expect(parseSecurityOpt(['no-new-privileges', 'seccomp=unconfined'])).toEqual({ noNewPrivileges: true, seccomp: 'unconfined' });
    expect(parseSecurityOpt(['seccomp=/p.json', 'label=disable'])).toEqual({ seccomp: '/p.json' });
    usageError(() => parseSecurityOpt(['privileged']), /--security-opt "privileged": unknown security option/);
  });
  test('--sysctl only for namespaced keys', () => {
    expect(parseSysctl('net.ipv4.ip_forward=1', { hostNetwork: false, hostIpc: false })).toEqual(['net.ipv4.ip_forward', '1']);
    expect(parseSysctl('kernel.shmmax=1000', { hostNetwork: false, hostIpc: false })).toEqual(['kernel.shmmax', '1000']);
    usageError(() => parseSysctl('vm.swappiness=1', { hostNetwork: false, hostIpc: false }), /is not namespaced/);
    usageError(() => parseSysctl('net.core.somaxconn=1', { hostNetwork: true, hostIpc: false }), /--network host/);
  });
});

describe('mount flags', () => {
  test('-v SRC:DST[:ro] is an rbind, rprivate unless told', () => {
    expect(parseVolume('/srv:/data')).toEqual({ destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'rprivate'] });
    expect(parseVolume('/srv:/data:ro,rslave,z')).toEqual({ destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'rslave', 'ro'] });
    usageError(() => parseVolume('myvol:/data'), /not an absolute host path \(named volumes are not supported\)/);
    usageError(() => parseVolume('/srv'), /needs a source and a destination/);
    usageError(() => parseVolume('/srv:/d:rw,ro'), /ro\/rw given twice/);
    usageError(() => parseVolume('/srv:/d:sideways'), /unknown option "sideways"/);
  });
  test('--mount bind and tmpfs', () => {
    expect(parseMountFlag('type=bind,source=/a,target=/b,readonly')).toEqual({ destination: '/b', type: 'bind', source: '/a', options: ['rbind', 'rprivate', 'ro'] });
    expect(parseMountFlag('type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777')).toEqual({ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev', 'size=1048576', 'mode=1777'] });
    usageError(() => parseMountFlag('type=volume,target=/v'), /--mount .*unsupported mount type "volume"/);
    usageError(() => parseMountFlag('type=bind,target=/v'), /needs an absolute source/);
    usageError(() => parseMountFlag('type=bind,src=/a,target=/b,colour=red'), /unknown field "colour"/);
  });
  test('--tmpfs DST[:OPTIONS]', () => {
    expect(parseTmpfs('/run')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'noexec', 'nosuid', 'nodev'] });
    expect(parseTmpfs('/run:size=1m')).toMatchObject({ options: ['size=1m'] });
    usageError(() => parseTmpfs('run'), /--tmpfs "run": the destination must be an absolute path/);
  });
});

describe('paths inside the rootfs', () => {
  test('symlinks resolve inside the rootfs, never to the host', () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-rootfs-'));
    try {
      mkdirSync(join(root, 'real'));
      writeFileSync(join(root, 'real', 'passwd'), 'x');
      symlinkSync('/real', join(root, 'etc'));
      symlinkSync('../../../../../etc/shadow', join(root, 'escape'));
      expect(resolveInRoot(root, '/etc/passwd')).toBe(join(root, 'real', 'passwd'));
      // ../ past the rootfs stays at the rootfs, and /etc is itself a link to /real.
      expect(resolveInRoot(root, '/escape')).toBe(join(root, 'real', 'shadow'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
