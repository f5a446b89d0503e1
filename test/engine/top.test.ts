import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

// `berth top` as podman top: the processes of a running container, with
// podman's descriptors or ps(1) options, through the OCI runtime's `ps` —
// the same answer under berth-runtime and runc.
let reg: TestRegistry;
const layout = tempDir('berth-engine-top-layout-');
let plain = '';

beforeAll(async () => {
  reg = await startRegistry();
  plain = (await pushGuideImages(reg, layout.path)).plain;
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  layout.cleanup();
});

describe.each([['berth-runtime', undefined], ['runc', 'runc']] as const)('berth top under %s', (_name, runtime) => {
  const berth = new Berth(runtime);
  afterAll(() => berth.cleanup());

  it('lists the container\'s processes in podman\'s default columns, only the container\'s', () => {
    berth.ok('pull', '--tls-verify=false', plain);
    berth.ok('run', '-d', '--name', 'tp', plain, 'sh', '-c', 'sleep 300 & exec sleep 301');
    const lines = berth.ok('top', 'tp').trim().split('\n');
    expect(lines[0]!.trim().split(/\s+/)).toEqual(['USER', 'PID', 'PPID', '%CPU', 'ELAPSED', 'TT', 'TIME', 'COMMAND']);
    const commands = lines.slice(1).map((l) => l.trim().split(/\s+/).slice(7).join(' ')).sort();
    expect(commands).toEqual(['sleep 300', 'sleep 301']);
  });

  it('shows the descriptors asked for, without a PID column unless asked', () => {
    const lines = berth.ok('top', 'tp', 'comm', 'args').trim().split('\n');
    expect(lines[0]!.trim().split(/\s+/)).toEqual(['COMMAND', 'COMMAND']);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/).join(' ')).sort()).toEqual(['sleep sleep 300', 'sleep sleep 301']);
    const withPid = berth.ok('top', 'tp', '-o', 'pid,args').trim().split('\n');
    expect(withPid[0]!.trim().split(/\s+/)).toEqual(['PID', 'COMMAND']);
    expect(withPid).toHaveLength(3);
  });

  it('refuses an unknown descriptor and a stopped container, exit 125', () => {
    const bad = berth.run('top', 'tp', 'colour');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('unknown top descriptor "colour"');
    berth.ok('stop', '-t', '0', 'tp');
    const stopped = berth.run('top', 'tp');
    expect(stopped.code).toBe(125);
    expect(stopped.stderr).toContain('top can only be used on running containers');
  });
});
