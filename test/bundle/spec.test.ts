import { describe, expect, test } from 'vitest';
import { validateRuntimeSpec, type ImageConfig, type RuntimeSpec } from '@berth/oci-spec';
import { DEFAULT_CAPABILITIES, MASKED_PATHS } from '../../tools/bundle-generator/src/defaults.ts';
import { buildSpec, capabilitySet, etcFiles, processArgs, type BundleOptions, type SpecContext } from '../../tools/bundle-generator/src/spec.ts';
import { RLIM_INFINITY } from '../../tools/bundle-generator/src/options.ts';
import { serializeSpec } from '../../tools/bundle-generator/src/generate.ts';

/**
 * Image config × options → config.json, without root or a filesystem: the
 * rootfs's /etc files come from a map. Every spec built here must also pass
 * validateRuntimeSpec.
 */

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ntux:x:1000:1000:tux:/home/tux:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nwheel:x:10:tux,root\naudio:x:29:tux\ntux:x:1000:\nstaff:x:50:\n';

function image(config: ImageConfig['config'] = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } };
}

function options(o: Partial<BundleOptions> = {}): BundleOptions {
  return { env: [], command: [], mounts: [], readOnly: false, capAdd: [], capDrop: [], privileged: false, ulimits: [], sysctls: {}, ...o };
}

function context(img: ImageConfig, files: Record<string, string> = { '/etc/passwd': PASSWD, '/etc/group': GROUP }, host: Partial<SpecContext['host']> = {}): SpecContext {
  return {
    id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
    image: img,
    rootPath: 'rootfs',
    rootfsFile: (p) => files[p],
    bundleDir: '/b',
    host: {
      limits: { hard: new Map([['RLIMIT_NOFILE', 20000], ['RLIMIT_NPROC', 96364]]), canRaise: false },
      arch: 'x64', kernel: '6.18.0', hostname: 'thehost', cgroupV2: false, swapAccounting: true, lastCap: 40,
      ...host,
    },
  };
}

function build(img: ImageConfig, o: Partial<BundleOptions> = {}, ctx?: SpecContext): RuntimeSpec {
  const { spec } = buildSpec(options(o), ctx ?? context(img));
  return validateRuntimeSpec(JSON.parse(serializeSpec(spec)));
}

describe('process args: Entrypoint and Cmd as podman combines them', () => {
  const img = image({ Entrypoint: ['/bin/ep'], Cmd: ['--default'] });
  test('image Entrypoint + Cmd', () => expect(processArgs(img, { command: [] })).toEqual(['/bin/ep', '--default']));
  test('a command replaces Cmd only', () => expect(processArgs(img, { command: ['x', 'y'] })).toEqual(['/bin/ep', 'x', 'y']));
  test('--entrypoint replaces Entrypoint and drops the image Cmd', () => expect(processArgs(img, { entrypoint: ['/bin/sh'], command: [] })).toEqual(['/bin/sh']));
  test('--entrypoint with a command', () => expect(processArgs(img, { entrypoint: ['/bin/sh', '-c'], command: ['echo hi'] })).toEqual(['/bin/sh', '-c', 'echo hi']));
  test('--entrypoint "" clears the Entrypoint', () => expect(processArgs(img, { entrypoint: [], command: ['ls'] })).toEqual(['ls']));
  test('nothing to run is a usage error', () => {
    expect(() => processArgs(image({}), { command: [] })).toThrow(/no command or entrypoint provided/);
  });
});

describe('environment', () => {
  test('PATH is added when the image has none; HOME from passwd; HOSTNAME', () => {
    const spec = build(image({ Cmd: ['sh'] }));
    expect(spec.process!.env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(spec.process!.env).toContain('HOME=/root');
    expect(spec.process!.env).toContain('HOSTNAME=a1b2c3d4e5f6');
  });
  test('the image PATH is kept and -e overrides image values in place', () => {
    const spec = build(image({ Cmd: ['sh'], Env: ['PATH=/opt/bin', 'A=image', 'B=keep'] }), { env: ['A=user', 'C=new'] });
    expect(spec.process!.env!.slice(0, 4)).toEqual(['PATH=/opt/bin', 'A=user', 'B=keep', 'C=new']);
  });
  test('HOME from the env wins over passwd', () => {
    expect(build(image({ Cmd: ['sh'] }), { env: ['HOME=/x'] }).process!.env).toContain('HOME=/x');
  });
});

describe('working directory and user', () => {
  test('image WorkingDir, overridden by -w', () => {
    expect(build(image({ Cmd: ['sh'], WorkingDir: '/srv' })).process!.cwd).toBe('/srv');
    expect(build(image({ Cmd: ['sh'], WorkingDir: '/srv' }), { workdir: '/tmp' }).process!.cwd).toBe('/tmp');
    expect(build(image({ Cmd: ['sh'] })).process!.cwd).toBe('/');
  });
  test('image User by name, with supplementary groups from /etc/group', () => {
    const spec = build(image({ Cmd: ['sh'], User: 'tux' }));
    expect(spec.process!.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    expect(spec.process!.env).toContain('HOME=/home/tux');
  });
  test('-u overrides the image User; user:group by name and by number', () => {
    expect(build(image({ Cmd: ['sh'], User: 'tux' }), { user: 'nobody:staff' }).process!.user).toMatchObject({ uid: 65534, gid: 50 });
    expect(build(image({ Cmd: ['sh'] }), { user: '1000:29' }).process!.user).toMatchObject({ uid: 1000, gid: 29 });
  });
  test('root by default, in its groups', () => {
    expect(build(image({ Cmd: ['sh'] })).process!.user).toEqual({ uid: 0, gid: 0, additionalGids: [0, 10] });
  });
  test('a numeric uid unknown to passwd runs with gid 0', () => {
    expect(build(image({ Cmd: ['sh'] }), { user: '4242' }).process!.user).toEqual({ uid: 4242, gid: 0, additionalGids: [0] });
  });
  test('a missing user fails with podman\'s message', () => {
    expect(() => build(image({ Cmd: ['sh'] }), { user: 'ghost' })).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => build(image({ Cmd: ['sh'], User: 'ghost' }))).toThrow('unable to find user ghost: no matching entries in passwd file');
  });
  test('a missing group fails naming the group file', () => {
    expect(() => build(image({ Cmd: ['sh'] }), { user: 'tux:ghosts' })).toThrow('unable to find group ghosts: no matching entries in group file');
  });
  test('an image without /etc/passwd can still run as a numeric user, not as a name', () => {
    const img = image({ Cmd: ['sh'] });
    expect(build(img, { user: '7' }, context(img, {})).process!.user.uid).toBe(7);
    expect(() => build(img, { user: 'tux' }, context(img, {}))).toThrow(/unable to find user tux/);
  });
});

describe('annotations from the image config', () => {
  test('ExposedPorts, StopSignal, Volumes, Labels and the platform', () => {
    const spec = build(image({ Cmd: ['sh'], ExposedPorts: { '8080/tcp': {}, '53/udp': {} }, StopSignal: 'SIGQUIT', Volumes: { '/data': {}, '/cache': {} }, Labels: { 'com.example.team': 'infra' } }));
    expect(spec.annotations).toMatchObject({
      'org.opencontainers.image.exposedPorts': '53/udp,8080/tcp',
      'org.opencontainers.image.stopSignal': 'SIGQUIT',
      'io.berth.image.volumes': '/cache,/data',
      'com.example.team': 'infra',
      'org.opencontainers.image.os': 'linux',
      'org.opencontainers.image.architecture': 'amd64',
    });
  });
  test('the image\'s own StopSignal wins over a label with the same key', () => {
    const spec = build(image({ Cmd: ['sh'], StopSignal: 'SIGINT', Labels: { 'org.opencontainers.image.stopSignal': 'SIGHUP' } }));
    expect(spec.annotations!['org.opencontainers.image.stopSignal']).toBe('SIGINT');
  });
  test('image Volumes do not become mounts', () => {
    const spec = build(image({ Cmd: ['sh'], Volumes: { '/data': {} } }));
    expect(spec.mounts!.some((m) => m.destination === '/data')).toBe(false);
  });
});

describe('capabilities', () => {
  test('podman\'s default set in every set but inheritable and ambient', () => {
    const caps = build(image({ Cmd: ['sh'] })).process!.capabilities!;
    expect([...caps.bounding!].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(caps.effective).toEqual(caps.bounding);
    expect(caps.permitted).toEqual(caps.bounding);
    expect(caps.inheritable).toEqual([]);
    expect(caps.ambient).toEqual([]);
  });
  test('--cap-add and --cap-drop', () => {
    const caps = capabilitySet({ capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_CHOWN'], privileged: false }, 40);
    expect(caps).toContain('CAP_NET_ADMIN');
    expect(caps).not.toContain('CAP_CHOWN');
  });
  test('--cap-drop ALL then add one', () => {
    expect(capabilitySet({ capAdd: ['CAP_KILL'], capDrop: ['ALL'], privileged: false }, 40)).toEqual(['CAP_KILL']);
  });
  test('--privileged: every capability the kernel knows, no seccomp, no masked paths, rw sysfs', () => {
    const spec = build(image({ Cmd: ['sh'] }), { privileged: true }, context(image({ Cmd: ['sh'] }), undefined, { lastCap: 37 }));
    expect(spec.process!.capabilities!.bounding).toHaveLength(38);
    expect(spec.linux!.seccomp).toBeUndefined();
    expect(spec.linux!.maskedPaths).toBeUndefined();
    expect(spec.mounts!.find((m) => m.destination === '/sys')!.options).toContain('rw');
    expect(spec.linux!.resources!.devices).toEqual([{ allow: true, access: 'rwm' }]);
  });
});

describe('secure defaults', () => {
  const spec = build(image({ Cmd: ['sh'] }));
  test('namespaces: pid, private network, ipc, uts, mount (no cgroupns on cgroup v1)', () => {
    expect(spec.linux!.namespaces).toEqual([{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]);
  });
  test('a cgroup namespace on cgroup v2 hosts', () => {
    const img = image({ Cmd: ['sh'] });
    expect(build(img, {}, context(img, undefined, { cgroupV2: true })).linux!.namespaces).toContainEqual({ type: 'cgroup' });
  });
  test('masked and read-only paths', () => {
    expect(spec.linux!.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/proc/keys', '/sys/firmware']));
    expect(spec.linux!.maskedPaths).toEqual(MASKED_PATHS);
    expect(spec.linux!.readonlyPaths).toEqual(expect.arrayContaining(['/proc/sys', '/proc/sysrq-trigger']));
  });
  test('standard mounts, read-only sysfs and cgroup, and the generated /etc files bound from the bundle', () => {
    const byDest = new Map(spec.mounts!.map((m) => [m.destination, m]));
    expect([...byDest.keys()].slice(0, 10)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);
    expect(byDest.get('/sys')!.options).toContain('ro');
    expect(byDest.get('/sys/fs/cgroup')!.options).toContain('ro');
    expect(byDest.get('/etc/hosts')).toMatchObject({ type: 'bind', source: '/b/hosts' });
  });
  test('hostname is the short id; cgroupsPath /berth/ID', () => {
    expect(spec.hostname).toBe('a1b2c3d4e5f6');
    expect(spec.linux!.cgroupsPath).toBe('/berth/a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90');
  });
  test('device cgroup denies all but the standard devices; pids limited to 2048', () => {
    expect(spec.linux!.resources!.devices![0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux!.resources!.devices).toContainEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    expect(spec.linux!.resources!.pids).toEqual({ limit: 2048 });
  });
  test('seccomp: the default allow-list with EPERM for the rest, x86 family architectures', () => {
    const s = spec.linux!.seccomp!;
    expect(s.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s.defaultErrnoRet).toBe(1);
    expect(s.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const allowed = new Set(s.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
    for (const ok of ['read', 'write', 'execve', 'openat', 'arch_prctl']) expect(allowed).toContain(ok);
    const blockedCalls = ['mount', 'umount2', 'pivot_root', 'reboot', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
      'add_key', 'keyctl', 'request_key', 'unshare', 'setns', 'swapon', 'swapoff', 'acct', 'bpf', 'perf_event_open', 'open_by_handle_at',
      'userfaultfd', 'io_uring_setup', 'settimeofday', 'clock_settime', 'iopl', 'ioperm', 'process_vm_readv'];
    for (const blocked of blockedCalls) expect(allowed).not.toContain(blocked);
  });
  test('seccomp: clone may not create namespaces, clone3 answers ENOSYS, personality only for safe domains', () => {
    const s = spec.linux!.seccomp!;
    const clone = s.syscalls!.filter((r) => r.names.includes('clone'));
    expect(clone).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    expect(s.syscalls!.find((r) => r.names.includes('clone3'))).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    const personality = s.syscalls!.filter((r) => r.names.includes('personality')).map((r) => r.args![0]!.value);
    expect(personality.sort((a, b) => a - b)).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
  });
  test('seccomp follows capabilities: CAP_SYS_ADMIN allows mount and plain clone', () => {
    const s = build(image({ Cmd: ['sh'] }), { capAdd: ['CAP_SYS_ADMIN'] }).linux!.seccomp!;
    const allowed = s.syscalls!.filter((r) => !r.args).flatMap((r) => r.names);
    expect(allowed).toEqual(expect.arrayContaining(['mount', 'unshare', 'setns', 'clone', 'clone3']));
  });
  test('seccomp on aarch64 lists arm and the arm-only calls', () => {
    const img = image({ Cmd: ['sh'] });
    const s = build(img, {}, context(img, undefined, { arch: 'arm64' })).linux!.seccomp!;
    expect(s.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const names = s.syscalls!.flatMap((r) => r.names);
    expect(names).toContain('set_tls');
    expect(names).not.toContain('arch_prctl');
  });
  test('--security-opt seccomp=unconfined and no-new-privileges', () => {
    const spec2 = build(image({ Cmd: ['sh'] }), { seccomp: 'unconfined', noNewPrivileges: true });
    expect(spec2.linux!.seccomp).toBeUndefined();
    expect(spec2.process!.noNewPrivileges).toBe(true);
    expect(spec.process!.noNewPrivileges).toBe(false);
  });
  test('a user seccomp profile in podman\'s format is resolved to plain OCI', () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['chmod'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_SYS_ADMIN'] } },
    ] };
    const s = build(image({ Cmd: ['sh'] }), { seccomp: { profile, source: 'p.json' } }).linux!.seccomp!;
    expect(s).toEqual({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] });
  });
});

describe('rlimits', () => {
  test('defaults capped at the caller\'s hard limits when it lacks CAP_SYS_RESOURCE', () => {
    const spec = build(image({ Cmd: ['sh'] }));
    expect(spec.process!.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
      { type: 'RLIMIT_NPROC', soft: 96364, hard: 96364 },
    ]);
  });
  test('podman\'s defaults when the caller can raise its limits', () => {
    const img = image({ Cmd: ['sh'] });
    const spec = build(img, {}, context(img, undefined, { limits: { hard: new Map([['RLIMIT_NOFILE', 1024]]), canRaise: true } }));
    expect(spec.process!.rlimits![0]).toEqual({ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 });
  });
  test('--ulimit within the hard limit replaces the default', () => {
    const spec = build(image({ Cmd: ['sh'] }), { ulimits: [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }] });
    expect(spec.process!.rlimits).toContainEqual({ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 });
    expect(spec.process!.rlimits).toContainEqual({ type: 'RLIMIT_CORE', soft: 0, hard: 0 });
  });
  test('--ulimit above the caller\'s hard limit is a clear error', () => {
    expect(() => build(image({ Cmd: ['sh'] }), { ulimits: [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }] }))
      .toThrow(/--ulimit nofile=1048576:1048576: the hard limit is above the caller's hard limit 20000 .*CAP_SYS_RESOURCE/);
  });
  test('unlimited is written as the exact RLIM_INFINITY that runc\'s uint64 accepts', () => {
    const img = image({ Cmd: ['sh'] });
    const { spec } = buildSpec(options({ ulimits: [{ type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY }] }), context(img, undefined, { limits: { hard: new Map(), canRaise: false } }));
    expect(serializeSpec(spec)).toContain('"soft": 18446744073709551615');
    expect(serializeSpec(spec)).not.toContain('18446744073709552000');
  });
});

describe('resources, network, pod, mounts', () => {
  test('--memory without swap, --cpus quota, --pids-limit', () => {
    const r = build(image({ Cmd: ['sh'] }), { memory: 64 << 20, cpus: { quota: 150000, period: 100000 }, pidsLimit: 100 }).linux!.resources!;
    expect(r.memory).toEqual({ limit: 64 << 20, swap: 64 << 20 });
    expect(r.cpu).toEqual({ quota: 150000, period: 100000 });
    expect(r.pids).toEqual({ limit: 100 });
  });
  test('no memsw on cgroup v1 without swap accounting: only the limit', () => {
    const img = image({ Cmd: ['sh'] });
    expect(build(img, { memory: 64 << 20 }, context(img, undefined, { swapAccounting: false })).linux!.resources!.memory).toEqual({ limit: 64 << 20 });
  });
  test('--network host: no network namespace, the host\'s hostname', () => {
    const spec = build(image({ Cmd: ['sh'] }), { network: { mode: 'host' } });
    expect(spec.linux!.namespaces!.map((n) => n.type)).not.toContain('network');
    expect(spec.hostname).toBe('thehost');
  });
  test('--network ns:PATH joins that namespace', () => {
    expect(build(image({ Cmd: ['sh'] }), { network: { mode: 'ns', path: '/run/netns/x' } }).linux!.namespaces).toContainEqual({ type: 'network', path: '/run/netns/x' });
  });
  test('--pod joins the pod\'s network, ipc and uts namespaces and leaves its hostname alone', () => {
    const spec = build(image({ Cmd: ['sh'] }), { pod: { network: '/proc/1/ns/net', ipc: '/proc/1/ns/ipc', uts: '/proc/1/ns/uts' } });
    expect(spec.linux!.namespaces).toEqual(expect.arrayContaining([
      { type: 'network', path: '/proc/1/ns/net' }, { type: 'ipc', path: '/proc/1/ns/ipc' }, { type: 'uts', path: '/proc/1/ns/uts' },
    ]));
    // The runtime must not call sethostname in the pod's UTS namespace; /etc/hostname gets the pod's name.
    expect(spec.hostname).toBeUndefined();
    const podded = buildSpec(options({ pod: { uts: '/proc/1/ns/uts', hostname: 'mypod' } }), context(image({ Cmd: ['sh'] })));
    expect(podded.hostname).toBe('mypod');
    expect(podded.spec.process!.env).toContain('HOSTNAME=mypod');
    expect(() => build(image({ Cmd: ['sh'] }), { pod: { uts: '/proc/1/ns/uts' }, hostname: 'x' })).toThrow(/pod owns the hostname/);
    expect(() => build(image({ Cmd: ['sh'] }), { pod: { network: '/proc/1/ns/net' }, network: { mode: 'host' } })).toThrow(/conflicts with --pod/);
  });
  test('user mounts come after the defaults and replace a default on the same destination', () => {
    const spec = build(image({ Cmd: ['sh'] }), { mounts: [
      { destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
    ] });
    const dests = spec.mounts!.map((m) => m.destination);
    expect(dests.filter((d) => d === '/dev/shm')).toHaveLength(1);
    expect(spec.mounts!.find((m) => m.destination === '/dev/shm')!.options).toEqual(['size=1m']);
    expect(dests.indexOf('/data')).toBeGreaterThan(dests.indexOf('/etc/resolv.conf'));
  });
  test('duplicate destinations are refused', () => {
    const m = { destination: '/d', type: 'tmpfs', source: 'tmpfs', options: [] };
    expect(() => build(image({ Cmd: ['sh'] }), { mounts: [m, { ...m }] })).toThrow('duplicate mount destination /d');
  });
  test('--read-only: read-only root with tmpfs on /run, /tmp, /var/tmp', () => {
    const spec = build(image({ Cmd: ['sh'] }), { readOnly: true });
    expect(spec.root).toEqual({ path: 'rootfs', readonly: true });
    for (const d of ['/run', '/tmp', '/var/tmp']) expect(spec.mounts!.find((m) => m.destination === d)?.type).toBe('tmpfs');
  });
  test('--init runs the init as PID 1 in front of the command', () => {
    const spec = build(image({ Cmd: ['sh'] }), { init: '/usr/bin/catatonit' });
    expect(spec.process!.args).toEqual(['/run/berth-init', '--', 'sh']);
    expect(spec.mounts!.find((m) => m.destination === '/run/berth-init')).toMatchObject({ source: '/usr/bin/catatonit', type: 'bind' });
  });
  test('--hostname, --sysctl', () => {
    const spec = build(image({ Cmd: ['sh'] }), { hostname: 'web-1', sysctls: { 'net.ipv4.ip_forward': '1' } });
    expect(spec.hostname).toBe('web-1');
    expect(spec.linux!.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(() => build(image({ Cmd: ['sh'] }), { hostname: 'bad_name!' })).toThrow(/--hostname "bad_name!": not a valid hostname/);
  });
  test('a non-linux image is refused', () => {
    expect(() => build({ ...image({ Cmd: ['x'] }), os: 'windows' })).toThrow(/berth runs linux images only/);
  });
});

describe('generated /etc files', () => {
  test('hosts names the container; resolv.conf drops loopback nameservers in a private network', () => {
    const f = etcFiles('box', { hostNetwork: false, hostResolv: 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n' });
    expect(f.hosts).toContain('127.0.0.1\tlocalhost');
    expect(f.hosts).toContain('127.0.1.1\tbox\n');
    expect(f.hostname).toBe('box\n');
    expect(f.resolvConf).toBe('nameserver 10.0.0.2\nsearch example.org\n');
  });
  test('with the host network the host\'s hosts and resolv.conf are kept', () => {
    const f = etcFiles('h', { hostNetwork: true, hostHosts: '10.1.1.1 db\n', hostResolv: 'nameserver 127.0.0.53\n' });
    expect(f.hosts.startsWith('10.1.1.1 db\n')).toBe(true);
    expect(f.resolvConf).toBe('nameserver 127.0.0.53\n');
  });
});
