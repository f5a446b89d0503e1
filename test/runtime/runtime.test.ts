/**
 * The OCI runtime suite: the same tests run against berth-runtime and runc,
 * from the outside (the binaries, real namespaces, cgroups and busybox), so a
 * test that passes on runc pins behaviour a runc user relies on.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReadStream } from 'node:tty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeSpec } from '@berth/oci-spec';
import { accept, closeFd, listenUnix, recvFd } from '@berth/sys';
import { defaultSpec, makeRootfs, runAsync, runSync, runtimes, waitFor, writeBundle, type Result } from './helpers.ts';

const T = 60_000;

describe.each(runtimes)('$name', (rt) => {
  let dir: string;
  let root: string;
  let rootfs: string;
  const ids = new Set<string>();
  let seq = 0;
  const tag = `${rt.name === 'runc' ? 'rc' : 'bt'}${process.pid}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `berth-rt-${rt.name}-`));
    // A user namespace's root (an unprivileged host uid) must reach the rootfs.
    chmodSync(dir, 0o755);
    root = join(dir, 'state');
    rootfs = await makeRootfs(dir);
  });

  afterAll(() => {
    for (const id of ids) cli('delete', '-f', id);
    rmSync(dir, { recursive: true, force: true });
    // The parent of the tests' cgroupsPath: a runtime removes only its leaf.
    for (const ctl of readdirSync('/sys/fs/cgroup')) {
      try {
        rmdirSync(join('/sys/fs/cgroup', ctl, 'berth-test'));
      } catch {
        // Absent, or still used by the other runtime's describe block.
      }
    }
  });

  const cli = (...args: string[]): Result => runSync([...rt.argv(root), ...args]);
  const newId = (): string => {
    const id = `${tag}-${++seq}`;
    ids.add(id);
    return id;
  };
  const bundle = (mutate?: (s: RuntimeSpec) => void): string => {
    const spec = defaultSpec(rootfs);
    mutate?.(spec);
    return writeBundle(join(dir, `bundle-${++seq}`), spec);
  };
  /** `run` a container whose process is `sh -c script`; the result and the id. */
  const run = (script: string, mutate?: (s: RuntimeSpec) => void, flags: string[] = []): Result & { id: string } => {
    const b = bundle((s) => { s.process!.args = ['sh', '-c', script]; mutate?.(s); });
    const id = newId();
    return { ...cli('run', ...flags, '-b', b, id), id };
  };
  const state = (id: string): { status: string; pid: number } => JSON.parse(cli('state', id).stdout) as { status: string; pid: number };
  const cgroupDir = (ctl: string, path: string) => join('/sys/fs/cgroup', ctl, path);
  /** Nothing of container `id` is left: no state, not listed, no cgroup, no mount of the bundle. */
  const expectNothingLeft = (id: string, cgroupsPath: string) => {
    expect(cli('state', id).code).not.toBe(0);
    expect(cli('list', '-q').stdout.split('\n')).not.toContain(id);
    expect(existsSync(join(root, id))).toBe(false);
    for (const ctl of ['memory', 'pids', 'cpu', 'devices']) expect(existsSync(cgroupDir(ctl, cgroupsPath))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  };

  describe('lifecycle', () => {
    it('create -> created -> start -> running -> kill -> stopped -> delete, with runc\'s refusals on the way', async () => {
      const b = bundle((s) => { s.process!.args = ['sleep', '60']; });
      const id = newId();
      expect(cli('create', '-b', b, id)).toMatchObject({ code: 0 });
      const created = state(id);
      expect(created.status).toBe('created');
      expect(existsSync(`/proc/${created.pid}`)).toBe(true);
      expect(cli('start', id).code).toBe(0);
      expect(state(id).status).toBe('running');
      expect(readFileSync(`/proc/${created.pid}/cmdline`, 'utf8')).toBe('sleep\x0060\x00');
      expect(cli('start', id).code).not.toBe(0);
      const refused = cli('delete', id);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/not stopped|running/);
      expect(cli('kill', id, 'KILL').code).toBe(0);
      await waitFor(() => state(id).status === 'stopped');
      const again = cli('start', id);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toContain('cannot start a container that has stopped');
      expect(cli('delete', id).code).toBe(0);
      const gone = cli('state', id);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/does not exist/);
    }, T);

    it('run exits with the container\'s status', () => {
      expect(run('exit 3').code).toBe(3);
      expect(run('true').code).toBe(0);
    }, T);

    it('run exits 137 when the container is SIGKILLed from outside, and forwards the pid file', async () => {
      const b = bundle((s) => { s.process!.args = ['sleep', '60']; });
      const id = newId();
      const pidFile = join(dir, `${id}.pid`);
      const r = runAsync([...rt.argv(root), 'run', '--pid-file', pidFile, '-b', b, id]);
      await waitFor(() => existsSync(pidFile) && cli('state', id).code === 0 && state(id).status === 'running');
      expect(Number(readFileSync(pidFile, 'utf8'))).toBe(state(id).pid);
      expect(cli('kill', id, 'SIGKILL').code).toBe(0);
      expect((await r.done).code).toBe(137);
      expect(cli('state', id).code).not.toBe(0);
    }, T);

    it('an OOM kill shows as exit 137', () => {
      const r = run('dd if=/dev/zero of=/dev/null bs=200M count=1', (s) => {
        s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * 1024 * 1024 } };
      });
      expect(r.code).toBe(137);
    }, T);

    it('kill --all signals every process; ps lists them; list shows the status', async () => {
      const b = bundle((s) => { s.process!.args = ['sh', '-c', 'sleep 60 & sleep 61']; });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      // busybox sh execs its last command: sleep 61 is the init, sleep 60 its child.
      await waitFor(() => JSON.parse(cli('ps', '--format', 'json', id).stdout || '[]').length >= 2);
      const pids = JSON.parse(cli('ps', '--format', 'json', id).stdout) as number[];
      expect(pids).toContain(state(id).pid);
      expect(cli('ps', id).stdout).toContain('sleep 60');
      // What follows the id goes to ps(1), options included: only the container's processes, in those columns.
      const custom = cli('ps', id, '-o', 'pid,args').stdout.trim().split('\n');
      expect(custom[0]!.trim().split(/\s+/)).toEqual(['PID', 'COMMAND']);
      expect(custom.slice(1).map((l) => l.trim().split(/\s+/).slice(1).join(' ')).sort()).toEqual(['sleep 60', 'sleep 61']);
      const listed = JSON.parse(cli('list', '--format', 'json').stdout) as Array<{ id: string; status: string }>;
      expect(listed.find((c) => c.id === id)?.status).toBe('running');
      expect(cli('list', '-q').stdout.split('\n')).toContain(id);
      expect(cli('kill', '--all', id, 'KILL').code).toBe(0);
      await waitFor(() => pids.every((p) => !existsSync(`/proc/${p}`) || readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z')));
      await waitFor(() => state(id).status === 'stopped');
      expect(cli('delete', id).code).toBe(0);
    }, T);

    it('pause freezes and resume thaws', () => {
      const b = bundle((s) => { s.process!.args = ['sleep', '60']; });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      expect(cli('pause', id).code).toBe(0);
      expect(state(id).status).toBe('paused');
      expect(readFileSync(`/proc/${state(id).pid}/stat`, 'utf8')).toMatch(/\) [SD] /);
      expect(cli('resume', id).code).toBe(0);
      expect(state(id).status).toBe('running');
      expect(cli('delete', '-f', id).code).toBe(0);
      expect(cli('state', id).code).not.toBe(0);
    }, T);

    it('update changes the memory, cpu and pids limits of a running container; events --stats reports them', () => {
      const path = `/berth-test/${tag}-update`;
      const b = bundle((s) => {
        s.process!.args = ['sleep', '60'];
        s.linux!.cgroupsPath = path;
        s.linux!.resources = { ...s.linux!.resources, memory: { limit: 100 * 1024 * 1024 } };
      });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      const upd = cli('update', '--memory', '64m', '--pids-limit', '50', '--cpu-quota', '20000', '--cpu-period', '100000', id);
      expect(upd.stderr).toBe('');
      expect(upd.code).toBe(0);
      const file = (ctl: string, f: string) => readFileSync(join(cgroupDir(ctl, path), f), 'utf8').trim();
      expect([file('memory', 'memory.limit_in_bytes'), file('pids', 'pids.max'), file('cpu', 'cpu.cfs_quota_us'), file('cpu', 'cpu.cfs_period_us')])
        .toEqual([String(64 * 1024 * 1024), '50', '20000', '100000']);
      // resources as JSON on stdin: only what is given changes
      expect(runSync([...rt.argv(root), 'update', '-r', '-', id], { input: '{"pids":{"limit":40}}' }).code).toBe(0);
      expect([file('pids', 'pids.max'), file('memory', 'memory.limit_in_bytes')]).toEqual(['40', String(64 * 1024 * 1024)]);
      const bad = cli('update', '--memory', 'lots', id);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/lots/);
      expect(file('memory', 'memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
      const ev = cli('events', '--stats', id);
      expect(ev.code).toBe(0);
      const doc = JSON.parse(ev.stdout) as { type: string; id: string; data: { memory: { usage: { limit: number; usage: number } }; pids: { current: number; limit: number }; cpu: { usage: { total: number } } } };
      expect(doc).toMatchObject({ type: 'stats', id, data: { memory: { usage: { limit: 64 * 1024 * 1024 } }, pids: { current: 1, limit: 40 } } });
      expect(doc.data.memory.usage.usage).toBeGreaterThan(0);
      expect(doc.data.cpu.usage.total).toBeGreaterThan(0);
      expect(cli('delete', '-f', id).code).toBe(0);
      expectNothingLeft(id, path);
    }, T);

    it('delete --force removes a running container and its cgroup', () => {
      const path = `/berth-test/${tag}-force`;
      const b = bundle((s) => { s.process!.args = ['sleep', '60']; s.linux!.cgroupsPath = path; });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      expect(existsSync(cgroupDir('pids', path))).toBe(true);
      const pid = state(id).pid;
      expect(cli('delete', '--force', id).code).toBe(0);
      expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
      expectNothingLeft(id, path);
      expect(cli('delete', '-f', id).code).toBe(0);
    }, T);
  });

  describe('config.json, checked from inside the container', () => {
    it('hostname, env, cwd, user, additional groups, umask, sysctl, oomScoreAdj', () => {
      const r = run('hostname; echo $FOO; pwd; id; umask; cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj', (s) => {
        s.hostname = 'box1';
        s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
        s.process!.oomScoreAdj = 500;
        s.process!.env = [...(s.process!.env ?? []), 'FOO=bar'];
        s.process!.cwd = '/home/tux';
        s.process!.user = { uid: 1000, gid: 1000, additionalGids: [10, 29], umask: 0o077 };
      });
      expect(r.stderr).toBe('');
      const lines = r.stdout.trim().split('\n');
      expect(lines.slice(0, 3)).toEqual(['box1', 'bar', '/home/tux']);
      expect(lines[3]).toMatch(/^uid=1000\(tux\) gid=1000\(tux\) groups=10\(wheel\),29\(audio\)/);
      expect(lines[4]).toBe('0077');
      expect(lines.slice(5)).toEqual(['1', '500']);
    }, T);

    it('capabilities (bounding, effective, permitted) and no_new_privs for root', () => {
      const r = run('grep -E "^(CapEff|CapBnd|CapPrm|NoNewPrivs)" /proc/self/status', (s) => {
        const caps = ['CAP_CHOWN', 'CAP_KILL'];
        s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
        s.process!.noNewPrivileges = true;
      });
      expect(r.stdout).toContain('CapEff:\t0000000000000021');
      expect(r.stdout).toContain('CapBnd:\t0000000000000021');
      expect(r.stdout).toContain('NoNewPrivs:\t1');
    }, T);

    it('ambient capabilities reach a non-root process; no_new_privs off', () => {
      const r = run('grep -E "^(CapEff|CapAmb|CapInh|NoNewPrivs)" /proc/self/status', (s) => {
        const caps = ['CAP_NET_BIND_SERVICE'];
        s.process!.user = { uid: 1000, gid: 1000 };
        s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
        s.process!.noNewPrivileges = false;
      });
      expect(r.stdout).toContain('CapAmb:\t0000000000000400');
      expect(r.stdout).toContain('CapEff:\t0000000000000400');
      expect(r.stdout).toContain('NoNewPrivs:\t0');
    }, T);

    it('seccomp: actions, errno, argument conditions', () => {
      const r = run('grep "^Seccomp:" /proc/self/status; mkdir /dev/shm/d 2>&1; echo mkdir=$?; touch /dev/shm/f; chmod 700 /dev/shm/f; echo c700=$?; chmod 777 /dev/shm/f 2>&1; echo c777=$?', (s) => {
        s.linux!.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW',
          architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
          syscalls: [
            { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
            { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }] },
            { names: ['fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 2, value: 0o777, op: 'SCMP_CMP_EQ' }] },
          ],
        };
      });
      expect(r.stdout).toContain('Seccomp:\t2');
      expect(r.stdout).toMatch(/Operation not permitted[\s\S]*mkdir=1/);
      expect(r.stdout).toContain('c700=0');
      expect(r.stdout).toMatch(/Permission denied[\s\S]*c777=1/);
    }, T);

    it('rlimits are set; one above the hard limit is refused and nothing is left', () => {
      const ok = run('ulimit -n; ulimit -Hn', (s) => { s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 2048 }]; });
      expect(ok.stdout.trim().split('\n')).toEqual(['512', '2048']);
      const path = `/berth-test/${tag}-rlimit`;
      const bad = run('true', (s) => {
        s.linux!.cgroupsPath = path;
        s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 30_000_000, hard: 30_000_000 }];
      });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(rt.name === 'runc' ? /rlimit type 7/ : /RLIMIT_NOFILE/);
      expectNothingLeft(bad.id, path);
    }, T);

    it('mounts in order with options; binds; read-only root; masked and read-only paths', () => {
      const hostDir = join(dir, `host-${seq}`);
      mkdirSync(hostDir);
      const hostFile = join(dir, `file-${seq}`);
      writeFileSync(hostFile, 'from the host\n');
      const r = run([
        'grep " /mnt/t " /proc/self/mountinfo', 'cat /etc/hello', 'echo hi > /data/out',
        '(echo x > /etc/hello) 2>/dev/null || echo file-ro', '(touch /newfile) 2>/dev/null || echo root-ro',
        'wc -c < /proc/timer_list', '(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null || echo sys-ro',
      ].join('; '), (s) => {
        s.mounts!.push(
          { destination: '/mnt/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=700'] },
          { destination: '/data', type: 'bind', source: hostDir, options: ['rbind', 'rw'] },
          { destination: '/etc/hello', type: 'bind', source: hostFile, options: ['bind', 'ro'] },
        );
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/ \/mnt\/t rw,nosuid.* tmpfs tmpfs rw,size=1024k,mode=700/);
      expect(r.stdout).toContain('from the host');
      expect(readFileSync(join(hostDir, 'out'), 'utf8')).toBe('hi\n');
      expect(r.stdout).toContain('file-ro');
      expect(r.stdout).toContain('root-ro');
      expect(r.stdout).toMatch(/^0$/m);
      expect(r.stdout).toContain('sys-ro');
      expect(readFileSync(hostFile, 'utf8')).toBe('from the host\n');
    }, T);

    it('a mount destination through a symlink stays inside the rootfs', () => {
      const outside = `/tmp/berth-escape-${tag}`;
      rmSync(outside, { recursive: true, force: true });
      const link = join(rootfs, `escape-${tag}`);
      symlinkSync(outside, link);
      try {
        const r = run(`grep " ${outside}/inner " /proc/self/mountinfo | wc -l`, (s) => {
          s.mounts!.push({ destination: `/escape-${tag}/inner`, type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
        });
        expect(r.code).toBe(0);
        expect(r.stdout.trim()).toBe('1');
        expect(existsSync(outside)).toBe(false);
      } finally {
        rmSync(link, { force: true });
        rmSync(join(rootfs, outside), { recursive: true, force: true });
      }
    }, T);

    it('cgroup limits are visible in the container\'s /sys/fs/cgroup', () => {
      const r = run('cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares', (s) => {
        s.linux!.resources = { ...s.linux!.resources, memory: { limit: 96 * 1024 * 1024 }, pids: { limit: 50 }, cpu: { shares: 512 } };
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual([String(96 * 1024 * 1024), '50', '512']);
    }, T);

    it('a user namespace with uid and gid mappings', () => {
      const r = run('cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ln /bin/busybox | cut -c1-40', (s) => {
        s.linux!.namespaces!.push({ type: 'user' });
        s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
        s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup');
      });
      expect(r.stderr).toBe('');
      const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
      expect(lines.slice(0, 3)).toEqual(['0 200000 65536', '0 200000 65536', '0']);
      expect(lines[3]).toContain('65534');
    }, T);

    it('exec joins a container\'s user namespace', () => {
      const b = bundle((s) => {
        s.process!.args = ['sleep', '60'];
        s.linux!.namespaces!.push({ type: 'user' });
        s.linux!.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
        s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup');
      });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      const r = cli('exec', '--user', '1000:1000', id, 'sh', '-c', 'cat /proc/self/uid_map; id -u; echo > /dev/null && echo devnull-ok');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 300000 65536', '1000', 'devnull-ok']);
      expect(readFileSync(`/proc/${state(id).pid}/status`, 'utf8')).toMatch(/Uid:\t300000/);
      expect(cli('delete', '-f', id).code).toBe(0);
    }, T);

    it('joins another container\'s network and uts namespaces by path', () => {
      const a = bundle((s) => { s.process!.args = ['sleep', '60']; s.hostname = 'first'; });
      const aid = newId();
      expect(cli('run', '-d', '-b', a, aid).code).toBe(0);
      const apid = state(aid).pid;
      const r = run('hostname; readlink /proc/self/ns/net', (s) => {
        s.hostname = undefined;
        s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' || n.type === 'uts' ? { type: n.type, path: `/proc/${apid}/ns/${n.type === 'network' ? 'net' : 'uts'}` } : n));
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['first', `net:[${statSync(`/proc/${apid}/ns/net`).ino}]`]);
      cli('delete', '-f', aid);
    }, T);

    it('hooks get the state on stdin: prestart, createRuntime (runtime\'s namespaces) and createContainer (container\'s) at create, startContainer and poststart at start, poststop at delete', async () => {
      const out = join(dir, `hooks-${seq}`);
      mkdirSync(out);
      // Each hook also records the mount and uts namespaces it ran in.
      const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${name}; readlink /proc/self/ns/mnt /proc/self/ns/uts > ${out}/${name}.ns`] });
      const b = bundle((s) => {
        s.process!.args = ['sleep', '60'];
        s.hooks = {
          prestart: [hook('prestart')], createRuntime: [hook('createRuntime')], createContainer: [hook('createContainer')],
          startContainer: [hook('startContainer')], poststart: [hook('poststart')], poststop: [hook('poststop')],
        };
        // startContainer hooks run inside the container: let them reach `out`.
        s.mounts!.push({ destination: out, type: 'bind', source: out, options: ['bind', 'rw'] });
      });
      const id = newId();
      expect(cli('create', '-b', b, id).code).toBe(0);
      const pre = JSON.parse(readFileSync(join(out, 'prestart'), 'utf8')) as { id: string; pid: number; bundle: string };
      expect(pre).toMatchObject({ id, bundle: b });
      expect(pre.pid).toBe(state(id).pid);
      expect(existsSync(join(out, 'createRuntime'))).toBe(true);
      // (its pid: the host's for berth-runtime as the spec's state says, runc gives 1, the pid inside)
      expect(JSON.parse(readFileSync(join(out, 'createContainer'), 'utf8'))).toMatchObject({ id, bundle: b });
      const nsOf = (pid: number | 'self') => ['mnt', 'uts'].map((n) => `${n}:[${statSync(`/proc/${pid}/ns/${n}`).ino}]`);
      const nsLines = (name: string) => readFileSync(join(out, `${name}.ns`), 'utf8').trim().split('\n');
      expect(nsLines('createRuntime')).toEqual(nsOf('self'));
      expect(nsLines('createContainer')).toEqual(nsOf(pre.pid));
      expect(nsOf(pre.pid)).not.toEqual(nsOf('self'));
      expect(existsSync(join(out, 'startContainer'))).toBe(false);
      expect(cli('start', id).code).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'poststart'), 'utf8'))).toMatchObject({ id });
      await waitFor(() => existsSync(join(out, 'startContainer')) && readFileSync(join(out, 'startContainer'), 'utf8') !== '');
      expect(JSON.parse(readFileSync(join(out, 'startContainer'), 'utf8'))).toMatchObject({ id });
      expect(cli('delete', '-f', id).code).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'poststop'), 'utf8'))).toMatchObject({ id });
    }, T);

    it('--preserve-fds passes an open file into the container as fd 3', () => {
      const f = join(dir, `fd-${seq}`);
      writeFileSync(f, 'through fd 3\n');
      const fd = openSync(f, 'r');
      try {
        const b = bundle((s) => { s.process!.args = ['sh', '-c', 'cat <&3']; });
        const id = newId();
        const r = runSync([...rt.argv(root), 'run', '--preserve-fds', '1', '-b', b, id], { stdio: ['ignore', 'pipe', 'pipe', fd] });
        expect(r.stdout).toBe('through fd 3\n');
        expect(r.code).toBe(0);
      } finally {
        closeSync(fd);
      }
    }, T);

    /** A datagram socket at `path` that collects what arrives (perl: Node has no unix datagram sockets). */
    const notifyReceiver = async (path: string) => {
      const receiver = spawn('perl', ['-MSocket', '-e', `socket(S, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
        bind(S, pack_sockaddr_un($ARGV[0])) or die "bind: $!"; $| = 1; print "bound\\n";
        while (defined(recv(S, my $m, 4096, 0))) { print "[$m]\\n" }`, path],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      const got = { text: '' };
      receiver.stdout!.on('data', (d: Buffer) => { got.text += d.toString(); });
      const done = new Promise((r) => receiver.once('exit', r));
      await waitFor(() => got.text.includes('bound'));
      return { got, stop: async () => { receiver.kill('SIGKILL'); await done; } };
    };
    // busybox has no sd_notify: the container borrows the host's perl
    // (perl-base, always on Debian) through read-only binds of /usr, /lib, /lib64.
    const sdNotify = (message: string) => `/usr/bin/perl -MSocket -e 'socket(S, PF_UNIX, SOCK_DGRAM, 0) or die; send(S, "${message}", 0, pack_sockaddr_un($ENV{NOTIFY_SOCKET})) or die "send: $!"'`;
    const withHostPerl = (s: RuntimeSpec) => {
      for (const d of ['/usr', '/lib', '/lib64']) s.mounts!.push({ destination: d, type: 'bind', source: d, options: ['rbind', 'ro'] });
    };

    it('NOTIFY_SOCKET: run relays the container\'s READY=1 to the caller\'s datagram socket, with MAINPID', async () => {
      const sock = join(dir, `notify-${seq}.sock`);
      const receiver = await notifyReceiver(sock);
      try {
        const b = bundle((s) => {
          s.process!.args = ['sh', '-c', `echo "socket=$NOTIFY_SOCKET"; ${sdNotify('READY=1')} && echo sent`];
          withHostPerl(s);
        });
        const id = newId();
        const r = runSync([...rt.argv(root), 'run', '-b', b, id], { env: { ...process.env, NOTIFY_SOCKET: sock } });
        // Both runtimes proxy: the container gets a socket of the runtime's, not the caller's.
        expect(r.stdout).toBe('socket=/run/notify/notify.sock\nsent\n');
        expect(r.code).toBe(0);
        await waitFor(() => /\[MAINPID=\d+\n\]/.test(receiver.got.text));
        expect(receiver.got.text).toMatch(/^bound\n\[READY=1\n\]\n\[MAINPID=\d+\n\]\n$/);
      } finally {
        await receiver.stop();
      }
    }, T);

    it('NOTIFY_SOCKET: start returns only once the container sent READY=1, then forwards it with the init\'s pid', async () => {
      const sock = join(dir, `notify-${seq}.sock`);
      const out = join(dir, `notify-out-${seq}`);
      mkdirSync(out);
      const receiver = await notifyReceiver(sock);
      const id = newId();
      try {
        const b = bundle((s) => {
          // A service that takes a while to get ready: start must not return before it is.
          s.process!.args = ['sh', '-c', `sleep 1; touch /out/ready; ${sdNotify('READY=1')}; sleep 60`];
          s.mounts!.push({ destination: '/out', type: 'bind', source: out, options: ['bind', 'rw'] });
          withHostPerl(s);
        });
        const env = { ...process.env, NOTIFY_SOCKET: sock };
        expect(runSync([...rt.argv(root), 'create', '-b', b, id], { env }).code).toBe(0);
        expect(receiver.got.text).toBe('bound\n');
        expect(runSync([...rt.argv(root), 'start', id], { env }).code).toBe(0);
        expect(existsSync(join(out, 'ready'))).toBe(true);
        await waitFor(() => receiver.got.text.includes('MAINPID='));
        expect(receiver.got.text).toBe(`bound\n[READY=1\n]\n[MAINPID=${state(id).pid}\n]\n`);
      } finally {
        cli('delete', '-f', id);
        await receiver.stop();
      }
    }, T);

    it('NOTIFY_SOCKET: start fails naming a caller socket nobody listens on; the container runs on', () => {
      const sock = join(dir, `notify-none-${seq}.sock`);
      const id = newId();
      try {
        const b = bundle((s) => { s.process!.args = ['sleep', '60']; });
        const env = { ...process.env, NOTIFY_SOCKET: sock };
        expect(runSync([...rt.argv(root), 'create', '-b', b, id], { env }).code).toBe(0);
        const r = runSync([...rt.argv(root), 'start', id], { env, timeoutMs: 20_000 });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(sock);
        expect(state(id).status).toBe('running');
      } finally {
        cli('delete', '-f', id);
      }
    }, T);

    it('NOTIFY_SOCKET: start of a container that exits without READY=1 returns, and nothing is forwarded', async () => {
      const sock = join(dir, `notify-${seq}.sock`);
      const receiver = await notifyReceiver(sock);
      const id = newId();
      try {
        const b = bundle((s) => { s.process!.args = ['sh', '-c', 'sleep 0.5']; });
        const env = { ...process.env, NOTIFY_SOCKET: sock };
        expect(runSync([...rt.argv(root), 'create', '-b', b, id], { env }).code).toBe(0);
        expect(runSync([...rt.argv(root), 'start', id], { env, timeoutMs: 20_000 }).code).toBe(0);
        await waitFor(() => state(id).status === 'stopped');
        expect(receiver.got.text).toBe('bound\n');
      } finally {
        cli('delete', '-f', id);
        await receiver.stop();
      }
    }, T);

    it('the container is a child of the caller: its loginuid is the caller\'s', () => {
      const r = run('cat /proc/self/loginuid');
      expect(r.stdout.trim()).toBe(readFileSync('/proc/self/loginuid', 'utf8').trim());
    }, T);

    it('a terminal through --console-socket (the pty master arrives by SCM_RIGHTS)', async () => {
      const sock = join(dir, `console-${seq}.sock`);
      const listener = listenUnix(sock);
      const b = bundle((s) => {
        s.process!.terminal = true;
        s.process!.args = ['sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty; readlink /proc/self/fd/0; sleep 1'];
      });
      const id = newId();
      const created = runAsync([...rt.argv(root), 'create', '--console-socket', sock, '-b', b, id]);
      const conn = accept(listener);
      const { fd } = recvFd(conn);
      closeFd(conn);
      closeFd(listener);
      expect((await created.done).code).toBe(0);
      const master = new ReadStream(fd);
      let text = '';
      const ended = new Promise<void>((resolve) => {
        master.on('data', (d: Buffer) => { text += d.toString(); });
        master.on('error', () => resolve());
        master.on('end', () => resolve());
        master.on('close', () => resolve());
      });
      expect(cli('start', id).code).toBe(0);
      await waitFor(() => text.includes('/dev/pts/'), 15_000);
      master.destroy();
      await ended;
      expect(text).toContain('on-a-tty');
      expect(text).toMatch(/\/dev\/pts\/\d+/);
    }, T);
  });

  describe('exec', () => {
    it('runs in the container\'s namespaces with its config, returns the exit status, honours --user and --process', () => {
      const b = bundle((s) => { s.process!.args = ['sleep', '60']; s.hostname = 'execbox'; s.process!.env = ['PATH=/bin:/usr/bin', 'FOO=base']; });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      const r = cli('exec', id, 'sh', '-c', 'hostname; echo $FOO; ps -o pid,comm | grep -c sleep; grep NoNewPrivs /proc/self/status; exit 5');
      expect(r.code).toBe(5);
      expect(r.stdout).toMatch(/^execbox\nbase\n1\nNoNewPrivs:\t1\n$/);
      expect(cli('exec', '--user', '1000:1000', '--env', 'FOO=over', id, 'sh', '-c', 'id -u; echo $FOO').stdout).toBe('1000\nover\n');
      const procFile = join(dir, `process-${seq}.json`);
      writeFileSync(procFile, JSON.stringify({ user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'echo from-process-json; pwd'], cwd: '/tmp', env: ['PATH=/bin'] }));
      expect(cli('exec', '--process', procFile, id).stdout).toBe('from-process-json\n/tmp\n');
      expect(cli('delete', '-f', id).code).toBe(0);
      const stopped = cli('exec', id, 'true');
      expect(stopped.code).not.toBe(0);
    }, T);

    it('a container cannot write the runtime\'s binary through /proc/self/exe (CVE-2019-5736)', () => {
      // /bin/evil starts with #!/proc/self/exe: exec'ing it runs whatever binary
      // the runtime's process was at execve time, inside the container. The
      // payload holds /proc/self/exe open and, after that binary exits, tries
      // to open it for writing through /proc/self/fd (the real attack); dd
      // writes the ELF magic back in place so a vulnerable host binary would
      // only see its mtime change.
      const evilRoot = join(dir, `evil-${seq}`);
      mkdirSync(join(evilRoot, 'bin'), { recursive: true });
      const payload = [
        '#!/proc/self/exe',
        "const fs = require('fs'); const cp = require('child_process');",
        "const fd = fs.openSync('/proc/self/exe', 'r');",
        "cp.spawn('/bin/sh', ['-c', 'sleep 1; printf \"\\\\177ELF\" | dd of=/proc/self/fd/3 bs=4 count=1 conv=notrunc 2>/tmp/evil/dd.err; echo $? > /tmp/evil/dd.rc'], { stdio: ['ignore', 'ignore', 'ignore', fd], detached: true }).unref();",
        "fs.writeFileSync('/tmp/evil/ran', fs.readlinkSync('/proc/self/exe'));",
      ].join('\n');
      writeFileSync(join(evilRoot, 'bin', 'evil'), payload, { mode: 0o755 });
      const hostBinaries = ['/usr/bin/node', '/usr/sbin/runc'].map((p) => ({ p, mtime: statSync(p).mtimeMs }));
      const b = bundle((s) => {
        s.process!.args = ['sleep', '60'];
        s.mounts!.push(
          { destination: '/bin/evil', type: 'bind', source: join(evilRoot, 'bin', 'evil'), options: ['bind', 'ro'] },
          { destination: '/tmp/evil', type: 'bind', source: evilRoot, options: ['rbind', 'rw'] },
          ...['/lib', '/lib64', '/usr/lib'].map((d) => ({ destination: d, type: 'bind', source: d, options: ['rbind', 'ro'] })),
        );
      });
      const id = newId();
      expect(cli('run', '-d', '-b', b, id).code).toBe(0);
      const ex = cli('exec', id, '/bin/evil');
      if (rt.name === 'berth-runtime') {
        // Node ran the payload, so the attack was really tried; its binary was
        // not the host's /usr/bin/node but the read-only detached clone.
        expect(ex.stderr).toBe('');
        expect(readFileSync(join(evilRoot, 'ran'), 'utf8')).not.toBe('/usr/bin/node');
      }
      const deadline = Date.now() + 5000;
      while (rt.name === 'berth-runtime' && !existsSync(join(evilRoot, 'dd.rc')) && Date.now() < deadline) runSync(['sleep', '0.1']);
      if (existsSync(join(evilRoot, 'dd.rc'))) {
        expect(readFileSync(join(evilRoot, 'dd.rc'), 'utf8').trim()).not.toBe('0');
        expect(readFileSync(join(evilRoot, 'dd.err'), 'utf8')).toMatch(/Read-only file system|Text file busy|Operation not permitted/);
      }
      for (const { p, mtime } of hostBinaries) expect(statSync(p).mtimeMs).toBe(mtime);
      cli('delete', '-f', id);
    }, T);
  });

  describe('failures leave nothing behind', () => {
    const broken: Array<[string, (s: Record<string, any>) => void, RegExp]> = [
      ['process.cwd missing', (s) => { delete s.process.cwd; }, /cwd/i],
      ['process.args of the wrong type', (s) => { s.process.args = 'sh'; }, /process\.args/],
      ['process.user.uid of the wrong type', (s) => { s.process.user.uid = '0'; }, /process\.user\.uid/],
      ['an unknown namespace', (s) => { s.linux.namespaces.push({ type: 'foo' }); }, /foo/],
      ['a bundle without its rootfs', (s) => { s.root.path = '/nonexistent-rootfs'; }, /nonexistent-rootfs/],
      ['a bind mount of a missing source (fails halfway through create)', (s) => { s.mounts.push({ destination: '/mnt', type: 'bind', source: '/nonexistent-src', options: ['bind'] }); }, /nonexistent-src/],
      ['a program that does not exist', (s) => { s.process.args = ['no-such-program']; }, /executable file not found/],
    ];
    it.each(broken)('%s', (_what, mutate, message) => {
      const path = `/berth-test/${tag}-bad-${seq}`;
      const spec = defaultSpec(rootfs) as unknown as Record<string, any>;
      spec.linux.cgroupsPath = path;
      mutate(spec);
      const b = writeBundle(join(dir, `bad-${++seq}`), spec);
      const id = newId();
      const r = cli('create', '-b', b, id);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expectNothingLeft(id, path);
    }, T);
  });
});

describe('berth-runtime beyond runc', () => {
  const rt = runtimes[0]!;
  let dir: string;
  let root: string;
  let rootfs: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-rt-extra-'));
    root = join(dir, 'state');
    rootfs = await makeRootfs(dir);
  });
  afterAll(() => {
    for (const id of readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
      runSync([...rt.argv(root), 'delete', '-f', id]);
      runSync(['runc', '--root', root, 'delete', '-f', id]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => runSync([...rt.argv(root), ...args]);

  it('a time namespace with linux.timeOffsets moves the container\'s boottime and monotonic clocks (runc 1.1 has no time namespaces)', () => {
    const b = writeBundle(join(dir, 'timens'), { ...defaultSpec(rootfs), process: { ...defaultSpec(rootfs).process!, args: ['cat', '/proc/uptime'] } });
    const spec = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')) as RuntimeSpec & { linux: { timeOffsets?: unknown } };
    spec.linux!.namespaces!.push({ type: 'time' });
    spec.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 }, monotonic: { secs: 3600, nanosecs: 0 } };
    writeBundle(b, spec);
    const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const r = cli('run', '-b', b, 'timens');
    expect(r.stderr).toBe('');
    const uptime = Number(r.stdout.split(' ')[0]);
    expect(uptime - hostUptime).toBeGreaterThan(86400 * 365 - 60);
    expect(uptime - hostUptime).toBeLessThan(86400 * 365 + 60);
  }, 60_000);

  it('sets the domainname (runc 1.1 ignores it)', () => {
    const spec = defaultSpec(rootfs);
    spec.domainname = 'example.test';
    spec.process!.args = ['cat', '/proc/sys/kernel/domainname'];
    const r = cli('run', '-b', writeBundle(join(dir, 'domain'), spec), 'domain');
    expect(r.stdout).toBe('example.test\n');
  }, T);

  it('refuses a relative mount destination (runc only warns), naming the field', () => {
    const spec = defaultSpec(rootfs);
    spec.mounts!.push({ destination: 'mnt', type: 'tmpfs', source: 'tmpfs' });
    const r = cli('create', '-b', writeBundle(join(dir, 'rel'), spec), 'rel');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/mounts\[7\]\.destination/);
    expect(existsSync(join(root, 'rel'))).toBe(false);
  }, T);

  it('shares one --root with runc without either corrupting the other', () => {
    const b = writeBundle(join(dir, 'shared'), (() => { const s = defaultSpec(rootfs); s.process!.args = ['sleep', '60']; return s; })());
    expect(runSync(['runc', '--root', root, 'run', '-d', '-b', b, 'by-runc']).code).toBe(0);
    expect(cli('run', '-d', '-b', b, 'by-berth').code).toBe(0);
    expect(cli('list', '-q').stdout.trim().split('\n')).toEqual(['by-berth']);
    expect(cli('state', 'by-runc').code).toBe(1);
    expect(JSON.parse(runSync(['runc', '--root', root, 'state', 'by-runc']).stdout).status).toBe('running');
    expect(cli('delete', '-f', 'by-berth').code).toBe(0);
    expect(runSync(['runc', '--root', root, 'delete', '-f', 'by-runc']).code).toBe(0);
    expect(readdirSync(root)).toEqual([]);
  }, T);

  it('spec writes a config.json once; features lists what is supported; --log writes JSON lines', () => {
    const d = join(dir, 'spec');
    mkdirSync(d);
    expect(cli('spec', '-b', d).code).toBe(0);
    expect(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')).process.args).toEqual(['sh']);
    const again = cli('spec', '-b', d);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('config.json exists');
    const f = JSON.parse(cli('features').stdout) as { hooks: string[]; linux: { namespaces: string[]; seccomp: { enabled: boolean } } };
    expect(f.hooks).toContain('poststop');
    expect(f.linux.namespaces).toContain('user');
    expect(f.linux.seccomp.enabled).toBe(true);
    const logFile = join(dir, 'log.json');
    const r = runSync([rt.argv(root)[0]!, '--root', root, '--log', logFile, '--log-format', 'json', 'state', 'nope']);
    expect(r.code).toBe(1);
    const last = JSON.parse(readFileSync(logFile, 'utf8').trim().split('\n').pop()!) as { level: string; msg: string; time: string };
    expect(last).toMatchObject({ level: 'error', msg: 'container "nope" does not exist' });
  }, T);
});
