import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/run.ts';

// The README's main job (`make demo`): registry -> berth-pull -> berth-store ->
// berth-bundle -> berth-runtime, on the busybox image built here. If this
// breaks, a new user's first command breaks.
describe('make demo', () => {
  it('pulls, unpacks, bundles and runs a container that says hello, and cleans up', () => {
    const r = spawnSync('bash', [join(repoRoot, 'test', 'demo.sh')], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hello from a berth container: hostname demo, pid 1, PRETTY_NAME="berth test image \(busybox\)"/);
    expect(r.stdout).toContain('"kind": "image"');
    expect(r.stderr).toContain('cleaned up: container deleted, snapshot removed');
    const mounts = spawnSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' }).stdout;
    expect(mounts).not.toMatch(/berth-demo\./);
  });
});
