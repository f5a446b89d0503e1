/**
 * The benchmark image for bench/pull.sh: five gzip layers of random bytes
 * (so they do not compress, like real layers of binaries), 105 MiB in all,
 * written into an OCI image layout as bench:latest.
 * Usage (bundled by bench/pull.sh with esbuild): node pull-image.mjs LAYOUT_DIR
 */
import { randomBytes } from 'node:crypto';
import { compressLayer, tarOf, writeImage, type BuiltLayer } from '../test/helpers/images.ts';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: pull-image LAYOUT_DIR\n');
  process.exit(2);
}
const sizesMiB = [40, 30, 20, 10, 5];
const layers: BuiltLayer[] = [];
for (const [i, mib] of sizesMiB.entries()) {
  const tar = await tarOf([{ path: `layer${i}/`, type: 'dir' }, { path: `layer${i}/data.bin`, content: randomBytes(mib * 1024 * 1024) }]);
  layers.push(compressLayer(tar, 'gzip'));
}
const image = await writeImage(dir, 'bench:latest', { layers });
const total = image.layers.reduce((n, l) => n + l.size, 0);
process.stdout.write(`${JSON.stringify({ manifest: image.manifest.digest, layers: image.layers.length, bytes: total })}\n`);
