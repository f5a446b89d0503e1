import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageLayout } from '@berth/content';
import { MediaType, RefNameAnnotation } from '@berth/oci-spec';
import { removeCgroupTree } from '../engines/helpers.ts';
import { tarOf, type LayerEntry } from '../helpers/images.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

// `berth diff`, `berth export` and `berth import` as podman has them: diff
// lists a container's changes by podman's rules (and says the same as podman
// about the same changes to the same image), export writes the container's
// whole filesystem as a tar that tar, podman import and berth import read,
// and import makes a one-layer image of a tarball, refusing a hostile one
// without leaving a trace in the store.
let reg: TestRegistry;
const layout = tempDir('berth-engine-diff-layout-');
const work = tempDir('berth-engine-diff-work-');
const berth = new Berth();
const sfx = Math.random().toString(36).slice(2, 8);
let web = '';

/** What the diff test's container does, in berth and in podman alike. */
const CHANGES = [
  'echo more >> /var/www/index.html',
  'rm -rf /var/www/cgi-bin && mkdir /var/www/cgi-bin && echo new > /var/www/cgi-bin/index.cgi && echo other > /var/www/cgi-bin/other',
  'rm /etc/os-release',
  'chmod 600 /etc/group',
  'mkdir -p /srv/app/data && echo data > /srv/app/data/f',
  'echo new > /tmp/new && ln /tmp/new /tmp/new-link && ln -s /etc/passwd /tmp/link && mkfifo /tmp/fifo',
  'mkdir -p /run/app && echo 1 > /run/app/pid',
].join(' && ');

/**
 * By podman's rules: an opaque directory is D, what it holds now follows;
 * a name below is C when a lower layer has it; the parents of A and D are C,
 * root-most first; directories only copied up (/var for /var/www/index.html)
 * are no change; /run, /etc/hosts and the other runtime stubs are left out.
 */
const EXPECTED = [
  'C /etc',
  'C /etc/group',
  'D /etc/os-release',
  'A /run/app',
  'A /run/app/pid',
  'A /srv',
  'A /srv/app',
  'A /srv/app/data',
  'A /srv/app/data/f',
  'C /tmp',
  'A /tmp/fifo',
  'A /tmp/link',
  'A /tmp/new',
  'A /tmp/new-link',
  'C /var/www',
  'C /var',
  'D /var/www/cgi-bin',
  'C /var/www/cgi-bin/index.cgi',
  'A /var/www/cgi-bin/other',
  'C /var/www/index.html',
];

const CHANGED = `changed-${sfx}`;
const FRESH = `fresh-${sfx}`;
const LIVE = `live-${sfx}`;

/** berth with bytes on stdout or stdin (a tar), which runTool's utf8 strings would mangle. */
function berthRaw(args: string[], input?: Buffer): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [binPath('berth'), ...berth.args(args)], { input, maxBuffer: 256 << 20, timeout: 90_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** tar -tv as {type, name, size, link} per entry (GNU tar's verbose listing). */
function listing(file: string): Map<string, { type: string; mode: string; size: number; link?: string }> {
  const out = new Map<string, { type: string; mode: string; size: number; link?: string }>();
  for (const line of execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter(Boolean)) {
    const m = /^(\S)(\S{9})\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unexpected tar -tv line: ${line}`);
    let name = m[4]!;
    let link: string | undefined;
    const arrow = name.indexOf(' -> ');
    const hard = name.indexOf(' link to ');
    if (arrow >= 0) { link = name.slice(arrow + 4); name = name.slice(0, arrow); }
    else if (hard >= 0) { link = name.slice(hard + 9); name = name.slice(0, hard); }
    out.set(name, { type: m[1]!, mode: m[2]!, size: Number(m[3]), link });
  }
  return out;
}

function tarContent(file: string, name: string): string {
  return execFileSync('tar', ['-xOf', file, name], { encoding: 'utf8' });
}

/** The store as a hostile import must leave it: index.json's bytes, every blob, the snapshots, no staging left. */
function storeState(): { index: string; blobs: string[]; snapshots: string; ingest: string[]; snapshotTmp: string[] } {
  const images = join(berth.root, 'images');
  const ls = (d: string) => { try { return readdirSync(d).sort(); } catch { return []; } };
  return {
    index: readFileSync(join(images, 'index.json'), 'utf8'),
    blobs: ls(join(images, 'blobs', 'sha256')),
    snapshots: readFileSync(join(berth.root, 'snapshots', 'metadata.json'), 'utf8'),
    ingest: ls(join(images, 'ingest')),
    snapshotTmp: ls(join(berth.root, 'snapshots', 'tmp')),
  };
}

/** An image's config and manifest, read from the OCI layout under ROOT/images. */
async function storedImage(ref: string): Promise<{ config: Record<string, any>; layers: Array<{ mediaType: string }> }> {
  const l = new ImageLayout(join(berth.root, 'images'));
  const desc = (await l.readIndex()).manifests.find((m) => m.annotations?.[RefNameAnnotation] === ref);
  if (!desc) throw new Error(`${ref} is not in index.json`);
  const manifest = JSON.parse((await l.readBlob(desc.digest)).toString()) as { config: { digest: string }; layers: Array<{ mediaType: string }> };
  return { config: JSON.parse((await l.readBlob(manifest.config.digest)).toString()), layers: manifest.layers };
}

// ---- podman, on a store of its own under work/podman --------------------------------

const pdir = join(work.path, 'podman');
const cgroupParent = `/berth-diff-export-${process.pid}`;
function podman(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', [
    '--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--tmpdir', join(pdir, 'tmp'),
    '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc', ...args,
  ], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}
// Root here lacks CAP_SYS_RESOURCE: podman's default limits are above the hard limits.
const PODMAN_RUN = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', '--network', 'none', '--cgroup-parent', cgroupParent];

beforeAll(async () => {
  reg = await startRegistry();
  web = (await pushGuideImages(reg, layout.path)).web;
  berth.ok('pull', '--tls-verify=false', web);
  berth.ok('run', '--name', CHANGED, web, 'sh', '-c', CHANGES);
  berth.ok('create', '--name', FRESH, web, 'true');
  // The runtime swap: this one runs under runc, and stays running.
  berth.ok('--runtime', 'runc', 'run', '-d', '--name', LIVE, web, 'sh', '-c', 'echo live > /tmp/live; exec sleep 600');
}, 180_000);

afterAll(async () => {
  await berth.cleanup();
  podman('rm', '--force', '--all', '--time', '0');
  podman('rmi', '--all', '--force');
  // podman unmounts its overlay store on this call; then nothing of it is mounted.
  spawnSync('podman', ['--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--storage-driver', 'overlay', 'system', 'reset', '--force'], { stdio: 'ignore' });
  removeCgroupTree(cgroupParent);
  await reg?.stop();
  layout.cleanup();
  if (!readFileSync('/proc/self/mountinfo', 'utf8').includes(work.path)) work.cleanup();
});

describe('berth diff', () => {
  it('lists a container\'s changes by podman\'s rules: opaque dirs, parents of A and D, copied-up dirs left out, runtime stubs hidden', () => {
    expect(berth.ok('diff', CHANGED).trim().split('\n')).toEqual(EXPECTED);
    // The long form is the same command.
    expect(berth.ok('container', 'diff', CHANGED).trim().split('\n')).toEqual(EXPECTED);
  });

  it('says what podman diff says about the same changes to the same image', () => {
    expect(podman('pull', '--quiet', '--tls-verify=false', web).code).toBe(0);
    const name = `pdiff-${sfx}`;
    const ran = podman('run', ...PODMAN_RUN, '--name', name, web, 'sh', '-c', CHANGES);
    expect(ran.code, ran.stderr).toBe(0);
    const theirs = podman('diff', name);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(berth.ok('diff', CHANGED)).toBe(theirs.stdout);
    const theirsJson = podman('diff', '--format', 'json', name);
    expect(berth.ok('diff', '--format', 'json', CHANGED)).toBe(theirsJson.stdout);
    podman('rm', '--force', name);
  });

  it('--format json groups the paths as podman does, each list in walk order', () => {
    const doc = JSON.parse(berth.ok('diff', '--format', 'json', CHANGED)) as Record<string, string[]>;
    expect(Object.keys(doc)).toEqual(['changed', 'added', 'deleted']);
    expect(doc.deleted).toEqual(['/etc/os-release', '/var/www/cgi-bin']);
    expect(doc.changed).toEqual(EXPECTED.filter((l) => l.startsWith('C ')).map((l) => l.slice(2)));
    expect(doc.added).toContain('/srv/app/data/f');
  });

  it('a container that changed nothing: no lines, and {} as JSON', () => {
    expect(berth.ok('diff', FRESH)).toBe('');
    expect(berth.ok('diff', '--format', 'json', FRESH).trim()).toBe('{}');
  });

  it('a running container under runc: what it wrote so far', () => {
    const lines = berth.ok('diff', LIVE).trim().split('\n');
    expect(lines).toEqual(['C /etc', 'C /tmp', 'A /tmp/live']);
  });

  it('an image: its top layer against the layers below (the busybox base holds /var/www already)', () => {
    expect(berth.ok('image', 'diff', web).trim().split('\n')).toEqual([
      'C /var', 'C /var/www', 'A /var/www/cgi-bin', 'A /var/www/cgi-bin/index.cgi', 'A /var/www/index.html',
    ]);
  });

  it('names what is missing or wrong, exit 125', () => {
    const none = berth.run('diff', `nope-${sfx}`);
    expect(none.code).toBe(125);
    expect(none.stderr).toMatch(/nope-\w+ not found: no such container or image/);
    const notImage = berth.run('image', 'diff', CHANGED);
    expect(notImage.code).toBe(125);
    expect(notImage.stderr).toMatch(/not found: no such image/);
    const format = berth.run('diff', '--format', 'yaml', CHANGED);
    expect(format.code).toBe(125);
    expect(format.stderr).toContain("the only supported value for --format is 'json'");
  });
});

describe('berth export', () => {
  it('writes an exited container\'s whole filesystem: the image\'s files with its changes, none of the runtime\'s mounts', () => {
    const r = berthRaw(['export', CHANGED]);
    expect(r.code, r.stderr).toBe(0);
    const file = join(work.path, 'changed.tar');
    writeFileSync(file, r.stdout);
    const tar = listing(file);
    // The image's files, named as podman names them (no "./", no leading "/", directories with "/").
    expect(tar.get('bin/busybox')).toMatchObject({ type: '-', size: statSync('/bin/busybox').size });
    expect(tar.get('etc/passwd')?.type).toBe('-');
    expect(tar.get('var/www/')?.type).toBe('d');
    expect([...tar.keys()].every((n) => !n.startsWith('./') && !n.startsWith('/'))).toBe(true);
    // The container's changes.
    expect(tarContent(file, 'srv/app/data/f')).toBe('data\n');
    expect(tarContent(file, 'var/www/index.html')).toBe('static page\nmore\n');
    expect(tarContent(file, 'var/www/cgi-bin/index.cgi')).toBe('new\n');
    expect(tarContent(file, 'var/www/cgi-bin/other')).toBe('other\n');
    expect(tar.has('etc/os-release')).toBe(false);
    expect(tar.get('etc/group')?.mode).toBe('rw-------');
    expect(tar.get('tmp/new-link')).toMatchObject({ type: 'h', link: 'tmp/new' });
    expect(tar.get('tmp/link')).toMatchObject({ type: 'l', link: '/etc/passwd' });
    expect(tar.get('tmp/fifo')?.type).toBe('p');
    // The mount points as the overlay has them: empty stubs and empty directories.
    expect(tar.get('etc/hosts')).toMatchObject({ type: '-', size: 0 });
    expect(tar.get('proc/')?.type).toBe('d');
    expect([...tar.keys()].some((n) => n.startsWith('proc/') && n !== 'proc/')).toBe(false);
  });

  it('-o writes the file whole (a temp name renamed), the same bytes as stdout; nothing when it cannot', () => {
    const file = join(work.path, 'out', 'fresh.tar');
    mkdirSync(join(work.path, 'out'));
    const missing = berth.run('export', '-o', join(work.path, 'no-such-dir', 'x.tar'), FRESH);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/creating .*no-such-dir\/x\.tar/);
    berth.ok('export', '-o', file, FRESH);
    expect(readdirSync(join(work.path, 'out'))).toEqual(['fresh.tar']);
    expect(readFileSync(file).equals(berthRaw(['container', 'export', FRESH]).stdout)).toBe(true);
    expect(listing(file).get('var/www/cgi-bin/index.cgi')?.type).toBe('-');
  });

  it('a running container under runc: what it wrote, from the overlay (no /proc contents); its symlinks stay symlinks', () => {
    // A container pointing names at the host's / and /etc/passwd: export must not follow them.
    berth.ok('exec', LIVE, 'sh', '-c', 'ln -s / /tmp/rootlink && ln -s /etc/passwd /tmp/passwd-link');
    const r = berthRaw(['export', LIVE]);
    expect(r.code, r.stderr).toBe(0);
    const file = join(work.path, 'live.tar');
    writeFileSync(file, r.stdout);
    expect(tarContent(file, 'tmp/live')).toBe('live\n');
    const tar = listing(file);
    expect([...tar.keys()].filter((n) => n.startsWith('proc/') || n.startsWith('sys/') || n.startsWith('dev/'))).toEqual(['dev/', 'proc/', 'sys/']);
    expect(tar.get('tmp/rootlink')).toMatchObject({ type: 'l', link: '/' });
    expect(tar.get('tmp/passwd-link')).toMatchObject({ type: 'l', link: '/etc/passwd' });
    expect([...tar.keys()].filter((n) => n.startsWith('tmp/rootlink/'))).toEqual([]);
  });

  it('a created container whose overlay is not mounted (after a reboot) is mounted for the export and unmounted after', () => {
    const id = berth.ok('inspect', '-f', '{{.Id}}', FRESH).trim();
    const rootfs = join(berth.root, 'containers', id, 'bundle', 'rootfs');
    const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === rootfs);
    execFileSync('umount', [rootfs]);
    expect(mounted()).toBe(false);
    const r = berthRaw(['export', FRESH]);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(join(work.path, 'fresh2.tar'), r.stdout);
    expect(listing(join(work.path, 'fresh2.tar')).has('bin/busybox')).toBe(true);
    expect(mounted()).toBe(false);
  });

  it('refuses to write a tar to a terminal, as podman does', () => {
    const quoted = [process.execPath, binPath('berth'), ...berth.args(['export', FRESH])].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', quoted, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(125);
    expect(r.stdout).toContain('refusing to export to terminal. Use -o flag or redirect');
  });

  it('names a missing container, exit 125', () => {
    const r = berthRaw(['export', `nope-${sfx}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`no container with name or ID "nope-${sfx}" found`);
  });
});

describe('berth import', () => {
  const exported = join(work.path, 'export-for-import.tar');
  beforeAll(() => {
    writeFileSync(exported, berthRaw(['export', CHANGED]).stdout);
    // A fixed mtime: the image's created time comes from it.
    utimesSync(exported, 1700000000.5, 1700000000.5);
  });

  it('podman import reads berth export, and gives the image the same id berth import does', () => {
    const theirs = podman('import', '--quiet', exported, `localhost/from-berth-${sfx}:1`);
    expect(theirs.code, theirs.stderr).toBe(0);
    const ours = berth.ok('import', '-q', exported, `from-berth-${sfx}:1`).trim();
    expect(ours).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ours).toBe(theirs.stdout.trim());
    const ran = podman('run', '--rm', ...PODMAN_RUN, `localhost/from-berth-${sfx}:1`, 'cat', '/srv/app/data/f', '/var/www/cgi-bin/other');
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('data\nother\n');
    expect(podman('rmi', `localhost/from-berth-${sfx}:1`).code).toBe(0);
  });

  it('berth import of berth export runs; --change CMD and -m land in the config; the layer is stored as given', async () => {
    const out = berth.run('import', '-c', 'CMD ["cat", "/srv/app/data/f"]', '-c', 'ENV GREETING=hi', '-m', 'flattened', exported, `flat-${sfx}`);
    expect(out.code, out.stderr).toBe(0);
    // podman's lines on stderr, the id on stdout.
    expect(out.stderr).toContain('Writing manifest to image destination');
    expect(out.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(berth.ok('run', '--rm', `flat-${sfx}`)).toBe('data\n');
    expect(berth.ok('run', '--rm', `flat-${sfx}`, 'sh', '-c', 'echo $GREETING; cat /var/www/index.html; ls /etc/os-release 2>&1 || true')).toMatch(/^hi\nstatic page\nmore\n.*No such file/);
    const img = await storedImage(`localhost/flat-${sfx}:latest`);
    expect(img.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayer]);
    expect(img.config.created).toBe('2023-11-14T22:13:20.5Z');
    expect(img.config.config).toEqual({ Env: ['GREETING=hi'], Cmd: ['cat', '/srv/app/data/f'] });
    expect(img.config.history).toEqual([{ created: img.config.created, created_by: expect.stringMatching(/^\/bin\/sh -c #\(nop\) ADD file:[0-9a-f]{64} in \/$/), comment: 'flattened' }]);
  });

  it('a gzip tarball made with tar, from a file and from stdin, runs', async () => {
    const dir = join(work.path, 'rootfs');
    mkdirSync(join(dir, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    chmodSync(join(dir, 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', join(dir, 'bin', 'sh'));
    writeFileSync(join(dir, 'hello'), 'made with tar\n');
    const tgz = join(work.path, 'rootfs.tgz');
    execFileSync('tar', ['-C', dir, '-czf', tgz, '.']);
    berth.ok('import', '-q', '--change', 'CMD /bin/busybox cat /hello', tgz, `tarball-${sfx}:v1`);
    expect(berth.ok('run', '--rm', `tarball-${sfx}:v1`)).toBe('made with tar\n');
    expect((await storedImage(`localhost/tarball-${sfx}:v1`)).layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip]);
    const piped = berthRaw(['import', '-q', '-'], readFileSync(tgz));
    expect(piped.code, piped.stderr).toBe(0);
    const id = piped.stdout.toString().trim();
    expect(berth.ok('run', '--rm', id.slice('sha256:'.length, 'sha256:'.length + 12), '/bin/sh', '-c', 'cat /hello')).toBe('made with tar\n');
  });

  const hostile: Array<[string, LayerEntry[], RegExp]> = [
    ['a ".." name', [{ path: 'ok', content: 'ok' }, { path: '../escaped', content: 'evil' }], /tar entry "\.\.\/escaped": .* has a "\.\." component; refused/],
    ['an absolute name', [{ path: '/escaped', content: 'evil' }], /tar entry "\/escaped": .* is an absolute path; refused/],
    ['a write through a symlink it planted', [{ path: 'link', type: 'symlink', linkname: '/tmp' }, { path: 'link/escaped', content: 'evil' }], /its parent "link" is a symlink planted by this layer/],
    ['a hard link out of the tarball', [{ path: 'h', type: 'hardlink', linkname: '../../../../etc/passwd' }], /hardlink target "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd" leaves the layer; refused/],
  ];
  for (const [what, entries, message] of hostile) {
    it(`refuses a tarball with ${what} and leaves the store as it was`, async () => {
      const file = join(work.path, `hostile-${hostile.findIndex((h) => h[0] === what)}.tar`);
      writeFileSync(file, await tarOf(entries));
      const before = storeState();
      const r = berth.run('import', file, `evil-${sfx}`);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(message);
      expect(storeState()).toEqual(before);
      expect(before.ingest).toEqual([]);
      expect(before.snapshotTmp).toEqual([]);
      expect(readdirSync('/tmp').filter((n) => n === 'escaped')).toEqual([]);
    });
  }

  it('refuses what it cannot read, saying why, and writes nothing', () => {
    const before = storeState();
    const text = join(work.path, 'not-a-tar');
    writeFileSync(text, 'hello\n');
    expect(berth.run('import', text).stderr).toMatch(/too short to be a tar archive/);
    const xz = join(work.path, 'rootfs.tar.xz');
    execFileSync('sh', ['-c', `tar -C ${join(work.path, 'rootfs')} -cf - . | xz -c > ${xz}`]);
    const r = berth.run('import', xz);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/xz-compressed, which berth does not read; decompress it first/);
    expect(berth.run('import', join(work.path, 'missing.tar')).stderr).toMatch(/opening .*missing\.tar: no such file/);
    expect(berth.run('import', '-c', 'FROM scratch', text).stderr).toMatch(/--change "FROM scratch": expected one of CMD/);
    expect(berth.run('import', 'https://example.com/x.tar').stderr).toMatch(/importing from a URL .* is not supported/);
    expect(storeState()).toEqual(before);
  });
});
