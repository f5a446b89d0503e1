import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, repoRoot, runTool, tempDir } from '../helpers/run.ts';
import { berthAs, makeUser, type TestUser } from '../rootless/users.ts';
import { bytesSizeGo, goDuration, humanSizeGo, parseNetDev } from '../../tools/berth/src/stats-sample.ts';
import { toYaml } from '../../tools/berth/src/commands/system.ts';
import { Berth, httpGet, pushGuideImages, until } from './fixtures.ts';

// `berth stats`, `berth version` and `berth info` as podman 4.3 prints them,
// with the numbers checked against the kernel and the host: a memory limit
// read back from the cgroup, CPU time of a spinning and an idle container,
// the task count, bytes through the container's own network namespace (and
// not its loopback), and host/store facts against uname, nproc, the runtime's
// own --version and what the store holds.
let reg: TestRegistry;
const layout = tempDir('berth-engine-stats-layout-');
const berth = new Berth();
let plain = '';
const suffix = randomBytes(3).toString('hex');

beforeAll(async () => {
  reg = await startRegistry();
  plain = (await pushGuideImages(reg, layout.path)).plain;
  berth.ok('pull', '--tls-verify=false', plain);
}, 120_000);

afterAll(async () => {
  await berth.cleanup();
  await reg?.stop();
  layout.cleanup();
});

interface StatsRow { id: string; name: string; cpu_time: string; cpu_percent: string; avg_cpu: string; mem_usage: string; mem_percent: string; net_io: string; block_io: string; pids: string }

function statsJson(...names: string[]): StatsRow[] {
  return JSON.parse(berth.ok('stats', '--no-stream', '--format', 'json', ...names)) as StatsRow[];
}

/** One field of one container, through a Go template (the raw numbers of podman's ContainerStats). */
function field(name: string, template: string): string {
  return berth.ok('stats', '--no-stream', '--format', template, name).trim();
}

/** "249.9kB" -> 249900, as podman's sizes read. */
function bytes(text: string): number {
  const m = /^([\d.]+)(B|kB|MB|GB|TB)$/.exec(text.trim());
  if (!m) throw new Error(`not a podman size: ${text}`);
  return Number(m[1]) * { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }[m[2] as 'B']!;
}

function pct(text: string): number {
  expect(text).toMatch(/^\d+\.\d\d%$/);
  return Number(text.slice(0, -1));
}

/** A `berth stats` stream: resolves with its stdout once `lines` lines arrived and the signal ended it. */
function stream(args: string[], lines: number, signal: NodeJS.Signals): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath('berth'), ...berth.args(['stats', ...args])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const guard = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`stats stream gave ${stdout.split('\n').length - 1} lines in 60 s: ${stderr}`)); }, 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!signalled && stdout.split('\n').length - 1 >= lines) { signalled = true; child.kill(signal); }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => { clearTimeout(guard); resolve({ code, stdout, stderr }); });
  });
}

describe('podman\'s number formats (values printed by podman 4.3 stats on this machine)', () => {
  it('prints sizes as go-units does: SI with four digits, and IEC for MemUsageBytes', () => {
    expect([0, 516, 1172, 249856, 67108864, 25276026880].map(humanSizeGo)).toEqual(['0B', '516B', '1.172kB', '249.9kB', '67.11MB', '25.28GB']);
    expect([249856, 67108864, 25276026880, 0].map(bytesSizeGo)).toEqual(['244KiB', '64MiB', '23.54GiB', '0B']);
  });

  it('prints CPU time as Go\'s time.Duration', () => {
    expect([0, 76774464, 2651656516, 4009785652, 13620188442, 62_500_000_000, 7_201_000_000_000, 1500, 999].map(goDuration)).toEqual(
      ['0s', '76.774464ms', '2.651656516s', '4.009785652s', '13.620188442s', '1m2.5s', '2h0m1s', '1.5µs', '999ns']);
  });

  it('sums /proc/PID/net/dev over every interface but lo', () => {
    const dev = 'Inter-|   Receive                                                |  Transmit\n'
      + ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n'
      + '    lo:  900000       9    0    0    0     0          0         0   900000       9    0    0    0     0       0          0\n'
      + '  eth0:     522       7    0    0    0     0          0         0      542       7    0    0    0     0       0          0\n'
      + '  tap0:     100       1    0    0    0     0          0         0       10       1    0    0    0     0       0          0\n';
    expect(parseNetDev(dev)).toEqual({ rx: 622, tx: 552 });
  });

  it('prints info as YAML with multi-line runtime versions as literal blocks', () => {
    expect(toYaml({ host: { cpus: 2, ociRuntime: { name: 'runc', version: 'runc version 1.1.5\ncommit: x' }, uidmap: null, list: ['a'] }, registries: {} }))
      .toBe('host:\n  cpus: 2\n  ociRuntime:\n    name: runc\n    version: |-\n      runc version 1.1.5\n      commit: x\n  uidmap: null\n  list:\n    - a\nregistries: {}');
  });
});

describe('berth stats', () => {
  it('shows a -m 64m container\'s limit and a usage above zero, as the cgroup has them', () => {
    berth.ok('run', '-d', '--name', 'mem', '-m', '64m', plain, 'sleep', '600');
    const [row, ...more] = statsJson('mem');
    expect(more).toEqual([]);
    expect(row!.name).toBe('mem');
    expect(row!.id).toMatch(/^[0-9a-f]{12}$/);
    const [usage, limit] = row!.mem_usage.split(' / ');
    expect(limit).toBe('67.11MB');
    expect(bytes(usage!)).toBeGreaterThan(0);
    expect(pct(row!.mem_percent)).toBeGreaterThan(0);
    // The raw numbers: the limit is exactly 64 MiB, and the kernel's own files say the same.
    expect(field('mem', '{{.MemLimit}}')).toBe(String(64 * 1024 * 1024));
    const pid = berth.ok('inspect', '--format', '{{.State.Pid}}', 'mem').trim();
    const memCgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /:memory:/.test(l))!.split(':')[2]!;
    expect(readFileSync(join('/sys/fs/cgroup/memory', memCgroup, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 1024 * 1024));
  });

  it('finds a runc container\'s cgroup the same way (through its init\'s /proc/PID/cgroup)', () => {
    berth.ok('--runtime', 'runc', 'run', '-d', '--name', 'by-runc', '-m', '32m', plain, 'sleep', '602');
    expect(field('by-runc', '{{.MemLimit}} {{.PIDs}}')).toBe(`${32 * 1024 * 1024} 1`);
    expect(Number(field('by-runc', '{{.ContainerStats.MemUsage}}'))).toBeGreaterThan(0);
    berth.ok('rm', '-f', 'by-runc');
  });

  it('gives a container without a limit the host\'s memory as its limit', () => {
    berth.ok('run', '-d', '--name', 'idle', plain, 'sleep', '600');
    expect(field('idle', '{{.MemLimit}}')).toBe(String(totalmem()));
  });

  it('counts CPU time over the interval: a spinning container high, an idle one low', async () => {
    berth.ok('run', '-d', '--name', 'spin', plain, 'sh', '-c', 'while :; do :; done');
    // The first sample measures from the start, as podman's does: its CPU % is the average so far.
    // (How high it is right after the start depends on the machine's load; the interval below does not.)
    const [first] = statsJson('spin');
    expect(pct(first!.cpu_percent)).toBeGreaterThan(0);
    expect(first!.cpu_percent).toBe(first!.avg_cpu);
    // A stream prints one JSON array per interval; the second covers one interval only.
    const r = await stream(['-i', '1', '--format', 'json', 'spin', 'idle'], 2, 'SIGINT');
    expect(r.code).toBe(0);
    const second = JSON.parse(r.stdout.trim().split('\n')[1]!) as StatsRow[];
    expect(second.map((s) => s.name)).toEqual(['spin', 'idle']);
    expect(pct(second[0]!.cpu_percent)).toBeGreaterThan(10);
    expect(pct(second[1]!.cpu_percent)).toBeLessThan(50);
    // The CPU time only grows, and the average is of the samples taken.
    expect(Number(field('spin', '{{.CPUNano}}'))).toBeGreaterThan(0);
    expect(second[0]!.cpu_time).toMatch(/^[\d.]+(s|ms|m[\d.]+s)$/);
  });

  it('redraws the table each interval until SIGTERM, and keeps it with --no-reset', async () => {
    berth.ok('run', '-d', '--name', 'redraw', plain, 'sleep', '600');
    const r = await stream(['-i', '1', 'redraw'], 4, 'SIGTERM');
    expect(r.code).toBe(0);
    const frames = r.stdout.split('\x1b[2J\x1b[1;1H').filter(Boolean);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    const table = frames[0]!.trim().split('\n');
    expect(table[0]!.split(/\s{2,}/)).toEqual(['ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET IO', 'BLOCK IO', 'PIDS', 'CPU TIME', 'AVG CPU %']);
    expect(table[1]).toContain(' redraw ');
    const kept = await stream(['-i', '1', '--no-reset', 'redraw'], 4, 'SIGINT');
    expect(kept.stdout).not.toContain('\x1b[2J');
  });

  it('counts the tasks the container started', async () => {
    berth.ok('run', '-d', '--name', 'procs', plain, 'sh', '-c', 'sleep 601 & sleep 602 & exec sleep 603');
    // The two background sleeps fork after `run` returns: wait for them, then the count is exactly three.
    await until('three sleeps in the container', () => berth.ok('top', 'procs', 'args').trim().split('\n').length === 4);
    expect(field('procs', '{{.PIDs}}')).toBe('3');
    expect(statsJson('procs')[0]!.pids).toBe('3');
    // Its output leaves the exec's pipes, so the exec ends while the sleep goes on.
    berth.ok('exec', 'procs', 'sh', '-c', 'sleep 604 </dev/null >/dev/null 2>&1 &');
    await until('a fourth task', () => field('procs', '{{.PIDs}}') === '4');
  });

  it('counts bytes through the container\'s own network namespace, not its loopback', async () => {
    const pod = `stats-net-${suffix}`;
    berth.ok('pod', 'create', '--name', pod);
    berth.ok('run', '-d', '--pod', pod, '--name', 'web', plain, 'httpd', '-f', '-p', '8080', '-h', '/bin');
    const ip = /inet (\d+\.\d+\.\d+\.\d+)/.exec(berth.ok('exec', 'web', 'ip', '-4', '-o', 'addr', 'show', 'eth0'))?.[1];
    expect(ip).toBeDefined();
    const net = () => field('web', '{{.NetInput}} {{.NetOutput}}').split(' ').map(Number) as [number, number];
    await until('httpd listening', async () => (await httpGet(`http://${ip}:8080/busybox`).catch(() => undefined))?.status === 200);
    // ~1 MB over the container's loopback: not network I/O.
    const [in0, out0] = net();
    berth.ok('exec', 'web', 'sh', '-c', 'wget -q -O /dev/null http://127.0.0.1:8080/busybox && wget -q -O /dev/null http://127.0.0.1:8080/busybox');
    const [in1, out1] = net();
    const busybox = readFileSync('/bin/busybox').length;
    expect(out1 - out0).toBeLessThan(busybox / 4);
    expect(in1 - in0).toBeLessThan(busybox / 4);
    // The same file fetched from the host over the pod's veth: out by at least its size, in by the requests.
    const got = await httpGet(`http://${ip}:8080/busybox`, 20_000);
    expect(got.status).toBe(200);
    const [in2, out2] = net();
    expect(out2 - out1).toBeGreaterThanOrEqual(busybox);
    expect(in2).toBeGreaterThan(in1);
    const row = statsJson('web')[0]!;
    expect(bytes(row.net_io.split(' / ')[1]!)).toBeGreaterThanOrEqual(busybox);
  });

  it('shows a stopped container named on the command line with zeros, as podman 4.3 does; -a lists it too', () => {
    berth.ok('stop', '-t', '0', 'mem');
    const [row] = statsJson('mem');
    expect(row).toEqual({
      id: row!.id, name: 'mem', cpu_time: '0s', cpu_percent: '0.00%', avg_cpu: '0.00%', mem_usage: '0B / 0B', mem_percent: '0.00%',
      net_io: '0B / 0B', block_io: '0B / 0B', pids: '0',
    });
    expect(statsJson().map((s) => s.name)).not.toContain('mem');
    const all = JSON.parse(berth.ok('stats', '-a', '--no-stream', '--format', 'json')) as StatsRow[];
    expect(all.map((s) => s.name)).toContain('mem');
    expect(all.map((s) => s.name)).toContain('spin');
  });

  it('fails on an unknown container and on bad flags with podman\'s words, exit 125', () => {
    const r = berth.run('stats', '--no-stream', 'nosuch');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('unable to look up container nosuch: no container with name or ID "nosuch" found: no such container');
    expect(r.stdout).toBe('');
    const both = berth.run('stats', '--no-stream', '-a', 'spin');
    expect(both.code).toBe(125);
    expect(both.stderr).toContain('--all, --latest and containers cannot be used together');
    const interval = berth.run('stats', '-i', '0', 'spin');
    expect(interval.code).toBe(125);
    expect(interval.stderr).toContain('--interval 0');
    const format = berth.run('stats', '--no-stream', '--format', 'yaml', 'spin');
    expect(format.code).toBe(125);
    expect(format.stderr).toContain('--format yaml');
  });

  it('prints template tables with podman\'s headers', () => {
    const out = berth.ok('stats', '--no-stream', '--format', 'table {{.Name}} {{.MemUsage}} {{.PIDS}}', 'idle').trim().split('\n');
    expect(out[0]!.split(/\s{2,}/)).toEqual(['NAME', 'MEM USAGE / LIMIT', 'PIDS']);
    expect(out[1]!.split(/\s{2,}/)[0]).toBe('idle');
    expect(out[1]!.split(/\s{2,}/)[2]).toBe('1');
  });
});

describe('berth version and info', () => {
  const runtimeVersion = execFileSync(process.execPath, [binPath('berth-runtime'), '--version'], { encoding: 'utf8' }).trim();

  it('version: berth\'s, Node\'s and the runtime\'s own versions, and the checkout\'s commit', () => {
    const doc = JSON.parse(berth.ok('version', '--format', 'json')) as { Client: Record<string, unknown> & { OCIRuntime: Record<string, string> } };
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'tools/berth/package.json'), 'utf8')) as { version: string };
    expect(doc.Client.Version).toBe(pkg.version);
    expect(doc.Client.NodeVersion).toBe(process.version);
    expect(doc.Client.OsArch).toBe(`linux/${{ x86_64: 'amd64', aarch64: 'arm64' }[execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()]}`);
    expect(doc.Client.GitCommit).toBe(execFileSync('git', ['-C', repoRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim());
    expect(doc.Client.OCIRuntime.name).toBe('berth-runtime');
    expect(doc.Client.OCIRuntime.version).toBe(runtimeVersion);
    const runc = JSON.parse(berth.ok('--runtime', 'runc', 'version', '--format', 'json')) as typeof doc;
    expect(runc.Client.OCIRuntime.name).toBe('runc');
    expect(runc.Client.OCIRuntime.version).toBe(execFileSync('runc', ['--version'], { encoding: 'utf8' }).trim());
    expect(berth.ok('version')).toMatch(new RegExp(`^Version:\\s+${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
  });

  it('info: the host as uname, nproc and /sys say, the store\'s counts, registries.conf\'s search list', () => {
    const conf = join(berth.dir.path, 'registries.conf');
    writeFileSync(conf, `unqualified-search-registries = ["${reg.host}", "quay.example"]\n[[registry]]\nprefix = "${reg.host}"\nlocation = "${reg.host}"\ninsecure = true\n`);
    const r = runTool('berth', berth.args(['info', '--format', 'json']), { env: { CONTAINERS_REGISTRIES_CONF: conf } });
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as {
      host: Record<string, unknown> & { ociRuntime: Record<string, string>; conmon: Record<string, string>; security: Record<string, unknown>; idMappings: Record<string, unknown> };
      store: Record<string, unknown> & { containerStore: Record<string, number>; imageStore: { number: number } };
      registries: Record<string, unknown>;
    };
    const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    expect(info.host.kernel).toBe(sh('uname', '-r'));
    expect(info.host.cpus).toBe(Number(sh('nproc')));
    expect(info.host.memTotal).toBe(totalmem());
    expect(info.host.cgroupManager).toBe('cgroupfs');
    const mode = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : existsSync('/sys/fs/cgroup/unified/cgroup.controllers') ? 'hybrid' : 'v1';
    expect(info.host.cgroupMode).toBe(mode);
    expect(info.host.cgroupVersion).toBe(mode === 'v2' ? 'v2' : 'v1');
    if (mode !== 'v2') expect(info.host.cgroupControllers).toEqual(expect.arrayContaining(['cpuacct', 'memory', 'pids', 'blkio']));
    expect(info.host.ociRuntime.name).toBe('berth-runtime');
    expect(info.host.ociRuntime.version).toBe(runtimeVersion);
    expect(info.host.conmon.path).toBe('/usr/bin/conmon');
    expect(info.host.conmon.version).toBe(sh('/usr/bin/conmon', '--version').split('\n').join(', '));
    expect(info.host.security.rootless).toBe(false);
    expect(info.host.security.seccompEnabled).toBe(/^Seccomp:/m.test(readFileSync('/proc/self/status', 'utf8')));
    expect(info.host.idMappings).toEqual({ uidmap: null, gidmap: null });
    expect(info.store.graphRoot).toBe(berth.root);
    expect(info.store.runRoot).toBe(berth.runRoot);
    expect(info.store.graphDriverName).toBe('overlay');
    const images = JSON.parse(berth.ok('images', '--format', 'json')) as unknown[];
    expect(images.length).toBeGreaterThan(0);
    expect(info.store.imageStore.number).toBe(images.length);
    const all = JSON.parse(berth.ok('ps', '-a', '--format', 'json')) as unknown[];
    const running = JSON.parse(berth.ok('ps', '--format', 'json')) as unknown[];
    expect(running.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThan(running.length);
    expect(info.store.containerStore).toEqual({ number: all.length, paused: 0, running: running.length, stopped: all.length - running.length });
    expect(info.registries.search).toEqual([reg.host, 'quay.example']);
    expect(info.registries[reg.host]).toMatchObject({ Prefix: reg.host, Insecure: true, Blocked: false });
    // podman's default output is YAML.
    expect(berth.ok('info')).toMatch(/^host:\n {2}arch: /);
    expect(berth.ok('info', '--format', '{{.Host.Kernel}}').trim()).toBe(sh('uname', '-r'));
  });
});

describe('an ordinary user', () => {
  let user: TestUser;
  const range = { start: 1_460_000, count: 65536 };
  beforeAll(() => { user = makeUser(`bst${suffix}`, range); });
  afterAll(() => user?.remove());

  it('gets podman\'s refusal of stats on a cgroup v1 or hybrid host, and its id maps from info', () => {
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const r = berthAs(user, ['stats', '--no-stream']);
    if (v2) {
      expect(r.code, r.stderr).toBe(0);
    } else {
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('stats is not supported in rootless mode without cgroups v2');
    }
    const info = berthAs(user, ['info', '--format', 'json']);
    expect(info.code, info.stderr).toBe(0);
    const doc = JSON.parse(info.stdout) as { host: { security: { rootless: boolean }; idMappings: unknown } };
    expect(doc.host.security.rootless).toBe(true);
    const gid = Number(execFileSync('id', ['-g', user.name], { encoding: 'utf8' }).trim());
    expect(doc.host.idMappings).toEqual({
      uidmap: [{ container_id: 0, host_id: user.uid, size: 1 }, { container_id: 1, host_id: range.start, size: range.count }],
      gidmap: [{ container_id: 0, host_id: gid, size: 1 }, { container_id: 1, host_id: range.start, size: range.count }],
    });
  });
});
