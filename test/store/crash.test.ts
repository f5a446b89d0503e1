import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage, type LayerEntry, type WrittenImage } from '../helpers/images.ts';
import { binPath, runTool, runToolAsync } from '../helpers/run.ts';
import { tempRoot } from './fixtures.ts';

function bigLayer(files: number, size: number): LayerEntry[] {
  const entries: LayerEntry[] = [{ path: 'big/', type: 'dir' }];
  for (let i = 0; i < files; i++) {
    const content = Buffer.alloc(size);
    for (let j = 0; j < size; j += 4) content.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
    entries.push({ path: `big/f${i}`, content });
  }
  return entries;
}

describe('unpack under crashes and concurrency', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  let big: WrittenImage;
  beforeAll(async () => {
    big = await writeImage(store, 'localhost/big:latest', { layers: [busyboxEntries(), bigLayer(3000, 16 * 1024)] });
    await writeImage(store, 'localhost/sibling:latest', {
      layers: [busyboxEntries(), [{ path: 'sibling', content: 's' }], [{ path: '.wh.sibling' }, { path: 's2', content: '2' }], [{ path: 's3', content: '3' }]],
    });
  });
  afterAll(() => t.cleanup());

  it('kill -9 in the middle of a layer leaves no layer that looks complete; the next run finishes it', async () => {
    const tmp = join(t.root, 'snapshots', 'tmp');
    const child = spawn(process.execPath, [binPath('berth-store'), '--root', t.root, 'unpack', 'localhost/big:latest'], { stdio: 'ignore' });
    // Wait until the big layer is being written, then kill without warning.
    const deadline = Date.now() + 60_000;
    let caught = false;
    while (Date.now() < deadline) {
      const dirs = existsSync(tmp) ? readdirSync(tmp) : [];
      const busy = dirs.find((d) => existsSync(join(tmp, d, 'fs', 'big')) && readdirSync(join(tmp, d, 'fs', 'big')).length > 200);
      if (busy) { child.kill('SIGKILL'); caught = true; break; }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    expect(caught).toBe(true);
    const list = runTool('berth-store', ['--root', t.root, 'list']).json;
    // The base layer may be done; the big one must not exist.
    expect(list.snapshots.map((s: { labels?: Record<string, string> }) => s.labels?.['berth.layer.digest'])).not.toContain(big.layers[1]!.digest);
    // What the killed run was extracting is still in tmp/ (layers extract in parallel: one or two dirs).
    const left = readdirSync(tmp);
    expect(left.length).toBeGreaterThanOrEqual(1);
    expect(left.every((d) => d.includes(`-${child.pid}-`))).toBe(true);

    const r = runTool('berth-store', ['--root', t.root, 'unpack', 'localhost/big:latest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.layers.map((l: { unpacked: boolean }) => l.unpacked)).toEqual([list.snapshots.length === 0, true]);
    expect(readdirSync(tmp)).toEqual([]);
    const top = runTool('berth-store', ['--root', t.root, 'list']).json.snapshots.find((s: { name: string }) => s.name === r.json.chainID);
    expect(readdirSync(join(t.root, 'snapshots', top.id, 'fs', 'big')).length).toBe(3000);
  });

  it('two unpacks at once of images sharing a base extract each layer once', async () => {
    // Parallel extraction inside each process too: commits must still go bottom-up.
    const env = { BERTH_UNPACK_PARALLEL: '3' };
    const [a, b] = await Promise.all([
      runToolAsync('berth-store', ['--root', t.root, 'unpack', 'localhost/sibling:latest'], { env }),
      runToolAsync('berth-store', ['--root', t.root, 'unpack', 'localhost/sibling:latest'], { env }),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    // The sibling's own layers: exactly one of the two processes extracted each.
    for (const i of [1, 2, 3]) expect([a.json.layers[i].unpacked, b.json.layers[i].unpacked].sort()).toEqual([false, true]);
    expect(a.json.chainID).toBe(b.json.chainID);
    const snaps: Array<{ name: string; parent?: string }> = runTool('berth-store', ['--root', t.root, 'list']).json.snapshots;
    const names = snaps.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    // Committed bottom-up: every layer's parent is the chainID below it.
    for (const i of [1, 2, 3]) expect(snaps.find((s) => s.name === a.json.layers[i].chainID)?.parent).toBe(a.json.layers[i - 1].chainID);
  });
});
