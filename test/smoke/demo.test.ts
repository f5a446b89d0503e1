import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/run.ts';

// The README's main job (`make demo`): registry -> berth-pull -> berth-store ->
// berth-bundle -> berth-runtime, on the busybox image built here, then the
// guide's pod walkthrough with the berth front. If this breaks, a new user's
// first command breaks.
describe('make demo', () => {
  it('pulls, unpacks, bundles and runs a container that says hello; runs the guide\'s wp_pod; cleans up', () => {
    const r = spawnSync('bash', [join(repoRoot, 'test', 'demo.sh')], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hello from a berth container: hostname demo, pid 1, PRETTY_NAME="berth test image \(busybox\)"/);
    expect(r.stdout).toContain('"kind": "image"');
    expect(r.stderr).toContain('cleaned up: container deleted, snapshot removed');
    // The web container reached the db over the pod's 127.0.0.1 with the env it was given,
    // and the host reached the web container through the published port.
    expect(r.stderr).toMatch(/curl localhost:\d+: .*db answers: user=tux/);
    expect(r.stderr).toContain('berth rm nosuch exited 125');
    expect(r.stderr).toContain('wp_pod walkthrough done');
    const mounts = spawnSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' }).stdout;
    expect(mounts).not.toMatch(/berth-demo\.|berth-wp-pod\./);
  });
});
