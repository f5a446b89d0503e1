import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage, writeIndex, type WrittenImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runTool, runToolAsync, tempDir } from '../helpers/run.ts';
import { expectStoreClean, indexText } from './store-check.ts';

// Pins what berth-pull does with good input: what lands in ROOT/images (a plain
// OCI image layout other tools read), the JSON document on stdout, platform
// choice from an index, re-pulls that download nothing, pulls by digest, and
// eight pulls at once into one store.
describe('berth-pull from a real registry', () => {
  let reg: TestRegistry;
  const dir = tempDir('berth-pull-');
  const layoutDir = join(dir.path, 'layout');
  let busybox: WrittenImage;
  let synthetic: WrittenImage;
  let amd64: WrittenImage;
  let arm64: WrittenImage;

  beforeAll(async () => {
    reg = await startRegistry();
    busybox = await writeImage(layoutDir, 'busybox:latest', { layers: [busyboxEntries()] });
    skopeoPush(layoutDir, 'busybox:latest', `${reg.host}/library/busybox:latest`);
    // A synthetic image with every kind of tar entry, a 4 MiB file, and a
    // whiteout; skopeo converts it to Docker schema2 as it pushes.
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    synthetic = await writeImage(layoutDir, 'synthetic:v1', {
      layers: [
        [{ path: 'etc/', type: 'dir' }, { path: 'etc/motd', content: 'hello\n' }, { path: 'data/' , type: 'dir' }, { path: 'data/big.bin', content: big }],
        [{ path: 'etc/motd.link', type: 'symlink', linkname: 'motd' }, { path: 'etc/motd.hard', type: 'hardlink', linkname: 'etc/motd' }, { path: 'etc/xattr', content: 'x', xattrs: { 'user.berth': 'yes' } }],
        [{ path: 'data/.wh.big.bin', content: '' }],
      ],
    });
    skopeoPush(layoutDir, 'synthetic:v1', `${reg.host}/synthetic:v1`, { format: 'v2s2' });
    amd64 = await writeImage(layoutDir, undefined, { layers: [[{ path: 'arch', content: 'amd64\n' }]], platform: { os: 'linux', architecture: 'amd64' } });
    arm64 = await writeImage(layoutDir, undefined, { layers: [[{ path: 'arch', content: 'arm64\n' }]], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    await writeIndex(layoutDir, 'multi:latest', [amd64, arm64]);
    execFileSync('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layoutDir}:multi:latest`, `docker://${reg.host}/multi:latest`]);
  });
  afterAll(async () => {
    await reg?.stop();
    dir.cleanup();
  });

  it('pulls busybox into an OCI image layout and prints the image document', () => {
    const root = join(dir.path, 'r-busybox');
    const ref = `${reg.host}/library/busybox:latest`;
    const r = runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]);
    expect(r.code, r.stderr).toBe(0);
    const store = join(root, 'images');
    expect(r.json).toMatchObject({
      kind: 'image',
      reference: ref,
      store,
      manifest: { digest: busybox.manifest.digest, size: busybox.manifest.size, mediaType: 'application/vnd.oci.image.manifest.v1+json', platform: { os: 'linux', architecture: 'amd64' } },
      config: busybox.config,
      platform: { os: 'linux', architecture: 'amd64' },
      layers: busybox.layers,
    });
    expect(JSON.parse(readFileSync(join(store, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([expect.objectContaining({ digest: busybox.manifest.digest, annotations: { 'org.opencontainers.image.ref.name': ref } })]);
    for (const d of [busybox.manifest, busybox.config, ...busybox.layers]) {
      expect(statSync(join(store, 'blobs', 'sha256', d.digest.slice(7))).size).toBe(d.size);
    }
    expectStoreClean(store, indexText(store));
  });

  it('leaves a store that skopeo inspects and umoci unpacks', () => {
    const root = join(dir.path, 'r-interop');
    const ref = `${reg.host}/library/busybox:latest`;
    expect(runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]).code).toBe(0);
    const store = join(root, 'images');
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${store}:${ref}`], { encoding: 'utf8' }));
    expect(inspect.Digest).toBe(busybox.manifest.digest);
    expect(inspect.Layers).toEqual(busybox.layers.map((l) => l.digest));
    expect(inspect.Architecture).toBe('amd64');
    const bundle = join(dir.path, 'umoci-bundle');
    execFileSync('umoci', ['unpack', '--image', `${store}:${ref}`, bundle], { stdio: 'pipe' });
    expect(readFileSync(join(bundle, 'rootfs', 'bin', 'busybox')).equals(readFileSync('/bin/busybox'))).toBe(true);
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'os-release'), 'utf8')).toMatch(/berth busybox/);
  });

  it('pulls a Docker schema2 image with several layers that skopeo pushed', () => {
    const root = join(dir.path, 'r-synthetic');
    const r = runTool('berth-pull', ['--root', root, '--tls-verify=false', `${reg.host}/synthetic:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(r.json.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(r.json.layers.map((l: { digest: string }) => l.digest)).toEqual(synthetic.layers.map((l) => l.digest));
    expect(r.json.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(3).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'));
    // Kept as the registry sent it, so the digest is the registry's.
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/synthetic:v1`]);
    expect(r.json.manifest.digest).toBe(`sha256:${createHash('sha256').update(raw).digest('hex')}`);
    const store = join(root, 'images');
    expectStoreClean(store, indexText(store));
    for (const l of r.json.layers as Array<{ digest: string; size: number }>) {
      expect(statSync(join(store, 'blobs', 'sha256', l.digest.slice(7))).size).toBe(l.size);
    }
  });

  it('does not download again what the store holds', () => {
    const root = join(dir.path, 'r-again');
    const ref = `${reg.host}/library/busybox:latest`;
    const first = runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]);
    expect(first.stderr).toMatch(/layer 1\/1 [a-f0-9]{12}: started/);
    const layer = join(root, 'images', 'blobs', 'sha256', busybox.layers[0]!.digest.slice(7));
    const before = statSync(layer);
    const second = runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/started/);
    expect(statSync(layer).ino).toBe(before.ino);
    expect(second.json.manifest.digest).toBe(first.json.manifest.digest);
    // Tagging the same image again keeps one entry per name.
    expect(JSON.parse(indexText(join(root, 'images'))!).manifests).toHaveLength(1);
  });

  it('releases its lease when done, so berth-gc can reclaim everything once the image is untagged', () => {
    const root = join(dir.path, 'r-lease');
    const ref = `${reg.host}/library/busybox:latest`;
    const pulled = runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const leases = join(root, 'leases');
    expect(existsSync(leases) ? readdirSync(leases).filter((f) => f.endsWith('.json')) : []).toEqual([]);
    const gc = runTool('berth-gc', ['--root', root, '--all', '--grace', '0s']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.json.untagged).toEqual([ref]);
    expect(readdirSync(join(root, 'images', 'blobs', 'sha256'))).toEqual([]);
  });

  it('picks the host platform from an index, tags the platform manifest, and stores the index blob', () => {
    const root = join(dir.path, 'r-multi');
    const ref = `${reg.host}/multi:latest`;
    const r = runTool('berth-pull', ['--root', root, '--tls-verify=false', ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.manifest).toMatchObject({ digest: amd64.manifest.digest, platform: { os: 'linux', architecture: 'amd64' } });
    expect(r.json.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    const store = join(root, 'images');
    const index = JSON.parse(indexText(store)!);
    expect(index.manifests).toEqual([expect.objectContaining({ digest: amd64.manifest.digest, platform: { os: 'linux', architecture: 'amd64' } })]);
    // The registry's index blob is kept too (its digest is what the tag resolved to).
    const head = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    const indexDigest = `sha256:${createHash('sha256').update(head).digest('hex')}`;
    expect(existsSync(join(store, 'blobs', 'sha256', indexDigest.slice(7)))).toBe(true);
    expect(readdirSync(join(store, 'blobs', 'sha256'))).not.toContain(arm64.layers[0]!.digest.slice(7));
    execFileSync('umoci', ['unpack', '--image', `${store}:${ref}`, join(dir.path, 'umoci-multi')], { stdio: 'pipe' });
    expect(readFileSync(join(dir.path, 'umoci-multi', 'rootfs', 'arch'), 'utf8')).toBe('amd64\n');
  });

  it('pulls another platform with --platform, and says which platforms exist when none matches', () => {
    const root = join(dir.path, 'r-arm');
    const r = runTool('berth-pull', ['--root', root, '--tls-verify=false', '--platform', 'linux/arm64', `${reg.host}/multi:latest`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.manifest.digest).toBe(arm64.manifest.digest);
    expect(r.json.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    const miss = runTool('berth-pull', ['--root', root, '--tls-verify=false', '--platform', 'linux/s390x', `${reg.host}/multi:latest`]);
    expect(miss.code).toBe(1);
    expect(miss.stderr).toMatch(/has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8\); choose one with --platform/);
    const bad = runTool('berth-pull', ['--root', root, '--platform', 'linux', `${reg.host}/multi:latest`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid platform "linux"/);
  });

  it('pulls by digest and by tag@digest, recording the full reference', () => {
    const root = join(dir.path, 'r-digest');
    const byDigest = `${reg.host}/library/busybox@${busybox.manifest.digest}`;
    const r = runTool('berth-pull', ['--root', root, '--tls-verify=false', byDigest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.reference).toBe(byDigest);
    const both = `${reg.host}/library/busybox:pinned@${busybox.manifest.digest}`;
    const r2 = runTool('berth-pull', ['--root', root, '--tls-verify=false', both]);
    expect(r2.code, r2.stderr).toBe(0);
    const names = JSON.parse(indexText(join(root, 'images'))!).manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']);
    expect(names.sort()).toEqual([byDigest, both].sort());
  });

  it('runs eight pulls at once into one store with overlapping layers', async () => {
    // Four images share a base layer; each is pushed under two tags: eight names.
    const base = busyboxEntries();
    const refs: string[] = [];
    for (let i = 0; i < 4; i++) {
      await writeImage(layoutDir, `app${i}:latest`, { layers: [base, [{ path: `app${i}`, content: `app ${i}\n` }]] });
      for (const tag of ['a', 'b']) {
        skopeoPush(layoutDir, `app${i}:latest`, `${reg.host}/app${i}:${tag}`);
        refs.push(`${reg.host}/app${i}:${tag}`);
      }
    }
    const root = join(dir.path, 'r-concurrent');
    const results = await Promise.all(refs.map((ref) => runToolAsync('berth-pull', ['--root', root, '--tls-verify=false', ref])));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const store = join(root, 'images');
    const names = JSON.parse(indexText(store)!).manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']);
    expect(names.sort()).toEqual([...refs].sort());
    expectStoreClean(store, indexText(store));
    for (const ref of refs) {
      const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${store}:${ref}`], { encoding: 'utf8' }));
      expect(inspect.Layers).toHaveLength(2);
    }
  });
});
