/**
 * podman 4.3 drives berth-runtime the way it drives runc (through conmon):
 * create/start, exec --detach with a pid file and (for -it) a console socket,
 * kill 15 then kill 9, delete --force. Everything podman stores lives under a
 * temp dir (its own --root, --runroot, --tmpdir); the image comes from the
 * loopback registry. The runtime keeps its state in its default --root
 * (/run/berth/runtime): podman 4.3 does not pass --runtime-flag to its own
 * `delete --force`, so a private runtime root would strand state.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { berthRuntimePath, busyboxLayout, removeCgroupTree, sh, underPty, waitFor, type Outcome } from './helpers.ts';

const RUNTIME_ROOT = '/run/berth/runtime';

describe('podman --runtime berth-runtime', () => {
  let dir: string;
  let registry: TestRegistry;
  let image: string;
  const cgroupParent = `/berth-engines-podman-${process.pid}`;
  const names: string[] = [];

  const podman = (args: string[], opts: { input?: string } = {}): Outcome => sh('podman', [
    '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp'),
    '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
    '--runtime', berthRuntimePath(), ...args,
  ], opts);
  // Root here lacks CAP_SYS_RESOURCE: podman's default limits are above the hard limits.
  const runFlags = (): string[] => ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', '--network', 'none', '--cgroup-parent', cgroupParent];
  const name = (what: string): string => {
    const n = `${what}-${process.pid}-${names.length}`;
    names.push(n);
    return n;
  };
  const fullId = (n: string): string => podman(['inspect', '--format', '{{.Id}}', n]).stdout.trim();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-podman-'));
    chmodSync(dir, 0o755);
    registry = await startRegistry();
    const layout = await busyboxLayout(join(dir, 'layout'));
    image = `${registry.host}/berth-engines/busybox:latest`;
    skopeoPush(layout, 'busybox:latest', image);
    const pulled = podman(['pull', '--quiet', '--tls-verify=false', image]);
    expect(pulled.stderr).toBe('');
    expect(pulled.code).toBe(0);
  });

  afterAll(async () => {
    for (const n of names) podman(['rm', '--force', '--time', '0', n]);
    podman(['rmi', '--all', '--force']);
    // podman unmounts its overlay store on this call; then nothing of it is mounted.
    sh('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'overlay', 'system', 'reset', '--force']);
    removeCgroupTree(cgroupParent);
    await registry?.stop();
    if (!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir)) rmSync(dir, { recursive: true, force: true });
  });

  it('run --rm echo hi prints hi, passes stdin and stderr through, and leaves no runtime state', () => {
    const r = podman(['run', '--rm', ...runFlags(), image, 'echo', 'hi']);
    expect(r).toMatchObject({ code: 0, stdout: 'hi\n' });
    // conmon hands the container pipes as fds 0-2 of create: they reach the process as they are.
    const piped = podman(['run', '--rm', '-i', ...runFlags(), image, 'sh', '-c', 'cat; echo to-stderr >&2; exit 4'], { input: 'through stdin\n' });
    expect(piped.code).toBe(4);
    expect(piped.stdout).toBe('through stdin\n');
    expect(piped.stderr).toContain('to-stderr');
    expect(podman(['ps', '-a', '-q']).stdout.trim()).toBe('');
  });

  it('run -d, exec (exit status), exec -it under a pty, logs, stop by SIGTERM, rm', async () => {
    const n = name('web');
    const started = podman(['run', '-d', '--name', n, ...runFlags(), image, 'sh', '-c',
      'echo started; trap "echo got-term; exit 3" TERM; while true; do sleep 0.1; done']);
    expect(started.code).toBe(0);
    const id = fullId(n);
    // berth-runtime, not some other runtime, holds this container.
    expect(existsSync(join(RUNTIME_ROOT, id, 'state.json'))).toBe(true);
    const exec = podman(['exec', n, 'sh', '-c', 'echo in-exec; cat /proc/1/cmdline | tr "\\0" " "; exit 7']);
    expect(exec.code).toBe(7);
    expect(exec.stdout).toContain('in-exec\nsh -c echo started');
    const tty = underPty(['podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp'),
      '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', berthRuntimePath(),
      'exec', '-it', n, 'sh', '-c', 'tty; echo tty-ok']);
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+\r*\ntty-ok/);
    await waitFor(() => podman(['logs', n]).stdout.includes('started'));
    const stop = podman(['stop', '--time', '10', n]);
    expect(stop.code).toBe(0);
    expect(podman(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', n]).stdout.trim()).toBe('exited 3');
    expect(podman(['logs', n]).stdout).toBe('started\ngot-term\n');
    expect(podman(['rm', n]).code).toBe(0);
    expect(podman(['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(existsSync(join(RUNTIME_ROOT, id))).toBe(false);
    expect(existsSync(join('/sys/fs/cgroup/memory', cgroupParent, `libpod-${id}`))).toBe(false);
  });

  it('stop falls back to SIGKILL when the container ignores SIGTERM', () => {
    const n = name('stubborn');
    expect(podman(['run', '-d', '--name', n, ...runFlags(), image, 'sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']).code).toBe(0);
    const stop = podman(['stop', '--time', '1', n]);
    expect(stop.code).toBe(0);
    expect(stop.stderr).toContain('resorting to SIGKILL');
    expect(podman(['inspect', '--format', '{{.State.ExitCode}}', n]).stdout.trim()).toBe('137');
    expect(podman(['rm', n]).code).toBe(0);
  });
});
