import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageLayout } from '@berth/content';
import { chainIds } from '@berth/digest';
import { Snapshotter, resolveImage, unpackImage } from '@berth/snapshots';
import { writeImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runToolAsync, tempDir } from '../helpers/run.ts';
import { ageBlobs, leasedWrite, smallLayer, verifyAll, verifyImage } from './helpers.ts';

// Pins that berth-gc never removes what is in use while other berth work runs:
// writers that pull the way berth-pull does (blobs first, tag last, under a
// lease) and unpacks into the snapshotter, for a few seconds, with berth-gc
// running back to back and really removing the images a filter selects.

describe('berth-gc while pulls and unpacks run', () => {
  const d = tempDir('berth-gc-conc-');
  const p = tempDir('berth-gc-pull-');
  let reg: TestRegistry | undefined;
  afterAll(async () => { await reg?.stop(); d.cleanup(); p.cleanup(); });

  it('every written image verifies and every unpacked layer is still there', async () => {
    const root = d.path;
    const images = join(root, 'images');
    const bases = await Promise.all([smallLayer('base-a', 2048), smallLayer('base-b', 2048)]);
    const kept: string[] = [];
    const unpacked: string[][] = [];
    const snap = new Snapshotter(root);
    const layout = new ImageLayout(images);
    const stopAt = Date.now() + 4000;

    // Each writer runs for the time given but at least four rounds (two kept
    // images), and the collector for as long as any writer does, so a slow
    // machine shrinks nothing the assertions count on.
    let writing = 3;
    const writer = async (w: number) => {
      try {
        await writeRounds(w);
      } finally {
        writing--;
      }
    };
    const writeRounds = async (w: number) => {
      for (let i = 0; i < 100 && (Date.now() < stopAt || i < 4); i++) {
        const own = await smallLayer(`w${w}-${i}`);
        const keep = i % 2 === 0;
        const ref = `localhost/w${w}/${keep ? 'keep' : 'churn'}:${i}`;
        // Churn images share the base layers with kept ones, so the sweep
        // of a churn image runs right next to what a kept image needs.
        await leasedWrite(root, ref, [bases[i % 2]!, own], { role: keep ? 'keep' : 'churn' });
        if (!keep) continue;
        kept.push(ref);
        const image = await resolveImage(layout, ref);
        await unpackImage(snap, layout, image);
        unpacked.push(chainIds(image.diffIds));
      }
    };

    let runs = 0;
    let untagged = 0;
    let removed = 0;
    const collector = async () => {
      while ((writing > 0 || runs < 2) && runs < 60) {
        const r = await runToolAsync('berth-gc', ['--root', root, '--filter', 'label=role=churn', '--grace', '0s']);
        expect(r.code, r.stderr).toBe(0);
        runs++;
        untagged += r.json.untagged.length;
        removed += r.json.blobsRemoved;
      }
    };

    await Promise.all([writer(0), writer(1), writer(2), collector()]);
    expect(kept.length).toBeGreaterThan(3);
    expect(runs).toBeGreaterThan(1);
    // GC did real work during the run, not only after it.
    expect(untagged).toBeGreaterThan(0);
    expect(removed).toBeGreaterThan(0);

    const final = await runToolAsync('berth-gc', ['--root', root, '--filter', 'label=role=churn', '--grace', '0s']);
    expect(final.code, final.stderr).toBe(0);
    const listed = await layout.list();
    for (const ref of kept) await verifyImage(images, ref, listed);
    expect((await verifyAll(images)).sort()).toEqual([...kept].sort());
    for (const chain of unpacked) for (const c of chain) expect(await snap.exists(c), c).toBe(true);
  });

  it('real berth-pull runs complete and verify while berth-gc sweeps older images', async () => {
    // berth-pull takes no lease yet: what protects its blobs until the tag
    // lands is the grace period (default 10m), so berth-gc runs with the
    // default here, sweeping images whose blobs are old.
    reg = await startRegistry();
    const src = join(p.path, 'src');
    const base = await smallLayer('pull-base', 2048);
    const refs: string[] = [];
    for (let i = 0; i < 4; i++) {
      await writeImage(src, `app-${i}:v1`, { layers: [base, await smallLayer(`pull-${i}`)] });
      skopeoPush(src, `app-${i}:v1`, `${reg.host}/gc/app-${i}:v1`);
      refs.push(`${reg.host}/gc/app-${i}:v1`);
    }
    const root = join(p.path, 'root');
    const images = join(root, 'images');
    // A kept image shares the pulled images' base layer; old churn images are what GC removes.
    await writeImage(images, 'localhost/keeper:1', { layers: [base] });
    await Promise.all(Array.from({ length: 10 }, async (_, i) => writeImage(images, `localhost/old:${i}`, { layers: [await smallLayer(`old-${i}`)], labels: { role: 'churn' } })));
    ageBlobs(images);

    let untagged = 0;
    let removed = 0;
    let pullsDone = false;
    const pulls = (async () => {
      try {
        for (const ref of refs) {
          const r = await runToolAsync('berth-pull', ['--root', root, '--tls-verify=false', ref]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.json.reference).toBe(ref);
        }
      } finally { pullsDone = true; }
    })();
    const collector = (async () => {
      for (let runs = 0; runs < 40 && !pullsDone; runs++) {
        const r = await runToolAsync('berth-gc', ['--root', root, '--filter', 'label=role=churn']);
        expect(r.code, r.stderr).toBe(0);
        untagged += r.json.untagged.length;
        removed += r.json.blobsRemoved;
      }
    })();
    await Promise.all([pulls, collector]);
    expect(untagged).toBe(10);
    expect(removed).toBe(30);
    const listed = await new ImageLayout(images).list();
    for (const ref of [...refs, 'localhost/keeper:1']) await verifyImage(images, ref, listed);
  });
});
