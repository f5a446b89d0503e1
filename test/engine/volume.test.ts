import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage, type LayerEntry } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { berthAs, dataRootOf, makeUser, type TestUser } from '../rootless/users.ts';
import { prepareVolumeSync } from '../../libs/engine/src/volume-copyup.ts';
import { Berth } from './fixtures.ts';

// Named volumes as podman has them: `berth volume create|ls|inspect|rm|prune|exists`,
// `-v NAME:/dst`, `-v /dst` and `--mount type=volume` on run/create, the
// image's files copied into a new volume (copy-up), and nothing a container
// plants in a volume (symlinks to / or to host paths) ever followed by berth.

const APP_TIME = new Date('2023-05-06T07:08:09Z');
/** The image's /srv/app: owners, modes (set-uid included), a hard link, a symlink, a private subdirectory. */
const APP: LayerEntry[] = [
  { path: 'srv/', type: 'dir' },
  { path: 'srv/app/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000, mtime: APP_TIME },
  { path: 'srv/app/conf', content: 'setting=1\n', mode: 0o640, uid: 1000, gid: 29, mtime: APP_TIME },
  { path: 'srv/app/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755, mtime: APP_TIME },
  { path: 'srv/app/hard', type: 'hardlink', linkname: 'srv/app/conf' },
  { path: 'srv/app/link', type: 'symlink', linkname: '../../etc/passwd' },
  { path: 'srv/app/sub/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
  { path: 'srv/app/sub/deep', content: 'deep\n' },
  // Mount points that are symlinks: resolved inside the image, never on the host.
  { path: 'var/data', type: 'symlink', linkname: '/srv/app' },
  { path: 'srv/hostile', type: 'symlink', linkname: '../../../../../../etc' },
];

let reg: TestRegistry;
const layout = tempDir('berth-engine-volume-layout-');
let image = '';

beforeAll(async () => {
  reg = await startRegistry();
  await writeImage(layout.path, 'vol:latest', { layers: [busyboxEntries(), APP] });
  image = `${reg.host}/test/vol:latest`;
  skopeoPush(layout.path, 'vol:latest', image);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  layout.cleanup();
});

/**
 * berth in a mount namespace of its own where every mount but the test's
 * directory is read-only: the test plants a link to /, and should a
 * regression ever make berth follow it while deleting, the kernel refuses
 * (EROFS) instead of the host losing its files.
 */
function berthWithHostReadOnly(berth: Berth, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const script = [
    'set -e', 'mount --make-rprivate /', 'mount --bind "$KEEP" "$KEEP"',
    'for m in $(awk \'{print $5}\' /proc/self/mountinfo); do case "$m" in "$KEEP"|"$KEEP"/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac; done',
    'touch /berth-volume-test-rw 2>/dev/null && { rm -f /berth-volume-test-rw; echo "/ is still writable" >&2; exit 99; }',
    'exec "$@"',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', 'sh', '-c', script, 'sh', process.execPath, binPath('berth'), ...berth.args(args)], {
    encoding: 'utf8', env: { ...process.env, KEEP: berth.dir.path }, timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function inspectVolume(berth: Berth, name: string): Record<string, unknown> {
  return (JSON.parse(berth.ok('volume', 'inspect', name)) as Array<Record<string, unknown>>)[0]!;
}

describe.each([['berth-runtime', undefined], ['runc', 'runc']] as const)('volumes in containers under %s', (_name, runtime) => {
  const berth = new Berth(runtime);
  beforeAll(() => { berth.ok('pull', '--tls-verify=false', image); }, 60_000);
  afterAll(() => berth.cleanup());

  it('what one container writes to a named volume the next one reads; the volume is made on first use', () => {
    berth.ok('run', '--rm', '-v', 'data:/data', image, 'sh', '-c', 'echo kept > /data/note');
    expect(berth.ok('run', '--rm', '-v', 'data:/data', image, 'cat', '/data/note')).toBe('kept\n');
    const mountpoint = join(berth.root, 'volumes', 'data', '_data');
    expect(readFileSync(join(mountpoint, 'note'), 'utf8')).toBe('kept\n');
    const doc = inspectVolume(berth, 'data');
    expect(doc.Mountpoint).toBe(mountpoint);
    // No /data in the image: nothing was copied yet (podman keeps NeedsCopyUp), and the owner was set once.
    expect(doc.NeedsCopyUp).toBe(true);
    expect(doc).not.toHaveProperty('NeedsChown');
  }, 60_000);

  it('copy-up: the image\'s files at the mount point land in a new volume with their owners, modes, times and links', () => {
    expect(berth.ok('run', '--rm', '-v', 'app:/srv/app', image, 'cat', '/srv/app/conf')).toBe('setting=1\n');
    const data = join(berth.root, 'volumes', 'app', '_data');
    const top = lstatSync(data);
    expect([top.uid, top.gid, top.mode & 0o7777, top.mtime.toISOString()]).toEqual([1000, 1000, 0o750, APP_TIME.toISOString()]);
    const conf = lstatSync(join(data, 'conf'));
    expect([conf.uid, conf.gid, conf.mode & 0o7777, conf.mtime.toISOString()]).toEqual([1000, 29, 0o640, APP_TIME.toISOString()]);
    expect(lstatSync(join(data, 'tool')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(data, 'hard')).ino).toBe(conf.ino);
    expect(readlinkSync(join(data, 'link'))).toBe('../../etc/passwd');
    expect(lstatSync(join(data, 'sub')).mode & 0o7777).toBe(0o700);
    expect(readFileSync(join(data, 'sub', 'deep'), 'utf8')).toBe('deep\n');
    expect(inspectVolume(berth, 'app')).not.toHaveProperty('NeedsCopyUp');
    // Once only: what a container deletes stays deleted.
    berth.ok('run', '--rm', '-v', 'app:/srv/app', image, 'rm', '/srv/app/conf');
    expect(berth.ok('run', '--rm', '-v', 'app:/srv/app', image, 'ls', '/srv/app')).not.toContain('conf');
    // nocopy: an empty volume, still given the directory's owner.
    berth.ok('run', '--rm', '-v', 'bare:/srv/app:nocopy', image, 'true');
    expect(readdirSync(join(berth.root, 'volumes', 'bare', '_data'))).toEqual([]);
    expect(lstatSync(join(berth.root, 'volumes', 'bare', '_data')).uid).toBe(1000);
  }, 90_000);

  it('a mount point that is a symlink in the image is resolved inside the image, never on the host', () => {
    berth.ok('run', '--rm', '-v', 'vialink:/var/data', image, 'true');
    expect(readdirSync(join(berth.root, 'volumes', 'vialink', '_data')).sort()).toEqual(['conf', 'hard', 'link', 'sub', 'tool']);
    // ../../../../../../etc from /srv is the image's /etc (three files), not the host's.
    berth.ok('run', '--rm', '-v', 'escape:/srv/hostile', image, 'true');
    expect(readdirSync(join(berth.root, 'volumes', 'escape', '_data')).sort()).toEqual(['group', 'os-release', 'passwd']);
  }, 60_000);

  it('ro refuses writes, with -v and with --mount; the volume is unchanged', () => {
    berth.ok('volume', 'create', 'ro');
    const short = berth.run('run', '--rm', '-v', 'ro:/data:ro', image, 'sh', '-c', 'echo x > /data/x');
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('Read-only file system');
    const long = berth.run('run', '--rm', '--mount', 'type=volume,source=ro,target=/data,ro=true', image, 'touch', '/data/y');
    expect(long.code).toBe(1);
    expect(readdirSync(join(berth.root, 'volumes', 'ro', '_data'))).toEqual([]);
  }, 60_000);

  it('anonymous volumes: -v /dst makes one; run --rm removes it, rm keeps it, rm -v removes it', () => {
    const before = berth.ok('volume', 'ls', '-q');
    berth.ok('run', '--rm', '-v', '/scratch', image, 'sh', '-c', 'echo x > /scratch/x');
    expect(berth.ok('volume', 'ls', '-q')).toBe(before);
    berth.ok('create', '--name', 'anon1', '-v', '/scratch', image, 'true');
    const mounts = JSON.parse(berth.ok('inspect', 'anon1'))[0].Mounts as Array<Record<string, unknown>>;
    const name = mounts[0]!.Name as string;
    expect(name).toMatch(/^[0-9a-f]{64}$/);
    expect(inspectVolume(berth, name).Anonymous).toBe(true);
    berth.ok('rm', 'anon1');
    expect(berth.ok('volume', 'exists', name)).toBe('');
    berth.ok('volume', 'rm', name);
    berth.ok('create', '--name', 'anon2', '--mount', 'type=volume,target=/scratch', image, 'true');
    berth.ok('rm', '-v', 'anon2');
    expect(berth.ok('volume', 'ls', '-q')).toBe(before);
  }, 60_000);
});

describe('berth volume: podman\'s commands and output', () => {
  const berth = new Berth();
  beforeAll(() => { berth.ok('pull', '--tls-verify=false', image); }, 60_000);
  afterAll(() => berth.cleanup());

  it('create prints the name (64 hex without one), refuses a second one and inspect shows podman\'s keys', () => {
    expect(berth.run('volume', 'ls').stdout).toBe('');
    const anon = berth.ok('volume', 'create').trim();
    expect(anon).toMatch(/^[0-9a-f]{64}$/);
    expect(berth.ok('volume', 'create', '--label', 'env=prod', '--label', 'team', 'web')).toBe('web\n');
    const again = berth.run('volume', 'create', 'web');
    expect(again.code).toBe(125);
    expect(again.stderr).toContain('Error: volume with name web already exists: volume already exists');
    const doc = inspectVolume(berth, 'web');
    expect(Object.keys(doc)).toEqual(['Name', 'Driver', 'Mountpoint', 'CreatedAt', 'Labels', 'Scope', 'Options', 'MountCount', 'NeedsCopyUp', 'NeedsChown']);
    expect(doc).toMatchObject({ Name: 'web', Driver: 'local', Mountpoint: join(berth.root, 'volumes', 'web', '_data'), Labels: { env: 'prod', team: '' }, Scope: 'local', Options: {}, MountCount: 0 });
    expect(Date.parse(doc.CreatedAt as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(lstatSync(doc.Mountpoint as string).isDirectory()).toBe(true);
    // The owner given with -o is the directory's, and podman's UID/GID keys show it.
    berth.ok('volume', 'create', '-o', 'o=uid=1000,gid=1002', 'owned');
    expect(inspectVolume(berth, 'owned')).toMatchObject({ Options: { UID: '1000', GID: '1002', o: 'uid=1000,gid=1002' }, UID: 1000, GID: 1002 });
    expect(inspectVolume(berth, 'owned')).not.toHaveProperty('NeedsChown');
    const st = lstatSync(join(berth.root, 'volumes', 'owned', '_data'));
    expect([st.uid, st.gid]).toEqual([1000, 1002]);
    expect(berth.ok('volume', 'inspect', '--format', '{{.Name}} {{.Scope}} {{.Labels.env}}', 'web')).toBe('web local prod\n');
    const missing = berth.run('volume', 'inspect', 'web', 'nosuch');
    expect(missing.code).toBe(125);
    expect(JSON.parse(missing.stdout)).toHaveLength(1);
    expect(missing.stderr).toContain('no such volume nosuch');
    berth.ok('volume', 'rm', anon, 'owned');
  });

  it('refuses what it does not have: other drivers, mount options, bad uids', () => {
    for (const [args, text] of [
      [['--driver', 'nfs', 'x'], '--driver nfs: berth has only the local driver'],
      [['-o', 'type=tmpfs', 'x'], '--opt type=tmpfs: berth\'s local volumes are directories'],
      [['-o', 'o=bind', 'x'], '--opt o=bind'],
      [['-o', 'o=uid=me', 'x'], 'uid must be a number'],
    ] as const) {
      const r = berth.run('volume', 'create', ...args);
      expect(r.code, r.stderr).toBe(125);
      expect(r.stderr).toContain(text);
    }
    expect(berth.run('volume', 'exists', 'x').code).toBe(1);
  });

  it('hostile names are refused with podman\'s rule, on create and on -v/--mount, leaving nothing behind', () => {
    const before = readdirSync(join(berth.root, 'volumes')).sort();
    for (const name of ['../evil', 'a/b', '.hidden', '-dash', 'sp ace', 'x'.repeat(256), '']) {
      const r = berth.run('volume', 'create', '--', name);
      expect(r.code, name).toBe(125);
      expect(r.stderr, name).toContain('names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*');
    }
    for (const args of [['-v', 'a/b:/data'], ['-v', 'x:relative'], ['--mount', 'type=volume,source=../up,target=/data'], ['-v', 'ok:/data:U']]) {
      const r = berth.run('run', '--rm', ...args, image, 'true');
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stderr).toMatch(/names must match|must be an absolute path|not supported/);
    }
    expect(readdirSync(join(berth.root, 'volumes')).sort()).toEqual(before);
    expect(berth.ok('ps', '-a', '-q')).toBe('');
    expect(berth.run('volume', 'exists', '../evil').code).toBe(1);
    expect(existsSync(join(berth.dir.path, 'evil'))).toBe(false);
  });

  it('ls: podman\'s table, -q, --format, and name/label/dangling filters', () => {
    berth.ok('volume', 'create', 'used');
    berth.ok('volume', 'create', '--label', 'tier=db', 'dbdata');
    berth.ok('create', '--name', 'user1', '-v', 'used:/data', image, 'true');
    expect(berth.ok('volume', 'ls')).toBe('DRIVER      VOLUME NAME\nlocal       dbdata\nlocal       used\nlocal       web\n');
    expect(berth.ok('volume', 'ls', '--noheading')).toBe('local       dbdata\nlocal       used\nlocal       web\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'name=^(us|we)')).toBe('used\nweb\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'name=used', '--filter', 'name=web')).toBe('used\nweb\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'label=tier=db')).toBe('dbdata\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'label=env')).toBe('web\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'dangling=true')).toBe('dbdata\nweb\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'dangling=false')).toBe('used\n');
    expect(berth.ok('volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', 'label=env')).toBe('web\n');
    expect(berth.ok('volume', 'ls', '--format', '{{.Name}}:{{.Driver}}', '--filter', 'name=web')).toBe('web:local\n');
    expect(berth.ok('volume', 'ls', '--format', 'table {{.Name}}', '--filter', 'name=web')).toBe('VOLUME NAME\nweb\n');
    const json = JSON.parse(berth.ok('volume', 'ls', '--format', 'json')) as Array<{ Name: string }>;
    expect(json.map((v) => v.Name)).toEqual(['dbdata', 'used', 'web']);
    const bad = berth.run('volume', 'ls', '--filter', 'colour=red');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('"colour" is an invalid volume filter');
  });

  it('inspect CONTAINER lists its volumes, then its binds, in Mounts, as podman does', () => {
    const host = join(berth.dir.path, 'hostdir');
    mkdirSync(host);
    berth.ok('create', '--name', 'mnt', '-v', 'used:/data:ro', '-v', `${host}:/h`, '-v', 'dbdata:/db:noexec,rshared', image, 'true');
    const mounts = JSON.parse(berth.ok('inspect', 'mnt'))[0].Mounts;
    expect(mounts).toEqual([
      { Type: 'volume', Name: 'used', Source: join(berth.root, 'volumes', 'used', '_data'), Destination: '/data', Driver: 'local', Mode: '', Options: ['nosuid', 'nodev', 'rbind'], RW: false, Propagation: 'rprivate' },
      { Type: 'volume', Name: 'dbdata', Source: join(berth.root, 'volumes', 'dbdata', '_data'), Destination: '/db', Driver: 'local', Mode: '', Options: ['noexec', 'nosuid', 'nodev', 'rbind'], RW: true, Propagation: 'rshared' },
      { Type: 'bind', Source: host, Destination: '/h', Driver: '', Mode: '', Options: ['rbind'], RW: true, Propagation: 'rprivate' },
    ]);
    berth.ok('rm', 'mnt');
  });

  it('rm: an in-use volume is refused (exit 2, the container named), a missing one exits 1, -f removes the containers first', () => {
    const id = berth.ok('inspect', '--format', '{{.Id}}', 'user1').trim();
    const refused = berth.run('volume', 'rm', 'used');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`volume used is being used by the following container(s): ${id}`);
    expect(berth.run('volume', 'exists', 'used').code).toBe(0);
    const missing = berth.run('volume', 'rm', 'nosuch', 'dbdata');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('dbdata\n');
    expect(missing.stderr).toContain('no volume with name "nosuch" found: no such volume');
    // A running user too: stopped, removed, then the volume.
    berth.ok('run', '-d', '--name', 'user2', '-v', 'used:/data', image, 'sleep', '300');
    expect(berth.ok('volume', 'rm', '-f', '-t', '0', 'used')).toBe('used\n');
    expect(berth.ok('ps', '-a', '--format', '{{.Names}}')).not.toMatch(/user1|user2/);
    expect(berth.run('volume', 'exists', 'used').code).toBe(1);
    expect(existsSync(join(berth.root, 'volumes', 'used'))).toBe(false);
    expect(readdirSync(join(berth.root, 'volumes')).filter((n) => n.startsWith('.'))).toEqual([]);
    const none = berth.run('volume', 'rm');
    expect(none.code).toBe(125);
    expect(none.stderr).toContain('choose either one or more volumes or all');
  }, 60_000);

  it('prune removes only volumes no container uses (asking first unless -f); exists is 0/1', () => {
    berth.ok('volume', 'create', 'keepme');
    berth.ok('volume', 'create', 'drop1');
    berth.ok('volume', 'create', '--label', 'tmp=1', 'drop2');
    berth.ok('create', '--name', 'keeper', '-v', 'keepme:/k', image, 'true');
    // Anything but "y" at the question keeps everything.
    const asked = berth.run('volume', 'prune');
    expect(asked.code).toBe(0);
    expect(asked.stderr).toContain('Are you sure you want to continue? [y/N]');
    expect(berth.run('volume', 'exists', 'drop1').code).toBe(0);
    expect(berth.ok('volume', 'prune', '-f', '--filter', 'label=tmp=1')).toBe('drop2\n');
    expect(berth.ok('volume', 'prune', '-f').split('\n').filter(Boolean).sort()).toEqual(['drop1', 'web']);
    expect(berth.ok('volume', 'ls', '-q')).toBe('keepme\n');
    expect(berth.run('volume', 'exists', 'keepme').code).toBe(0);
    expect(berth.run('volume', 'exists', 'drop1').code).toBe(1);
    berth.ok('rm', 'keeper');
    // What a berth killed mid-create or mid-rm left (a .new-* stage, a .trash-* with a link to the
    // host in it) goes with the next prune, links unlinked and not followed; it is never listed.
    const vols = join(berth.root, 'volumes');
    mkdirSync(join(vols, '.new-abc123', '_data'), { recursive: true });
    mkdirSync(join(vols, '.trash-99999999-0a0b0c0d', '_data'), { recursive: true });
    const victim = join(berth.dir.path, 'prune-victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'keep'), 'host\n');
    symlinkSync(victim, join(vols, '.trash-99999999-0a0b0c0d', '_data', 'host'));
    expect(berth.ok('volume', 'prune', '-f')).toBe('keepme\n');
    expect(readdirSync(vols).filter((n) => n.startsWith('.new-') || n.startsWith('.trash-'))).toEqual([]);
    expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('host\n');
  });

  it('a symlink to / (and to host files) planted in a volume: no copy-up through it, rm unlinks it and touches nothing on the host', () => {
    const sentinel = join(berth.dir.path, 'sentinel');
    mkdirSync(sentinel);
    writeFileSync(join(sentinel, 'keep'), 'host file\n');
    chmodSync(sentinel, 0o755);
    // The container writes links whose text names host paths (the container cannot see them; berth could).
    berth.ok('run', '--rm', '-v', 'trap:/data', image, 'sh', '-c',
      `ln -s / /data/root && ln -s ${sentinel} /data/etc && ln -s ${sentinel}/group /data/group && mkdir /data/d && ln -s ${sentinel}/keep /data/d/keep && ln -s ${sentinel} /data/d/dir`);
    // The image has /etc: a copy-up now would write group, passwd, os-release, group through its link.
    berth.ok('run', '--rm', '-v', 'trap:/etc', image, 'true');
    expect(readdirSync(sentinel)).toEqual(['keep']);
    expect(readdirSync(join(berth.root, 'volumes', 'trap', '_data')).sort()).toEqual(['d', 'etc', 'group', 'root']);
    const rm = berthWithHostReadOnly(berth, 'volume', 'rm', 'trap');
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe('trap\n');
    expect(readFileSync(join(sentinel, 'keep'), 'utf8')).toBe('host file\n');
    expect(existsSync('/bin/sh')).toBe(true);
    expect(existsSync(join(berth.root, 'volumes', 'trap'))).toBe(false);
  }, 60_000);
});

describe('copy-up against a container sharing the volume', () => {
  // The window a naive copy-up would have: the volume checked empty, then a
  // container that shares it plants links before the files are written.
  // prepareVolumeSync's beforeRename runs at exactly that moment, so the
  // race is played deterministically, on real files.
  let dir: ReturnType<typeof tempDir>;
  beforeAll(() => { dir = tempDir('berth-engine-volume-race-'); });
  afterAll(() => dir?.cleanup());

  it('links planted after the emptiness check are replaced or kept, never written through', () => {
    const rootfs = join(dir.path, 'rootfs');
    mkdirSync(join(rootfs, 'etc', 'sub'), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'passwd'), 'image passwd\n');
    writeFileSync(join(rootfs, 'etc', 'group'), 'image group\n');
    writeFileSync(join(rootfs, 'etc', 'sub', 'deep'), 'image deep\n');
    const sentinel = join(dir.path, 'sentinel');
    mkdirSync(sentinel);
    writeFileSync(join(sentinel, 'keep'), 'host file\n');
    const volumeDir = join(dir.path, 'volume');
    mkdirSync(join(volumeDir, '_data'), { recursive: true });
    const copied = prepareVolumeSync({
      rootfs, destination: '/etc', volumeDir, copyUp: true,
      beforeRename: (data) => {
        symlinkSync(join(sentinel, 'passwd'), join(data, 'passwd'));
        symlinkSync(join(sentinel, 'keep'), join(data, 'group'));
        symlinkSync(sentinel, join(data, 'sub'));
      },
    });
    expect(copied).toBe(true);
    expect(readdirSync(sentinel)).toEqual(['keep']);
    expect(readFileSync(join(sentinel, 'keep'), 'utf8')).toBe('host file\n');
    const data = join(volumeDir, '_data');
    // Files land over the links (rename replaces a link, it does not follow it) ...
    expect(lstatSync(join(data, 'passwd')).isFile()).toBe(true);
    expect(readFileSync(join(data, 'group'), 'utf8')).toBe('image group\n');
    // ... and a directory cannot replace one: the container's link stays, pointing where it did.
    expect(readlinkSync(join(data, 'sub'))).toBe(sentinel);
    expect(readdirSync(volumeDir).sort()).toEqual(['_data']);
    // A volume with anything in it is not copied into at all.
    rmSync(join(data, 'passwd'));
    writeFileSync(join(rootfs, 'etc', 'new'), 'x');
    expect(prepareVolumeSync({ rootfs, destination: '/etc', volumeDir, copyUp: true })).toBe(false);
    expect(existsSync(join(data, 'new'))).toBe(false);
  });
});

describe('volumes as an ordinary user', () => {
  const suffix = process.pid.toString(36);
  const range = { start: 2_300_000, count: 65536 };
  let user: TestUser;

  beforeAll(() => {
    user = makeUser(`bvol${suffix}`, range);
    const pull = berthAs(user, ['pull', '--tls-verify=false', image]);
    expect(pull.code, pull.stderr).toBe(0);
  }, 120_000);

  afterAll(() => {
    if (user) {
      berthAs(user, ['rm', '-f', '-a']);
      user.remove();
      rmSync(`/tmp/berth-run-${user.uid}`, { recursive: true, force: true });
    }
  }, 60_000);

  it('volumes live in the user\'s store; container root is the user, container uid 1000 is range start + 999; copy-up keeps image owners in the range; rm removes range-owned files', () => {
    const ok = (args: string[]): string => {
      const r = berthAs(user, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    ok(['run', '--rm', '-v', 'data:/data', image, 'sh', '-c', 'echo mine > /data/f && mkdir /data/d && echo deep > /data/d/g && chown -R 1000:1000 /data/d && chmod 700 /data/d']);
    expect(ok(['run', '--rm', '-v', 'data:/data', image, 'cat', '/data/f', '/data/d/g'])).toBe('mine\ndeep\n');
    const data = join(dataRootOf(user), 'volumes', 'data', '_data');
    expect(lstatSync(join(data, 'f')).uid).toBe(user.uid);
    expect(lstatSync(join(data, 'd')).uid).toBe(range.start + 999);
    ok(['run', '--rm', '-v', 'app:/srv/app', image, 'true']);
    const app = join(dataRootOf(user), 'volumes', 'app', '_data');
    expect(lstatSync(app).uid).toBe(range.start + 999);
    expect([lstatSync(join(app, 'conf')).uid, lstatSync(join(app, 'conf')).gid]).toEqual([range.start + 999, range.start + 28]);
    expect(ok(['volume', 'ls', '-q'])).toBe('app\ndata\n');
    // d is the range's and mode 0700: only root of the user's namespace can empty it.
    expect(ok(['volume', 'rm', 'data', 'app'])).toBe('data\napp\n');
    expect(readdirSync(join(dataRootOf(user), 'volumes')).filter((n) => !n.startsWith('.lock'))).toEqual([]);
    ok(['run', '--rm', '-v', '/scratch', image, 'sh', '-c', 'mkdir /scratch/x && chown 1000 /scratch/x']);
    expect(ok(['volume', 'ls', '-q'])).toBe('');
    const owner = berthAs(user, ['volume', 'create', '-o', 'o=uid=1000', 'owned']);
    expect(owner.code).toBe(125);
    expect(owner.stderr).toContain('not supported for an ordinary user');
  }, 120_000);
});
