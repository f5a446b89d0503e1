/**
 * Build the guide's two images (a busybox nc "database" and a busybox httpd
 * CGI page) and push them to a registry: the same images test/engine builds.
 * Usage (bundled by wp-pod.sh with esbuild): node guide-images.mjs LAYOUT_DIR HOST:PORT
 * Prints the two references as JSON.
 */
import { pushGuideImages } from '../../../test/engine/fixtures.ts';

const [dir, host] = process.argv.slice(2);
if (!dir || !host) {
  process.stderr.write('usage: guide-images LAYOUT_DIR HOST:PORT\n');
  process.exit(2);
}
const refs = await pushGuideImages({ host, url: `http://${host}`, port: Number(host.split(':')[1]), storage: '', stop: async () => {} }, dir);
process.stdout.write(`${JSON.stringify(refs)}\n`);
