import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { Berth, httpGet, pushGuideImages, until } from './fixtures.ts';

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// Terminals, stdin, a published port without a pod, kill/restart, and
// --explain: the parts of `berth run` a user notices at the keyboard.
describe('berth: terminals, stdin, ports and --explain', () => {
  let reg: TestRegistry;
  const layout = tempDir('berth-engine-layout-');
  const berth = new Berth('runc');
  let refs: { db: string; web: string; plain: string };

  beforeAll(async () => {
    reg = await startRegistry();
    refs = await pushGuideImages(reg, layout.path);
    berth.ok('pull', '--tls-verify=false', refs.plain);
  }, 120_000);

  afterAll(async () => {
    await berth.cleanup();
    await reg?.stop();
    layout.cleanup();
  });

  it('-it gives the container a terminal with the caller\'s window size', () => {
    // script(1) runs berth on a pty sized 123x45, as a user's terminal would be.
    // runc sizes the container's pty from its relay just after the process
    // starts, so the shell waits a moment before asking.
    const cmd = `stty cols 123 rows 45; ${[process.execPath, binPath('berth'), ...berth.args(['run', '--rm', '-it', refs.plain, 'sh', '-c', 'sleep 1; stty size; tty; echo TERM=$TERM; exit 4'])].map(shq).join(' ')}`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toContain('45 123');
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain('TERM=xterm');
    expect(r.status).toBe(4);
  });

  it('-i passes stdin to the container', () => {
    const r = spawnSync(process.execPath, [binPath('berth'), ...berth.args(['run', '--rm', '-i', refs.plain, 'sh', '-c', 'read x; echo got:$x; exit 6'])], { input: 'hello\n', encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toBe('got:hello\n');
    expect(r.status).toBe(6);
    // Without -i the container's stdin is empty.
    const closed = spawnSync(process.execPath, [binPath('berth'), ...berth.args(['run', '--rm', refs.plain, 'sh', '-c', 'cat; echo end'])], { input: 'not for the container\n', encoding: 'utf8', timeout: 60_000 });
    expect(closed.stdout).toBe('end\n');
  });

  it('passes signals sent to a foreground berth on to the container', async () => {
    const child = spawn(process.execPath, [binPath('berth'), ...berth.args(['run', '--rm', '--name', 'sig', refs.plain, 'sh', '-c', 'trap "echo got-term; exit 12" TERM; echo ready; while :; do sleep 0.1; done'])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await until('the container to be ready', () => out.includes('ready'));
      child.kill('SIGTERM');
      expect(await exited).toBe(12);
      expect(out).toBe('ready\ngot-term\n');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('publishes a port without a pod; kill of a --rm container removes it and that network (the guide\'s smoke test)', async () => {
    const port = await freePort();
    // The image is not in the store yet: run pulls it, as podman does.
    const id = berth.ok('run', '--rm', '--tls-verify=false', '--name=smk', '-p', `127.0.0.1:${port}:80`, '-d', refs.web).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(berth.ok('images')).toContain('guide/web');
    const res = await until('the page', async () => { try { return await httpGet(`http://127.0.0.1:${port}/index.html`); } catch { return undefined; } });
    expect(res.body).toBe('static page\n');
    expect(berth.ok('port', 'smk').trim()).toBe(`80/tcp -> 127.0.0.1:${port}`);
    expect(berth.ok('ps')).toContain(`127.0.0.1:${port}->80/tcp`);
    // The one-container network is not listed as a user's pod.
    expect(berth.ok('pod', 'list', '-q')).toBe('');
    expect(berth.ok('kill', 'smk').trim()).toBe('smk');
    // The monitor's exit command removes a --rm container on its own.
    await until('smk removed', () => !berth.ok('ps', '-a', '--format', 'json').includes('"smk"'));
    const pods = join(berth.runRoot, 'pods');
    await until('its network removed', () => (existsSync(pods) ? readdirSync(pods).filter((d) => !d.startsWith('.')) : []).length === 0);
    await expect(httpGet(`http://127.0.0.1:${port}/index.html`, 1500)).rejects.toThrow();
  });

  it('logs -f follows the output until the container exits', async () => {
    berth.ok('run', '-d', '--name', 'talker', refs.plain, 'sh', '-c', 'echo one; sleep 1; echo two; sleep 1; echo three');
    const r = await berth.runAsync('logs', '-f', 'talker');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('one\ntwo\nthree\n');
    expect(berth.ok('logs', '--tail', '1', 'talker')).toBe('three\n');
    berth.ok('rm', 'talker');
  });

  it('kill sends a signal; restart gives the container a new process', () => {
    berth.ok('run', '-d', '--name', 'k', refs.plain, 'sh', '-c', 'trap "echo usr1; exit 9" USR1; while true; do sleep 0.1; done');
    const pid1 = Number(berth.ok('inspect', '--format', '{{.State.Pid}}', 'k').trim());
    expect(pid1).toBeGreaterThan(0);
    berth.ok('restart', '-t', '1', 'k');
    const pid2 = (JSON.parse(berth.ok('inspect', 'k')) as Array<{ State: { Pid: number; Status: string } }>)[0]!.State;
    expect(pid2.Status).toBe('running');
    expect(pid2.Pid).not.toBe(pid1);
    expect(berth.ok('kill', '-s', 'USR1', 'k').trim()).toBe('k');
    expect(berth.ok('wait', 'k').trim()).toBe('9');
    expect(berth.ok('logs', 'k')).toContain('usr1');
    expect(berth.run('kill', 'k').code).toBe(125);
    berth.ok('rm', 'k');
  });

  it('exec takes -u (a name from the container\'s passwd), -w and -e', () => {
    berth.ok('run', '-d', '--name', 'ex', refs.plain, 'sleep', '60');
    expect(berth.ok('exec', '-u', 'tux', '-w', '/tmp', '-e', 'GREETING=hi', 'ex', 'sh', '-c', 'id -u; id -g; pwd; echo $GREETING')).toBe('1000\n1000\n/tmp\nhi\n');
    expect(berth.run('exec', '-u', 'nobody-here', 'ex', 'true').code).toBe(125);
    expect(berth.run('exec', 'ex', 'sh', '-c', 'exit 42').code).toBe(42);
    berth.ok('rm', '-f', 'ex');
    expect(berth.run('exec', 'ex', 'true').code).toBe(125);
  });

  it('--explain prints the stage pipeline and runs nothing', () => {
    const r = berth.run('run', '--explain', '-d', '--name', 'shown', '-e', 'A=1', refs.plain, 'echo', 'hi');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.find((l) => l.startsWith('berth-pull '))).toContain(refs.plain);
    expect(lines.find((l) => l.startsWith('berth-store '))).toMatch(/prepare shown --image -/);
    expect(lines.find((l) => l.startsWith('berth-bundle '))).toMatch(/-e A=1 rootfs\.json -- echo hi/);
    expect(lines.some((l) => l.startsWith('conmon ') && l.includes('--exit-command'))).toBe(true);
    expect(lines.find((l) => / start shown$/.test(l))).toMatch(/runc --root /);
    expect(berth.ok('ps', '-a', '-q')).toBe('');
    expect(execFileSync('sh', ['-c', `${shq(process.execPath)} ${shq(binPath('berth'))} rm --explain whatever`], { encoding: 'utf8' })).toContain('delete --force');
  });
});
