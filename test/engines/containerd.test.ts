/**
 * containerd 1.6 drives berth-runtime through its runc v2 shim, the path
 * Kubernetes uses (`ctr run --runc-binary`). A private containerd (its own
 * root, state and socket under a temp dir, CRI and network plugins off) is
 * started and stopped here. The shim calls, as recorded on this machine:
 * --root R --log B/log.json --log-format json before every subcommand;
 * create --pid-file (read strictly as a decimal), start, exec --process
 * --detach --pid-file [--console-socket], kill N / kill --all, ps --format
 * json, pause, resume, delete, delete --force.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthRuntimePath, busyboxLayout, removeCgroupTree, sh, underPty, waitFor, type Outcome } from './helpers.ts';

const NS = 'berth-test';
const IMAGE = 'localhost/berth-engines/busybox:latest';

describe('containerd (runc v2 shim) with --runc-binary berth-runtime', () => {
  let dir: string;
  let socket: string;
  let daemon: ChildProcess;
  let daemonLog = '';
  const cgroupParent = `berth-engines-ctr-${process.pid}`;
  const ids: string[] = [];

  const ctr = (args: string[], opts: { input?: string } = {}): Outcome => sh('ctr', ['--address', socket, '--namespace', NS, ...args], opts);
  const runtimeRoot = (): string => join(dir, 'runtime');
  const runFlags = (id: string): string[] => ['--runc-binary', berthRuntimePath(), '--runc-root', runtimeRoot(), '--cgroup', `/${cgroupParent}/${id}`];
  const newId = (what: string): string => {
    const id = `${what}-${process.pid}-${ids.length}`;
    ids.push(id);
    return id;
  };
  const taskStatus = (id: string): string => {
    const line = ctr(['task', 'ls']).stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
    return line?.trim().split(/\s+/)[2] ?? 'none';
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-containerd-'));
    chmodSync(dir, 0o755);
    socket = join(dir, 'containerd.sock');
    const config = join(dir, 'config.toml');
    writeFileSync(config, `version = 2
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[metrics]
  address = ""
`);
    daemon = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    daemon.stderr!.on('data', (d: Buffer) => { daemonLog += d.toString(); });
    await waitFor(() => daemon.exitCode === null && existsSync(socket) && sh('ctr', ['--address', socket, 'version']).code === 0);
    // An oci-archive of the test image, as containerd imports it.
    const layout = await busyboxLayout(join(dir, 'layout'));
    const archive = join(dir, 'busybox.tar');
    const copied = sh('skopeo', ['copy', '--quiet', `oci:${layout}:busybox:latest`, `oci-archive:${archive}:${IMAGE}`]);
    expect(copied.stderr).toBe('');
    const imported = ctr(['images', 'import', archive]);
    expect(imported.stderr).toBe('');
    expect(ctr(['images', 'ls', '-q']).stdout.split('\n')).toContain(IMAGE);
  });

  afterAll(async () => {
    for (const id of ids) {
      ctr(['task', 'kill', '--all', '--signal', 'SIGKILL', id]);
      ctr(['task', 'delete', '--force', id]);
      ctr(['container', 'delete', id]);
    }
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    removeCgroupTree(cgroupParent);
    // containerd leaves its snapshots mounted only while tasks run; unmount what is left before removing the dir.
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
      const target = line.split(' ')[4];
      if (target && dir && target.startsWith(dir)) sh('umount', ['-l', target]);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ctr run --rm echo hi prints hi; stdout and stderr reach the shim\'s pipes apart, with the exit status', () => {
    const id = newId('hi');
    const r = ctr(['run', ...runFlags(id), '--rm', IMAGE, id, 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: 'hi\n' });
    // (ctr never closes a container's stdin, with runc either, so stdout and stderr are what is checked.)
    const id2 = newId('split');
    const split = ctr(['run', ...runFlags(id2), '--rm', IMAGE, id2, 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 6']);
    expect(split).toMatchObject({ code: 6, stdout: 'to-stdout\n', stderr: 'to-stderr\n' });
    expect(ctr(['container', 'ls', '-q']).stdout.split('\n')).not.toContain(id);
    expect(existsSync(join(runtimeRoot(), NS, id))).toBe(false);
  });

  it('a detached task: exec (status and tty), ps, pause/resume, kill --all, kill of a finished task, delete', async () => {
    const id = newId('task');
    expect(ctr(['run', ...runFlags(id), '-d', IMAGE, id, 'sh', '-c', 'sleep 1000 & while true; do sleep 0.1; done']).code).toBe(0);
    expect(taskStatus(id)).toBe('RUNNING');
    // berth-runtime's own state, under the --runc-root the shim passed as --root.
    const state = JSON.parse(readFileSync(join(runtimeRoot(), NS, id, 'state.json'), 'utf8')) as { pid: number };
    const exec = ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo exec-out; exit 5']);
    expect(exec).toMatchObject({ code: 5, stdout: 'exec-out\n' });
    const tty = underPty(['ctr', '--address', socket, '--namespace', NS, 'task', 'exec', '-t', '--exec-id', 'e2', id, 'sh', '-c', 'tty; echo tty-ok; sleep 0.3']);
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+\r*\ntty-ok/);
    expect(tty.code).toBe(0);
    const ps = ctr(['task', 'ps', id]);
    expect(ps.code).toBe(0);
    const pids = ps.stdout.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids).toContain(state.pid);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    expect(ctr(['task', 'pause', id]).code).toBe(0);
    expect(taskStatus(id)).toBe('PAUSED');
    expect(readFileSync(join('/sys/fs/cgroup/freezer', cgroupParent, id, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    expect(ctr(['task', 'resume', id]).code).toBe(0);
    expect(taskStatus(id)).toBe('RUNNING');
    expect(ctr(['task', 'kill', '--all', '--signal', 'SIGKILL', id]).code).toBe(0);
    await waitFor(() => taskStatus(id) === 'STOPPED');
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    // "container not running" from the runtime is how the shim knows the process finished.
    const again = ctr(['task', 'kill', id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('process already finished');
    const del = ctr(['task', 'delete', id]);
    expect(del.code).toBe(0);
    expect(del.stderr).toContain('exit code 137');
    expect(ctr(['container', 'delete', id]).code).toBe(0);
    expect(existsSync(join(runtimeRoot(), NS, id))).toBe(false);
    expect(existsSync(join('/sys/fs/cgroup/memory', cgroupParent, id))).toBe(false);
  });

  it('a broken spec surfaces berth-runtime\'s own message through ctr, and nothing is left', () => {
    const id = newId('broken');
    const r = ctr(['run', ...runFlags(id), '--rm', IMAGE, id, '/nonexistent/prog']);
    expect(r.code).not.toBe(0);
    // The shim quotes the last level:"error" line of the runtime's JSON log.
    expect(r.stderr).toContain('OCI runtime create failed: container init failed: exec: "/nonexistent/prog": stat /nonexistent/prog: no such file or directory');
    ctr(['container', 'delete', id]);
    expect(existsSync(join(runtimeRoot(), NS, id))).toBe(false);
    expect(existsSync(join('/sys/fs/cgroup/memory', cgroupParent, id))).toBe(false);
    expect(daemonLog).not.toContain('level=fatal');
  });
});
