import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageLayout, acquireLease } from '@berth/content';
import { writeImage, type BuiltLayer } from '../helpers/images.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { ageBlobs, blobNames, smallLayer, verifyImage } from './helpers.ts';

// Pins berth-gc on a real image store: what a user removes goes, what any
// remaining image needs stays and still verifies, and --dry-run touches nothing.

const gc = (root: string, ...args: string[]) => runTool('berth-gc', ['--root', root, ...args]);

describe('berth-gc on the image store', () => {
  let base: BuiltLayer, top1: BuiltLayer, top2: BuiltLayer, other: BuiltLayer;
  const dirs: Array<{ cleanup: () => void }> = [];
  beforeAll(async () => {
    [base, top1, top2, other] = await Promise.all([smallLayer('base', 4096), smallLayer('top1'), smallLayer('top2'), smallLayer('other')]);
  });
  afterAll(() => { for (const d of dirs) d.cleanup(); });

  async function store(): Promise<string> {
    const d = tempDir('berth-gc-');
    dirs.push(d);
    const images = join(d.path, 'images');
    await writeImage(images, 'localhost/app:1', { layers: [base, top1] });
    await writeImage(images, 'localhost/app:2', { layers: [base, top2] });
    await writeImage(images, 'localhost/other:1', { layers: [other] });
    return d.path;
  }

  it('sweeps nothing a tag reaches, and removes a blob nothing refers to', async () => {
    const root = await store();
    const images = join(root, 'images');
    const before = blobNames(images);
    const orphan = await new ImageLayout(images).writeBlob('orphan bytes', 'application/octet-stream');
    const r = gc(root, '--grace', '0s');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ kind: 'gc-report', untagged: [], blobsRemoved: 1, bytesReclaimed: 12, dryRun: false });
    expect(blobNames(images)).toEqual(before);
    expect(existsSync(join(images, 'blobs', 'sha256', orphan.digest.slice(7)))).toBe(false);
  });

  it('removing one of two images that share a layer keeps the shared layer; the others verify and unpack', async () => {
    const root = await store();
    const images = join(root, 'images');
    const app2 = await verifyImage(images, 'localhost/app:2');
    await new ImageLayout(images).untag('localhost/app:2');
    const r = gc(root, '--grace', '0s');
    expect(r.code, r.stderr).toBe(0);
    // manifest, config and the top layer of app:2 go; the base layer stays.
    expect(r.json.blobsRemoved).toBe(3);
    const left = new Set(blobNames(images));
    expect(left.has(base.digest.slice(7))).toBe(true);
    expect(left.has(top2.digest.slice(7))).toBe(false);
    expect(app2.filter((d) => left.has(d.slice(7)))).toEqual([base.digest]);
    for (const ref of ['localhost/app:1', 'localhost/other:1']) {
      await verifyImage(images, ref);
      // Another OCI tool still reads the store and unpacks what is left.
      const bundle = join(root, `bundle-${ref.split(':')[1]}-${ref.includes('other') ? 'o' : 'a'}`);
      execFileSync('umoci', ['unpack', '--image', `${images}:${ref}`, bundle], { stdio: 'pipe' });
      expect(readdirSync(join(bundle, 'rootfs', 'data')).length).toBeGreaterThan(0);
    }
    expect(readFileSync(join(root, `bundle-1-a`, 'rootfs', 'data', 'base'), 'utf8')).toMatch(/^base\.+$/);
  });

  it('leaves exactly the blobs umoci gc leaves on the same store', async () => {
    const root = await store();
    const images = join(root, 'images');
    await new ImageLayout(images).untag('localhost/app:2');
    await new ImageLayout(images).writeBlob('{"not":"referenced"}', 'application/json');
    const peer = tempDir('berth-gc-umoci-');
    dirs.push(peer);
    cpSync(images, join(peer.path, 'images'), { recursive: true });
    execFileSync('umoci', ['gc', '--layout', join(peer.path, 'images')]);
    const r = gc(root, '--grace', '0s');
    expect(r.json.blobsRemoved).toBe(4);
    expect(blobNames(images)).toEqual(blobNames(join(peer.path, 'images')));
  });

  it('keeps blobs younger than the grace period, then sweeps them once they are older', async () => {
    const root = await store();
    const images = join(root, 'images');
    await new ImageLayout(images).untag('localhost/other:1');
    const young = gc(root);
    expect(young.json.blobsRemoved).toBe(0);
    ageBlobs(images);
    const old = gc(root);
    expect(old.json.blobsRemoved).toBe(3);
  });

  it('a live lease keeps what it names; an expired one or one whose process died does not', async () => {
    const root = await store();
    const images = join(root, 'images');
    await new ImageLayout(images).untag('localhost/other:1');
    const lease = await acquireLease(root, [{ type: 'blob', id: other.digest }]);
    const held = gc(root, '--grace', '0s');
    expect(held.json.blobsRemoved).toBe(2);
    expect(blobNames(images)).toContain(other.digest.slice(7));
    await lease.release();
    // A lease file left by a process killed with -9: its pid no longer exists.
    const deadPid = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
    mkdirSync(join(root, 'leases'), { recursive: true });
    writeFileSync(join(root, 'leases', 'dead.json'), JSON.stringify({ id: 'dead', pid: deadPid, created: new Date().toISOString(), expires: new Date(Date.now() + 3_600_000).toISOString(), resources: [{ type: 'blob', id: other.digest }] }));
    const expired = await acquireLease(root, [{ type: 'blob', id: other.digest }], { ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const r = gc(root, '--grace', '0s');
    expect(r.json.blobsRemoved).toBe(1);
    expect(blobNames(images)).not.toContain(other.digest.slice(7));
    expect(existsSync(join(root, 'leases', 'dead.json'))).toBe(false);
    expect(existsSync(join(root, 'leases', `${expired.id}.json`))).toBe(false);
  });

  it('an image lease keeps that image from being untagged by --all', async () => {
    const root = await store();
    const lease = await acquireLease(root, [{ type: 'image', id: 'localhost/app:2' }]);
    const r = gc(root, '--all', '--grace', '0s');
    await lease.release();
    expect(r.json.untagged.sort()).toEqual(['localhost/app:1', 'localhost/other:1']);
    await verifyImage(join(root, 'images'), 'localhost/app:2');
    expect(r.json.blobsRemoved).toBe(6);
  });

  it('removes temp files of writes that died, and leaves those of live writers', async () => {
    const root = await store();
    const ingest = join(root, 'images', 'ingest');
    const deadPid = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
    const dead = join(ingest, `sha256-${'a'.repeat(64)}.${deadPid}.0badf00d`);
    const live = join(ingest, `sha256-${'b'.repeat(64)}.${process.pid}.0badf00d`);
    const stale = join(ingest, `sha256-${'c'.repeat(64)}.${process.pid}.0badf00e`);
    writeFileSync(dead, 'partial');
    writeFileSync(live, 'partial');
    writeFileSync(stale, 'partial!');
    const t = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, t, t);
    const r = gc(root);
    expect(r.json).toMatchObject({ tempFilesRemoved: 2, bytesReclaimed: 15 });
    expect([existsSync(dead), existsSync(live), existsSync(stale)]).toEqual([false, true, false]);
  });

  it('refuses bad flags with exit 2 and a missing root with exit 1, changing nothing', async () => {
    const root = await store();
    const images = join(root, 'images');
    const before = readFileSync(join(images, 'index.json'), 'utf8');
    for (const args of [['--filter', 'reference=foo'], ['--filter', 'until=someday'], ['--filter', 'dangling=maybe'], ['--grace', 'soon'], ['--filter', 'label=']]) {
      const r = gc(root, '--all', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(args[1]!.split('=')[0]!);
    }
    expect(readFileSync(join(images, 'index.json'), 'utf8')).toBe(before);
    const missing = gc(join(root, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no berth data root at .*nope/);
  });
});

describe('berth-gc filters (the guide\'s clean_images)', () => {
  const dirs: Array<{ cleanup: () => void }> = [];
  afterAll(() => { for (const d of dirs) d.cleanup(); });

  async function projectStore(): Promise<{ root: string; images: string; layers: Record<string, BuiltLayer> }> {
    const d = tempDir('berth-gc-');
    dirs.push(d);
    const images = join(d.path, 'images');
    const layers = Object.fromEntries(await Promise.all(['base', 'v0', 'v1', 'v2', 'db'].map(async (n) => [n, await smallLayer(n)] as const)));
    const app = { 'my-project.purpose': 'app-image' };
    await writeImage(images, 'localhost/my-project/app:v0', { layers: [layers.base!, layers.v0!], labels: app, created: '2024-01-01T00:00:00Z' });
    const v1 = await writeImage(images, 'localhost/my-project/app:v1', { layers: [layers.base!, layers.v1!], labels: app, created: '2024-02-01T00:00:00Z' });
    await new ImageLayout(images).tag('localhost/my-project/app:latest', v1.manifest);
    await writeImage(images, 'localhost/my-project/app:v2', { layers: [layers.base!, layers.v2!], labels: app, created: '2024-03-01T00:00:00Z' });
    await writeImage(images, 'localhost/my-project/db:v1', { layers: [layers.base!, layers.db!], labels: { 'my-project.purpose': 'db' }, created: '2024-01-01T00:00:00Z' });
    // An untagged (dangling) entry in index.json, as a rebuild leaves behind.
    const dangling = await writeImage(images, undefined, { layers: [layers.base!], created: '2023-01-01T00:00:00Z' });
    await new ImageLayout(images).updateIndex((idx) => ({ ...idx, manifests: [...idx.manifests, dangling.manifest] }));
    return { root: d.path, images, layers };
  }

  const tags = async (images: string) => (await new ImageLayout(images).list()).map((e) => e.ref ?? e.descriptor.digest).sort();

  it('--filter label=… --keep-tag latest removes the labelled images except what :latest points to', async () => {
    const { root, images, layers } = await projectStore();
    const r = gc(root, '--filter', 'label=my-project.purpose=app-image', '--keep-tag', 'latest', '--grace', '0s');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.untagged.sort()).toEqual(['localhost/my-project/app:v0', 'localhost/my-project/app:v2']);
    expect(r.json.blobsRemoved).toBe(6);
    const left = await tags(images);
    expect(left.filter((t) => !t.startsWith('sha256:'))).toEqual(['localhost/my-project/app:latest', 'localhost/my-project/app:v1', 'localhost/my-project/db:v1']);
    for (const ref of ['localhost/my-project/app:latest', 'localhost/my-project/app:v1', 'localhost/my-project/db:v1']) await verifyImage(images, ref);
    const blobs = new Set(blobNames(images));
    expect(blobs.has(layers.base!.digest.slice(7))).toBe(true);
    expect(blobs.has(layers.v0!.digest.slice(7)) || blobs.has(layers.v2!.digest.slice(7))).toBe(false);
  });

  it('--dry-run reports the same removal and removes nothing', async () => {
    const { root, images } = await projectStore();
    const args = ['--filter', 'label=my-project.purpose=app-image', '--keep-tag', 'latest', '--grace', '0s'];
    const index = readFileSync(join(images, 'index.json'), 'utf8');
    const blobs = blobNames(images);
    const dry = gc(root, ...args, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(readFileSync(join(images, 'index.json'), 'utf8')).toBe(index);
    expect(blobNames(images)).toEqual(blobs);
    const real = gc(root, ...args);
    expect({ ...dry.json, dryRun: false }).toEqual(real.json);
    expect(dry.json.dryRun).toBe(true);
    expect(dry.json.blobsRemoved).toBeGreaterThan(0);
  });

  it('until=, dangling=true and --all select by age, by missing name, and everything', async () => {
    const { root, images } = await projectStore();
    const old = gc(root, '--filter', 'until=2024-01-15T00:00:00Z', '--filter', 'label=my-project.purpose', '--grace', '0s');
    expect(old.json.untagged.sort()).toEqual(['localhost/my-project/app:v0', 'localhost/my-project/db:v1']);
    const dangling = gc(root, '--filter', 'dangling=true', '--grace', '0s');
    expect(dangling.json.untagged).toHaveLength(1);
    expect(dangling.json.untagged[0]).toMatch(/^sha256:/);
    expect(dangling.json.blobsRemoved).toBe(2);
    const none = gc(root, '--grace', '0s');
    expect(none.json).toMatchObject({ untagged: [], blobsRemoved: 0 });
    const all = gc(root, '--all', '--keep-tag', 'v2', '--grace', '0s');
    expect(all.json.untagged.sort()).toEqual(['localhost/my-project/app:latest', 'localhost/my-project/app:v1']);
    expect(await tags(images)).toEqual(['localhost/my-project/app:v2']);
    await verifyImage(images, 'localhost/my-project/app:v2');
    expect(blobNames(images)).toHaveLength(4);
  });
});
