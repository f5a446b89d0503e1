import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeHeader } from '@berth/archive';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { berthAs, makeUser } from '../rootless/users.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

/**
 * berth save / berth load against the tools that read and write the same
 * formats: skopeo (docker-archive:, oci-archive:, oci:, dir:) and podman load.
 * Hostile archives must be refused with exit 125, naming what is wrong, and
 * leave the store exactly as it was.
 */

let reg: TestRegistry;
let refs: Awaited<ReturnType<typeof pushGuideImages>>;
const work = tempDir('berth-save-load-');
const source = new Berth();
const berths: Berth[] = [source];
let plainId = '';

function fresh(): Berth {
  const b = new Berth();
  berths.push(b);
  return b;
}

function skopeo(...args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
}

/** The store as a user could notice it: names in index.json, blobs, nothing left in ingest/. */
function storeState(b: Berth): { index: string; blobs: string[]; ingest: string[] } {
  const images = join(b.root, 'images');
  return {
    index: readFileSync(join(images, 'index.json'), 'utf8'),
    blobs: readdirSync(join(images, 'blobs', 'sha256')).sort(),
    ingest: existsSync(join(images, 'ingest')) ? readdirSync(join(images, 'ingest')) : [],
  };
}

function ociManifest(layoutDir: string): { layers: Array<{ digest: string }>; config: { digest: string } } {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const digest = index.manifests[0]!.digest;
  return JSON.parse(readFileSync(join(layoutDir, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
}

interface Entry { name: string; content?: Buffer | string; type?: 'file' | 'symlink' | 'directory'; linkname?: string }

/** A tar built entry by entry, so a test can say exactly what a hostile archive holds. */
function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
    const type = e.type ?? 'file';
    parts.push(encodeHeader({ name: e.name, type, mode: 0o644, uid: 0, gid: 0, size: type === 'file' ? body.length : 0, mtime: 0, linkname: e.linkname }));
    if (type === 'file') parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The files of a real archive, to rebuild variants of it. */
function filesOf(archive: string): Map<string, Buffer> {
  const dir = join(work.path, `x-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) out.set(p, readFileSync(join(dir, p)));
    }
  };
  walk('');
  return out;
}

beforeAll(async () => {
  reg = await startRegistry();
  refs = await pushGuideImages(reg, join(work.path, 'seed'));
  source.ok('pull', '--tls-verify=false', refs.plain);
  source.ok('pull', '--tls-verify=false', refs.web);
  plainId = source.ok('images', '--no-trunc', '-q', refs.plain).trim();
}, 120_000);

afterAll(async () => {
  for (const b of berths) await b.cleanup();
  await reg?.stop();
  rmSync(work.path, { recursive: true, force: true });
});

describe('berth save', () => {
  test('docker-archive: skopeo reads it, and its layers are the image diffIDs', () => {
    const file = join(work.path, 'plain-docker.tar');
    const r = source.run('save', '-o', file, refs.plain);
    expect(r.code, r.stderr).toBe(0);
    const inspect = JSON.parse(skopeo('inspect', `docker-archive:${file}`)) as { Layers: string[] };
    const diffIds = JSON.parse(readFileSync(join(source.root, 'images', 'blobs', 'sha256', plainId.slice(7)), 'utf8')).rootfs.diff_ids as string[];
    expect(inspect.Layers).toEqual(diffIds);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
    expect(manifest[0].RepoTags).toEqual([refs.plain]);
    expect(manifest[0].Config).toBe(`${plainId.slice(7)}.json`);
    const layout = join(work.path, 'from-docker-archive');
    // Uncompressed in the layout too, so its layer digests are the diffIDs again.
    skopeo('copy', '-q', '--dest-oci-accept-uncompressed-layers', `docker-archive:${file}`, `oci:${layout}:plain`);
    expect(ociManifest(layout).layers.map((l) => l.digest)).toEqual(diffIds);
    expect(ociManifest(layout).config.digest).toBe(plainId);
  });

  test('oci-archive: skopeo sees the stored manifest, with the same layer digests', () => {
    const file = join(work.path, 'web-oci.tar');
    const r = source.run('save', '--format', 'oci-archive', '-q', '-o', file, refs.web);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const stored = JSON.parse(readFileSync(join(source.root, 'images', 'index.json'), 'utf8')).manifests
      .find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === refs.web);
    const inspect = JSON.parse(skopeo('inspect', `oci-archive:${file}`)) as { Digest: string; Layers: string[] };
    expect(inspect.Digest).toBe(stored.digest);
    const layout = join(work.path, 'from-oci-archive');
    skopeo('copy', '-q', `oci-archive:${file}`, `oci:${layout}:web`);
    const storedManifest = JSON.parse(readFileSync(join(source.root, 'images', 'blobs', 'sha256', stored.digest.slice(7)), 'utf8'));
    expect(ociManifest(layout).layers.map((l) => l.digest)).toEqual(storedManifest.layers.map((l: { digest: string }) => l.digest));
    expect(inspect.Layers).toEqual(storedManifest.layers.map((l: { digest: string }) => l.digest));
  });

  test('oci-dir and docker-dir: directories skopeo reads as oci: and dir:, and berth load takes back', () => {
    const ociDir = join(work.path, 'plain-oci-dir');
    const dockerDir = join(work.path, 'plain-docker-dir');
    expect(source.run('save', '--format', 'oci-dir', '-o', ociDir, refs.plain).code).toBe(0);
    expect(source.run('save', '--format', 'docker-dir', '-o', dockerDir, refs.plain).code).toBe(0);
    expect(JSON.parse(skopeo('inspect', `oci:${ociDir}`)).Layers).toHaveLength(1);
    const dir = JSON.parse(skopeo('inspect', '--raw', `dir:${dockerDir}`));
    expect(dir.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(readFileSync(join(dockerDir, 'version'), 'utf8')).toBe('Directory Transport Version: 1.1\n');
    // berth load takes both directories back, as podman's local load does.
    const b = fresh();
    expect(b.run('load', '-q', '-i', ociDir).stdout).toBe(`Loaded image: ${refs.plain}\n`);
    expect(b.run('load', '-q', '-i', dockerDir).stdout).toBe(`Loaded image: ${plainId}\n`);
    expect(b.ok('images', '--no-trunc', '-q').trim()).toBe(plainId);
    // A directory that is not empty is refused up front, and left alone.
    const r = source.run('save', '--format', 'oci-dir', '-o', ociDir, refs.plain);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/not empty/);
  });

  test('-m saves several images; without -m more names are tags (podman), refused for other formats', () => {
    const file = join(work.path, 'two.tar');
    expect(source.run('save', '-q', '-m', '-o', file, refs.plain, refs.web).code).toBe(0);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
    expect(manifest.map((m: { RepoTags: string[] }) => m.RepoTags)).toEqual([[refs.plain], [refs.web]]);

    const tagged = join(work.path, 'tagged.tar');
    expect(source.run('save', '-q', '-o', tagged, refs.plain, 'extra:1').code).toBe(0);
    const one = JSON.parse(execFileSync('tar', ['-xOf', tagged, 'manifest.json'], { encoding: 'utf8' }));
    expect(one).toHaveLength(1);
    expect(one[0].RepoTags).toEqual(['localhost/extra:1', refs.plain]);

    const multiOci = source.run('save', '-m', '--format', 'oci-archive', '-o', join(work.path, 'no.tar'), refs.plain, refs.web);
    expect(multiOci.code).toBe(125);
    expect(multiOci.stderr).toMatch(/only docker-archive/);
    const twoOci = source.run('save', '--format', 'oci-archive', '-o', join(work.path, 'no.tar'), refs.plain, refs.web);
    expect(twoOci.code).toBe(125);
    expect(existsSync(join(work.path, 'no.tar'))).toBe(false);
  });

  test('refuses a terminal, a missing image and a bad format; -o leaves no file behind', () => {
    const tty = spawnSync('script', ['-qec', `${process.execPath} ${binPath('berth')} --root ${source.root} --runroot ${source.runRoot} save ${refs.plain}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    expect(tty.status).toBe(125);
    expect(tty.stdout).toMatch(/refusing to save to terminal/);
    const dir = join(work.path, 'failed-save');
    mkdirSync(dir);
    const missing = source.run('save', '-o', join(dir, 'x.tar'), 'nosuch:1');
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/nosuch:1: image not known/);
    expect(readdirSync(dir)).toEqual([]);
    const format = source.run('save', '--format', 'zip', '-o', join(dir, 'x.tar'), refs.plain);
    expect(format.code).toBe(125);
    expect(format.stderr).toMatch(/unknown format "zip"/);
  });
});

describe('berth load', () => {
  test('archives written by skopeo load, and the loaded image runs', () => {
    const dockerFile = join(work.path, 'skopeo-docker.tar');
    const ociFile = join(work.path, 'skopeo-oci.tar');
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${refs.web}`, `docker-archive:${dockerFile}:${refs.web}`);
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${refs.plain}`, `oci-archive:${ociFile}:${refs.plain}`);
    const b = fresh();
    const d = b.run('load', '-i', dockerFile);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`Loaded image: ${refs.web}\n`);
    const o = b.run('load', '-q', '-i', ociFile);
    expect(o.code, o.stderr).toBe(0);
    expect(o.stdout).toBe(`Loaded image: ${refs.plain}\n`);
    expect(b.ok('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').filter(Boolean).sort()).toEqual([refs.plain, refs.web].sort());
    // docker-archive layers are uncompressed: stored as OCI tar layers whose digest is the diffID.
    const webIndex = JSON.parse(readFileSync(join(b.root, 'images', 'index.json'), 'utf8')).manifests
      .find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === refs.web);
    const manifest = JSON.parse(readFileSync(join(b.root, 'images', 'blobs', 'sha256', webIndex.digest.slice(7)), 'utf8'));
    const config = JSON.parse(readFileSync(join(b.root, 'images', 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(manifest.layers.map(() => 'application/vnd.oci.image.layer.v1.tar'));
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(config.rootfs.diff_ids);
    expect(b.ok('run', '--rm', refs.web, 'cat', '/var/www/index.html')).toBe('static page\n');
    expect(b.ok('run', '--rm', refs.plain, 'echo', 'loaded from oci-archive')).toBe('loaded from oci-archive\n');
  }, 120_000);

  test('an unnamed oci-archive image loads as sha256:ID, as podman prints it', () => {
    const file = join(work.path, 'unnamed-oci.tar');
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${refs.plain}`, `oci-archive:${file}`);
    const b = fresh();
    const r = b.run('load', '-i', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`Loaded image: ${plainId}\n`);
    expect(b.ok('images', '--no-trunc', '-q').trim()).toBe(plainId);
  });

  test('berth save | berth load through a pipe into another root', () => {
    const b = fresh();
    const launcher = binPath('berth');
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', `"$0" "$1" --root "$2" --runroot "$3" save "$4" | "$0" "$1" --root "$5" --runroot "$6" load`,
      process.execPath, launcher, source.root, source.runRoot, refs.web, b.root, b.runRoot], { encoding: 'utf8', timeout: 90_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`Loaded image: ${refs.web}\n`);
    const webId = source.ok('images', '--no-trunc', '-q', refs.web).trim();
    expect(b.ok('images', '--no-trunc', '-q', refs.web).trim()).toBe(webId);
    expect(b.ok('run', '--rm', refs.web, 'cat', '/var/www/index.html')).toBe('static page\n');
  }, 120_000);

  test('an image loaded from a docker-archive saves as oci-archive: layers gzipped, or kept with --uncompressed; docker-dir --compress', () => {
    const b = fresh();
    const dockerFile = join(work.path, 'round-docker.tar');
    expect(source.run('save', '-q', '-o', dockerFile, refs.plain).code).toBe(0);
    expect(b.run('load', '-q', '-i', dockerFile).code).toBe(0);
    const gz = join(work.path, 'round-gz-oci.tar');
    const raw = join(work.path, 'round-raw-oci.tar');
    expect(b.run('save', '-q', '--format', 'oci-archive', '-o', gz, refs.plain).code).toBe(0);
    expect(b.run('save', '-q', '--format', 'oci-archive', '--uncompressed', '-o', raw, refs.plain).code).toBe(0);
    const types = (file: string) => (JSON.parse(skopeo('inspect', '--raw', `oci-archive:${file}`)) as { layers: Array<{ mediaType: string }> }).layers.map((l) => l.mediaType);
    expect(types(gz)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip']);
    expect(types(raw)).toEqual(['application/vnd.oci.image.layer.v1.tar']);
    // docker-dir keeps the stored compression unless --compress, as podman's.
    const plainDir = join(work.path, 'round-dir');
    const gzDir = join(work.path, 'round-dir-gz');
    expect(b.run('save', '-q', '--format', 'docker-dir', '-o', plainDir, refs.plain).code).toBe(0);
    expect(b.run('save', '-q', '--format', 'docker-dir', '--compress', '-o', gzDir, refs.plain).code).toBe(0);
    const dirTypes = (dir: string) => (JSON.parse(skopeo('inspect', '--raw', `dir:${dir}`)) as { layers: Array<{ mediaType: string }> }).layers.map((l) => l.mediaType);
    expect(dirTypes(plainDir)).toEqual(['application/vnd.docker.image.rootfs.diff.tar']);
    expect(dirTypes(gzDir)).toEqual(['application/vnd.docker.image.rootfs.diff.tar.gzip']);
    expect(b.run('load', '-q', '-i', gzDir).stdout).toBe(`Loaded image: ${plainId}\n`);
    const misuse = b.run('save', '--compress', '-o', join(work.path, 'no-compress.tar'), refs.plain);
    expect(misuse.code).toBe(125);
    expect(misuse.stderr).toMatch(/--compress can only be set when --format is docker-dir/);
    // Either way the image is the same: same config, so the same IMAGE ID after a load elsewhere.
    const c = fresh();
    expect(c.run('load', '-q', '-i', gz).stdout).toBe(`Loaded image: ${refs.plain}\n`);
    expect(c.ok('images', '--no-trunc', '-q').trim()).toBe(plainId);
    expect(c.ok('run', '--rm', refs.plain, 'echo', 'regzipped')).toBe('regzipped\n');
  }, 120_000);

  test('podman load reads berth\'s docker-archive', () => {
    const file = join(work.path, 'for-podman.tar');
    expect(source.run('save', '-q', '-o', file, refs.web).code).toBe(0);
    const proot = join(work.path, 'podman-root');
    const prun = join(work.path, 'podman-run');
    const podman = (...args: string[]) => execFileSync('podman', ['--root', proot, '--runroot', prun, '--storage-driver', 'vfs', ...args], { encoding: 'utf8', timeout: 60_000 });
    try {
      expect(podman('load', '-q', '-i', file)).toContain(`Loaded image: ${refs.web}`);
      const ids = podman('images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}');
      expect(ids).toContain(`${source.ok('images', '--no-trunc', '-q', refs.web).trim()} ${refs.web}`);
    } finally {
      try { podman('rmi', '-a', '-f'); } catch { /* best effort before the directory goes */ }
      rmSync(proot, { recursive: true, force: true });
      rmSync(prun, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('rootless', () => {
  test('an ordinary user saves and loads against their own store', () => {
    const suffix = Math.random().toString(36).slice(2, 7);
    const user = makeUser(`brsl${suffix}`, { start: 1700000, count: 65536 });
    try {
      const archive = join(user.home, 'plain.tar');
      expect(source.run('save', '-q', '-o', archive, refs.plain).code).toBe(0);
      execFileSync('chown', [`${user.uid}`, archive]);
      const loaded = berthAs(user, ['load', '-q', '-i', archive]);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect(loaded.stdout).toBe(`Loaded image: ${refs.plain}\n`);
      const again = join(user.home, 'again.tar');
      const saved = berthAs(user, ['save', '-q', '--format', 'oci-archive', '-o', again, refs.plain]);
      expect(saved.code, saved.stderr).toBe(0);
      expect(JSON.parse(skopeo('inspect', '--raw', `oci-archive:${again}`)).config.digest).toBe(plainId);
      const run = berthAs(user, ['run', '--rm', refs.plain, 'echo', 'rootless load']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('rootless load\n');
    } finally {
      user.remove();
    }
  }, 120_000);
});

describe('berth load refuses hostile archives and leaves the store unchanged', () => {
  let target: Berth;
  let good: Map<string, Buffer>;
  let goodOci: Map<string, Buffer>;
  let manifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;

  beforeAll(() => {
    const dockerFile = join(work.path, 'good-docker.tar');
    const ociFile = join(work.path, 'good-oci.tar');
    expect(source.run('save', '-q', '-o', dockerFile, refs.plain).code).toBe(0);
    expect(source.run('save', '-q', '--format', 'oci-archive', '-o', ociFile, refs.plain).code).toBe(0);
    good = filesOf(dockerFile);
    goodOci = filesOf(ociFile);
    manifest = JSON.parse(good.get('manifest.json')!.toString());
    target = fresh();
    // The target already holds an image, so "unchanged" means something.
    expect(target.run('load', '-q', '-i', ociFile).code).toBe(0);
  });

  const docker = (over: { manifest?: unknown; extra?: Entry[]; drop?: string[] } = {}): Entry[] => {
    const entries: Entry[] = [];
    for (const [name, content] of good) {
      if (name === 'manifest.json' || over.drop?.includes(name)) continue;
      entries.push({ name, content });
    }
    entries.push(...(over.extra ?? []));
    entries.push({ name: 'manifest.json', content: JSON.stringify(over.manifest ?? manifest) });
    return entries;
  };

  const cases: Array<{ what: string; archive: () => Buffer; error: RegExp }> = [
    { what: 'an entry with ../', archive: () => tarOf(docker({ extra: [{ name: '../escape', content: 'x' }] })), error: /"\.\.\/escape" has a "\.\." component/ },
    { what: 'an absolute entry', archive: () => tarOf(docker({ extra: [{ name: '/etc/escape', content: 'x' }] })), error: /"\/etc\/escape" is an absolute path/ },
    {
      what: 'a layer that is a symlink out of the archive',
      archive: () => tarOf(docker({
        extra: [{ name: 'evil/layer.tar', type: 'symlink', linkname: '../../etc/passwd' }],
        manifest: [{ ...manifest[0]!, Layers: ['evil/layer.tar'] }],
      })),
      error: /symlink "evil\/layer.tar" -> "\.\.\/\.\.\/etc\/passwd" points outside the archive/,
    },
    {
      what: 'a manifest naming a missing layer',
      archive: () => tarOf(docker({ drop: [manifest[0]!.Layers[0]!] })),
      error: /layer 0 "[0-9a-f]{64}\.tar" is not in the archive/,
    },
    {
      what: 'a layer that does not match the config\'s diffID',
      archive: () => {
        const entries = docker();
        const layer = entries.find((e) => e.name === manifest[0]!.Layers[0])!;
        const bytes = Buffer.from(layer.content as Buffer);
        bytes[bytes.length - 2000] ^= 0xff;
        layer.content = bytes;
        return tarOf(entries);
      },
      error: /uncompressed content hashes to sha256:[0-9a-f]{64}, the config's diff_ids\[0\] says/,
    },
    {
      what: 'an oci-archive blob whose content does not match its digest',
      archive: () => {
        const idx = JSON.parse(goodOci.get('index.json')!.toString());
        const m = JSON.parse(goodOci.get(`blobs/sha256/${idx.manifests[0].digest.slice(7)}`)!.toString());
        const layerName = `blobs/sha256/${m.layers[0].digest.slice(7)}`;
        return tarOf([...goodOci].map(([name, content]) => {
          if (name !== layerName) return { name, content };
          const bytes = Buffer.from(content);
          bytes[100] ^= 0xff;
          return { name, content: bytes };
        }));
      },
      error: /layer 0 sha256:[0-9a-f]{64}: its content hashes to sha256:/,
    },
    {
      what: 'an oci-archive whose index names a missing manifest',
      archive: () => {
        const idx = JSON.parse(goodOci.get('index.json')!.toString());
        return tarOf([...goodOci].filter(([name]) => name !== `blobs/sha256/${idx.manifests[0].digest.slice(7)}`).map(([name, content]) => ({ name, content })));
      },
      error: /manifest sha256:[0-9a-f]{64} is named by the archive but its blob is missing/,
    },
    {
      what: 'a truncated archive',
      archive: () => { const whole = tarOf(docker()); return whole.subarray(0, Math.floor(whole.length / 2)); },
      error: /truncated/,
    },
    { what: 'a file that is not an archive', archive: () => Buffer.from('this is not a tar file\n'.repeat(100)), error: /not a tar archive/ },
    { what: 'a tar that is no image archive', archive: () => tarOf([{ name: 'hello.txt', content: 'hi' }]), error: /not a docker-archive \(no manifest.json\) or an oci-archive/ },
  ];

  for (const c of cases) {
    test(c.what, () => {
      const before = storeState(target);
      const file = join(work.path, `hostile-${cases.indexOf(c)}.tar`);
      writeFileSync(file, c.archive());
      const r = target.run('load', '-i', file);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(c.error);
      expect(r.stdout).toBe('');
      expect(storeState(target)).toEqual(before);
    });
  }

  test('the same refusal on stdin', () => {
    const before = storeState(target);
    const r = spawnSync(process.execPath, [binPath('berth'), ...target.args(['load'])], { input: tarOf(docker({ extra: [{ name: '../escape', content: 'x' }] })), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/loading stdin: tar entry "\.\.\/escape"/);
    expect(storeState(target)).toEqual(before);
  });
});
