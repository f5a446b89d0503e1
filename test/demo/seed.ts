/**
 * Build the demo image: the busybox test image (Debian's busybox-static plus
 * its applet links) in an OCI image layout, tagged busybox:latest.
 * Usage (bundled by test/demo.sh with esbuild): node seed.mjs LAYOUT_DIR
 */
import { writeBusyboxImage } from '../helpers/images.ts';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: seed LAYOUT_DIR\n');
  process.exit(2);
}
const image = await writeBusyboxImage(dir, 'busybox:latest');
process.stdout.write(`${JSON.stringify({ manifest: image.manifest.digest, layers: image.layers.length })}\n`);
