import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binPath, runTool, tempDir } from '../helpers/run.ts';
import { writeBulkStore } from './bulk.ts';
import { blobNames, verifyAll } from './helpers.ts';

// Pins crash safety: berth-gc killed with SIGKILL in the middle of a sweep
// leaves a store in which every image still named in index.json is complete
// (each blob present and matching its digest), and the next run finishes the job.

/**
 * Start berth-gc and SIGKILL it once it has removed at least `removals` blobs
 * (the test watches blobs/sha256 shrink), so the kill lands mid-sweep.
 */
function gcKilledMidSweep(root: string, removals: number): Promise<{ killed: boolean; stderr: string }> {
  const blobDir = join(root, 'images', 'blobs', 'sha256');
  const start = readdirSync(blobDir).length;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath('berth-gc'), '--root', root, '--filter', 'label=batch=even', '--grace', '0s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const watch = setInterval(() => {
      if (readdirSync(blobDir).length <= start - removals) { clearInterval(watch); child.kill('SIGKILL'); }
    }, 1);
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (_code, signal) => { clearInterval(watch); clearTimeout(guard); resolve({ killed: signal === 'SIGKILL', stderr }); });
  });
}

describe('berth-gc killed with -9', () => {
  const d = tempDir('berth-gc-crash-');
  afterAll(() => d.cleanup());

  it('leaves every remaining tagged image complete, and the next run finishes the sweep', async () => {
    const images = join(d.path, 'images');
    const written = await writeBulkStore(images, { count: 400, bases: 21 });
    const total = blobNames(images).length;
    // 200 even images go: each has a manifest, a config and a layer of its own.
    const garbage = 200 * 3;
    let partial = 0;
    for (const removals of [1, 200]) {
      const { killed, stderr } = await gcKilledMidSweep(d.path, removals);
      const after = blobNames(images).length;
      if (killed && after > total - garbage && after < total) partial++;
      // Whatever instant the kill hit, every image index.json still names is whole.
      expect((await verifyAll(images)).length, stderr).toBeGreaterThanOrEqual(200);
    }
    expect(partial, 'kills landed between the first and the last removal').toBe(2);
    const finish = runTool('berth-gc', ['--root', d.path, '--filter', 'label=batch=even', '--grace', '0s']);
    expect(finish.code, finish.stderr).toBe(0);
    expect(blobNames(images)).toHaveLength(total - garbage);
    const odd = written.filter((w) => w.batch === 'odd');
    expect((await verifyAll(images)).sort()).toEqual(odd.map((w) => w.ref).sort());
  });
});
