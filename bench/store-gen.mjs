// Build the benchmark image for bench/store.sh: an OCI image layout with one
// gzip layer per source directory (real trees from this machine: many small
// files, symlinks, a few big files), tagged bench:latest.
// Usage: node store-gen.mjs LAYOUT_DIR SRC_DIR...
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';

const [layout, ...sources] = process.argv.slice(2);
if (!layout || sources.length === 0) { console.error('usage: store-gen.mjs LAYOUT SRC...'); process.exit(2); }
const blobs = join(layout, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });

function writeBlob(bytes) {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

const layers = [];
const diffIds = [];
for (const src of sources) {
  const tar = spawn('tar', ['--numeric-owner', '--xattrs', '-C', src, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  const tmp = join(layout, `layer.tmp`);
  await pipeline(
    tar.stdout,
    async function* (src) { for await (const c of src) { diff.update(c); yield c; } },
    createGzip({ level: 6 }),
    async function* (src) { for await (const c of src) { blob.update(c); yield c; } },
    createWriteStream(tmp),
  );
  const hex = blob.digest('hex');
  renameSync(tmp, join(blobs, hex));
  layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size: statSync(join(blobs, hex)).size });
  diffIds.push(`sha256:${diff.digest('hex')}`);
  console.error(`layer ${src}: ${layers.at(-1).size} bytes compressed`);
}
const config = writeBlob(Buffer.from(JSON.stringify({
  architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
  rootfs: { type: 'layers', diff_ids: diffIds },
})));
const manifest = writeBlob(Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers,
})));
writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(join(layout, 'index.json'), JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench:latest' } }],
}));
