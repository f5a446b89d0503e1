import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer, compressLayer, sha256, tarOf, writeImage, type LayerEntry } from '../helpers/images.ts';
import { runTool } from '../helpers/run.ts';
import { tempRoot } from './fixtures.ts';

/**
 * Layers that try to write outside their directory are refused with the
 * entry's name, the host file they aimed at keeps its content, and no
 * snapshot (nor temp directory) is left behind.
 */
describe('malicious layers', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  const host = join(t.root, 'host');
  const victim = join(host, 'passwd');
  beforeAll(() => {
    mkdirSync(host, { recursive: true });
    writeFileSync(victim, 'root:x:0:0::/root:/bin/sh\n');
  });
  afterAll(() => t.cleanup());

  const cases: Array<[string, LayerEntry[], RegExp]> = [
    ['a ".." entry', [{ path: '../../../../../../../..' + victim, content: 'pwned' }], /tar entry "\.\.\/.*passwd": .* has a "\.\." component; refused/],
    ['a ".." in the middle', [{ path: 'etc/', type: 'dir' }, { path: `etc/../../../../../../../..${victim}`, content: 'pwned' }], /tar entry "etc\/\.\.\/.*": .*"\.\." component/],
    ['an absolute path', [{ path: victim, content: 'pwned' }], /tar entry ".*passwd": .* is an absolute path; refused/],
    ['a write through a planted symlink', [{ path: 'a', type: 'symlink', linkname: host }, { path: 'a/passwd', content: 'pwned' }], /tar entry "a\/passwd": its parent "a" is a symlink planted by this layer/],
    ['a directory through a planted symlink', [{ path: 'b', type: 'symlink', linkname: host }, { path: 'b/sub/', type: 'dir' }], /tar entry "b\/sub\/": its parent "b" is a symlink/],
    ['a whiteout through a planted symlink', [{ path: 'c', type: 'symlink', linkname: host }, { path: 'c/.wh.passwd' }], /tar entry "c\/\.wh\.passwd": its parent "c" is a symlink/],
    ['a hardlink to a host file', [{ path: 'h', type: 'hardlink', linkname: `../../../../../../..${victim}` }], /tar entry "h": hardlink target ".*" leaves the layer/],
    ['a hardlink to an absolute path', [{ path: 'h', type: 'hardlink', linkname: victim }], /tar entry "h": hardlink target ".*" is an absolute path/],
    ['a hardlink through a planted symlink', [{ path: 'l', type: 'symlink', linkname: host }, { path: 'h', type: 'hardlink', linkname: 'l/passwd' }], /tar entry "h": hardlink target directory "l" is a symlink/],
    ['a whiteout naming ..', [{ path: 'd/', type: 'dir' }, { path: 'd/.wh...' }], /tar entry "d\/\.wh\.\.\.": .*"\.\." component/],
  ];

  for (const [what, entries, message] of cases) {
    it(`refuses ${what}`, async () => {
      const ref = `localhost/evil-${cases.findIndex((c) => c[0] === what)}:latest`;
      await writeImage(store, ref, { layers: [[{ path: 'ok', content: 'fine' }], entries] });
      const r = runTool('berth-store', ['--root', t.root, 'unpack', ref]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
      expect(readdirSync(host)).toEqual(['passwd']);
      expect(statSync(victim).nlink).toBe(1);
      // The good base layer is committed, the evil one is not, and nothing is left in tmp/.
      const list = runTool('berth-store', ['--root', t.root, 'list']).json;
      expect(list.snapshots.every((s: { labels?: Record<string, string> }) => s.labels?.['berth.layer.digest'] !== undefined)).toBe(true);
      expect(list.snapshots.length).toBe(1);
      expect(readdirSync(join(t.root, 'snapshots', 'tmp'))).toEqual([]);
    });
  }

  it('refuses a layer whose content does not match its diffID, and keeps nothing', async () => {
    const good = await buildLayer([{ path: 'x', content: 'x' }]);
    const other = await buildLayer([{ path: 'y', content: 'y' }]);
    await writeImage(store, 'localhost/liar:latest', { layers: [{ ...other, diffId: good.diffId }] });
    const r = runTool('berth-store', ['--root', t.root, 'unpack', 'localhost/liar:latest']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`uncompressed content hashes to ${other.diffId}, but the image config says its diffID is ${good.diffId}`));
    expect(readdirSync(join(t.root, 'snapshots', 'tmp'))).toEqual([]);
  });

  it('refuses a blob whose bytes are not what its media type says', async () => {
    const tar = await tarOf([{ path: 'x', content: 'x' }]);
    const plain = compressLayer(tar, 'none');
    await writeImage(store, 'localhost/mislabeled:latest', { layers: [{ ...plain, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }] });
    const r = runTool('berth-store', ['--root', t.root, 'unpack', 'localhost/mislabeled:latest']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/media type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip says gzip, but the blob starts like an uncompressed tar/);
  });

  it('refuses a corrupt gzip stream', async () => {
    const layer = await buildLayer([{ path: 'data', content: Buffer.alloc(200_000, 5) }, { path: 'more', content: 'm' }]);
    const blob = Buffer.from(layer.blob);
    // Break the deflate data in the middle; the gzip CRC at the end cannot match either.
    for (let i = 40; i < 60 && i < blob.length - 8; i++) blob[i] ^= 0xff;
    await writeImage(store, 'localhost/corrupt:latest', { layers: [{ ...layer, blob, digest: sha256(blob), size: blob.length }] });
    const r = runTool('berth-store', ['--root', t.root, 'unpack', 'localhost/corrupt:latest']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/layer sha256:[0-9a-f]{64}: (gzip stream is corrupt|.*checksum mismatch|uncompressed content hashes to)/);
    expect(readdirSync(join(t.root, 'snapshots', 'tmp'))).toEqual([]);
  });

  it('refuses a truncated layer', async () => {
    const tar = await tarOf([{ path: 'big', content: Buffer.alloc(100_000, 7) }]);
    const cut = tar.subarray(0, 50_000);
    const blob = gzipSync(cut);
    await writeImage(store, 'localhost/truncated:latest', { layers: [{ ...compressLayer(cut, 'gzip'), blob }] });
    const r = runTool('berth-store', ['--root', t.root, 'unpack', 'localhost/truncated:latest']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ends in the middle of an entry/);
    expect(existsSync(join(t.root, 'snapshots', 'tmp'))).toBe(true);
    expect(readdirSync(join(t.root, 'snapshots', 'tmp'))).toEqual([]);
  });
});
