import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/images.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { berthAs, dataRootOf, makeUser, type TestUser } from '../rootless/users.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

// `berth cp` as podman cp: between the host and a running, created or
// exited container, with podman's file/directory/`DIR/.` rules, owners and
// modes as podman-cp(1) says, tar in from stdin and out to stdout, and every
// container path resolved inside the container's root — a container that
// plants symlinks to / or /etc cannot make cp touch a host file.
let reg: TestRegistry;
const layout = tempDir('berth-engine-cp-layout-');
const host = tempDir('berth-engine-cp-host-');
const berth = new Berth();
const sfx = Math.random().toString(36).slice(2, 8);
const RUN = `cp-run-${sfx}`;
/** Runs as 1000:1000, with a 64 KiB tmpfs to fill. */
const AUX = `cp-aux-${sfx}`;
let plain = '';

/** berth with bytes in and out (a tar on stdin or stdout), which runTool's utf8 strings would mangle. */
function berthRaw(args: string[], input?: Buffer): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [binPath('berth'), ...berth.args(args)], { input, maxBuffer: 64 << 20, timeout: 90_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr.toString() };
}

function sh(ctr: string, script: string): string {
  return berth.ok('exec', ctr, 'sh', '-c', script);
}

/** What ls would say about a container path: uid:gid mode mtime. */
function statIn(ctr: string, path: string): string {
  return sh(ctr, `stat -c '%u:%g %a %Y' ${path}`).trim();
}

function hostFile(name: string, content: string, opts: { uid?: number; gid?: number; mode?: number } = {}): string {
  const p = join(host.path, name);
  writeFileSync(p, content);
  chownSync(p, opts.uid ?? 0, opts.gid ?? 0);
  chmodSync(p, opts.mode ?? 0o644);
  // 2020-01-01T00:00:00Z: a time no copy would make up.
  utimesSync(p, 1577836800, 1577836800);
  return p;
}

function mountedAt(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

function containerId(name: string): string {
  return berth.ok('inspect', '-f', '{{.Id}}', name).trim();
}

beforeAll(async () => {
  reg = await startRegistry();
  plain = (await pushGuideImages(reg, layout.path)).plain;
  berth.ok('pull', '--tls-verify=false', plain);
  berth.ok('run', '-d', '--name', RUN, plain, 'sleep', '600');
  berth.ok('run', '-d', '--name', AUX, '-u', '1000:1000', '--tmpfs', '/small:size=64k', plain, 'sleep', '600');
}, 180_000);

afterAll(async () => {
  await berth.cleanup();
  await reg?.stop();
  layout.cleanup();
  host.cleanup();
});

describe('berth cp between the host and a running container', () => {
  it('copies a host file in, readable with berth exec, owned by the container\'s root, mode and mtime kept', () => {
    const f = hostFile('hello.txt', 'hello from the host\n', { uid: 1234, gid: 2345, mode: 0o640 });
    berth.ok('cp', f, `${RUN}:/tmp/`);
    // onto a missing name: the file takes it; onto an existing file: replaced
    berth.ok('cp', f, `${RUN}:/tmp/renamed`);
    berth.ok('cp', f, `${RUN}:/tmp/replaced`);
    berth.ok('cp', hostFile('hello2.txt', 'second\n'), `${RUN}:/tmp/replaced`);
    // podman's long form
    berth.ok('container', 'cp', f, `${RUN}:/tmp/long-form`);
    // /etc/hosts is a bind mount in a running container: replaced in place
    berth.ok('cp', hostFile('hosts', '127.0.0.1 copied-in\n'), `${RUN}:/etc/hosts`);
    expect(berth.ok('exec', RUN, 'cat', '/tmp/hello.txt', '/tmp/renamed', '/tmp/replaced', '/tmp/long-form', '/etc/hosts'))
      .toBe('hello from the host\nhello from the host\nsecond\nhello from the host\n127.0.0.1 copied-in\n');
    expect(statIn(RUN, '/tmp/hello.txt')).toBe('0:0 640 1577836800');
  });

  it('gives copied files the container\'s user with --archive (the default), the source\'s owners with --archive=false', () => {
    const user = AUX;
    const f = hostFile('owned.txt', 'x\n', { uid: 1234, gid: 2345, mode: 0o600 });
    berth.ok('cp', f, `${user}:/tmp/a`);
    berth.ok('cp', '--archive=false', f, `${user}:/tmp/b`);
    expect(statIn(user, '/tmp/a /tmp/b')).toBe('1000:1000 600 1577836800\n1234:2345 600 1577836800');
  });

  it('copies files and directories out, with podman\'s DIR and DIR/. rules; owned by the caller, modes kept', () => {
    sh(RUN, 'mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && chown 1000:1000 /data/a && chmod 600 /data/a && ln -s /etc/passwd /data/link && touch -d "2021-02-03 04:05:06" /data/sub/b');
    const out = join(host.path, 'out');
    mkdirSync(out);
    berth.ok('cp', `${RUN}:/data`, out);                    // into an existing directory: below it
    berth.ok('cp', `${RUN}:/data`, join(out, 'fresh'));     // onto a missing path: becomes it
    mkdirSync(join(out, 'contents'));
    berth.ok('cp', `${RUN}:/data/.`, join(out, 'contents')); // the contents only
    berth.ok('cp', `${RUN}:/data/a`, join(out, 'a-file'));
    for (const d of ['data', 'fresh', 'contents']) {
      expect(readdirSync(join(out, d)).sort()).toEqual(['a', 'link', 'sub']);
      expect(readFileSync(join(out, d, 'sub', 'b'), 'utf8')).toBe('b\n');
      expect(readlinkSync(join(out, d, 'link'))).toBe('/etc/passwd');
      const a = statSync(join(out, d, 'a'));
      expect([a.uid, a.gid, a.mode & 0o777]).toEqual([0, 0, 0o600]);
    }
    expect(readdirSync(out).sort()).toEqual(['a-file', 'contents', 'data', 'fresh']);
    expect(readFileSync(join(out, 'a-file'), 'utf8')).toBe('a\n');
    expect(statSync(join(out, 'data', 'sub', 'b')).mtime.toISOString()).toBe(new Date('2021-02-03T04:05:06Z').toISOString());
  });

  it('copies a host directory in, and DIR/. merges its contents into an existing directory', () => {
    const src = join(host.path, 'tree');
    mkdirSync(join(src, 'nested'), { recursive: true });
    writeFileSync(join(src, 'top.txt'), 'top\n');
    writeFileSync(join(src, 'nested', 'deep.txt'), 'deep\n');
    chmodSync(join(src, 'nested'), 0o750);
    symlinkSync('top.txt', join(src, 'alias'));
    sh(RUN, 'mkdir /srv /merge && echo keep > /merge/keep');
    berth.ok('cp', src, `${RUN}:/srv`);         // /srv exists: /srv/tree
    berth.ok('cp', src, `${RUN}:/newtree`);     // missing: becomes /newtree
    berth.ok('cp', `${src}/.`, `${RUN}:/merge`);
    expect(sh(RUN, 'cat /srv/tree/nested/deep.txt /newtree/top.txt /merge/keep /merge/alias; readlink /merge/alias; ls /merge | sort | tr "\\n" " "; stat -c "%u:%g %a" /srv/tree/nested'))
      .toBe('deep\ntop\nkeep\ntop\ntop.txt\nalias keep nested top.txt 0:0 750\n');
  });

  it('resolves a host path\'s ".." after the symlink before it, as the kernel does', () => {
    // far/target/file exists; near/link points at far/target. near/link/../file
    // is far/file for the kernel, while a text collapse would read near/file.
    const base = join(host.path, 'dotdot');
    mkdirSync(join(base, 'far', 'target'), { recursive: true });
    mkdirSync(join(base, 'near'));
    writeFileSync(join(base, 'far', 'file'), 'far\n');
    writeFileSync(join(base, 'near', 'file'), 'near\n');
    symlinkSync(join(base, 'far', 'target'), join(base, 'near', 'link'));
    berth.ok('cp', `${base}/near/link/../file`, `${RUN}:/tmp/dotdot-in`); // (path.join would collapse it)
    expect(berth.ok('exec', RUN, 'cat', '/tmp/dotdot-in')).toBe('far\n');
    // A destination the same way: the copy lands in far/, not near/.
    berth.ok('cp', `${RUN}:/tmp/dotdot-in`, `${base}/near/link/../out`);
    expect(readFileSync(join(base, 'far', 'out'), 'utf8')).toBe('far\n');
    expect(existsSync(join(base, 'near', 'out'))).toBe(false);
  });

  it('writes a tar to stdout that tar -t reads, with the container\'s owners', () => {
    const r = berthRaw(['cp', `${RUN}:/data`, '-']);
    expect(r.code, r.stderr).toBe(0);
    const listing = execFileSync('tar', ['-tvf', '-', '--numeric-owner'], { input: r.stdout, encoding: 'utf8' });
    const names = listing.trim().split('\n').map((l) => l.trim().split(/\s+/).slice(5).join(' ')).sort();
    expect(names).toEqual(['data/', 'data/a', 'data/link -> /etc/passwd', 'data/sub/', 'data/sub/b']);
    expect(listing).toMatch(/-rw------- 1000\/1000\s+2 .* data\/a\n/);
    const contents = berthRaw(['cp', `${RUN}:/data/.`, '-']);
    expect(execFileSync('tar', ['-tf', '-'], { input: contents.stdout, encoding: 'utf8' }).trim().split('\n').sort()).toEqual(['a', 'link', 'sub/', 'sub/b']);
  });

  it('unpacks a tar from stdin into a directory, owned by the container\'s user unless --archive=false', () => {
    const src = join(host.path, 'tarsrc');
    mkdirSync(join(src, 'pkg'), { recursive: true });
    writeFileSync(join(src, 'pkg', 'file'), 'from tar\n');
    chownSync(join(src, 'pkg', 'file'), 77, 88);
    chmodSync(join(src, 'pkg', 'file'), 0o604);
    const tarball = execFileSync('tar', ['-C', src, '-cf', '-', 'pkg']);
    sh(RUN, 'mkdir -p /unpack /unpack-keep');
    const r = berthRaw(['cp', '-', `${RUN}:/unpack`], tarball);
    expect(r.code, r.stderr).toBe(0);
    expect(berthRaw(['cp', '--archive=false', '-', `${RUN}:/unpack-keep`], tarball).code).toBe(0);
    expect(sh(RUN, 'cat /unpack/pkg/file; stat -c "%u:%g %a" /unpack/pkg/file /unpack-keep/pkg/file')).toBe('from tar\n0:0 604\n77:88 604\n');
    const onFile = berthRaw(['cp', '-', `${RUN}:/unpack/pkg/file`], tarball);
    expect(onFile.code).toBe(125);
    expect(onFile.stderr).toContain('destination must be a directory when copying from stdin');
  });

  it('names what was wrong and exits 125', async () => {
    const f = hostFile('err.txt', 'e\n');
    const cases: Array<[string[], string]> = [
      [['cp', f, `nosuch-${sfx}:/tmp`], `no container with name or ID "nosuch-${sfx}" found: no such container`],
      [['cp', `${RUN}:/no/such/file`, host.path], '"/no/such/file" could not be found on container'],
      [['cp', `${RUN}:/nosuch`, host.path], '"/nosuch" could not be found on container'],
      [['cp', join(host.path, 'missing'), `${RUN}:/tmp`], 'could not be found on the host: no such file or directory'],
      [['cp', `${RUN}:/data`, join(host.path, 'err.txt')], 'destination must be a directory when copying a directory'],
      [['cp', host.path, `${RUN}:/tmp/hello.txt`], 'destination must be a directory when copying a directory'],
      [['cp', f, join(host.path, 'x')], 'one of SRC and DEST must be CONTAINER:PATH'],
      [['cp', `${RUN}:/data`, `${RUN}:/tmp`], 'copying between containers is not supported'],
      [['cp', f, `${RUN}:/tmp/no-such-dir/`], 'no such directory'],
    ];
    // Independent and read-only: run side by side.
    const results = await Promise.all(cases.map(([args]) => berth.runAsync(...args)));
    cases.forEach(([args, message], i) => {
      expect(results[i]!.code, args.join(' ')).toBe(125);
      expect(results[i]!.stderr, args.join(' ')).toContain(message);
    });
    // the container's rootfs is a host directory: copying a directory into itself stops
    sh(RUN, 'mkdir -p /loop/in && echo x > /loop/in/f');
    const inside = join(berth.root, 'containers', containerId(RUN), 'bundle', 'rootfs', 'loop', 'in');
    const loop = berth.run('cp', `${RUN}:/loop`, inside);
    expect(loop.code).toBe(125);
    expect(loop.stderr).toContain('cannot copy a directory into itself');
    // a directory onto a file with --overwrite replaces it, as podman-cp(1) says
    sh(RUN, 'echo f > /tmp/was-file');
    berth.ok('cp', '--overwrite', join(host.path, 'tree'), `${RUN}:/tmp/was-file`);
    expect(sh(RUN, 'cat /tmp/was-file/top.txt')).toBe('top\n');
  });

  it('leaves the old file whole when a copy fails half-way (temp file and rename)', () => {
    const small = AUX;
    sh(small, 'echo old > /small/big');
    const big = join(host.path, 'big');
    writeFileSync(big, Buffer.alloc(1 << 20, 7));
    const r = berth.run('cp', big, `${small}:/small/big`);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('ENOSPC');
    expect(sh(small, 'cat /small/big; ls -A /small')).toBe('old\nbig\n');
  });
});

describe('berth cp against a hostile container', () => {
  // A host directory the container mirrors: a naive cp following the
  // container's symlinks on the host would land here.
  const victimDir = join(host.path, 'victim');
  const victim = join(victimDir, 'secret');
  const marker = `berth-cp-escape-${sfx}`;

  beforeAll(() => {
    mkdirSync(victimDir);
    writeFileSync(victim, 'host secret\n');
    sh(RUN, [
      'ln -s / /tmp/root', 'ln -s /etc /tmp/etc', 'ln -s ../../../../../../.. /tmp/up',
      `ln -s ${victimDir} /tmp/abs`, `mkdir -p ${victimDir}`, `echo container secret > ${victim}`,
      `echo container file > /etc/${marker}`,
    ].join(' && '));
  });

  it('writes through symlinks to / and /etc only inside the rootfs', () => {
    const evil = hostFile('evil', 'evil\n');
    berth.ok('cp', evil, `${RUN}:/tmp/etc/${marker}-in`);
    berth.ok('cp', evil, `${RUN}:/tmp/root/etc/${marker}-root`);
    berth.ok('cp', evil, `${RUN}:/tmp/up/etc/${marker}-up`);
    berth.ok('cp', evil, `${RUN}:/tmp/abs/secret`);
    berth.ok('cp', evil, `${RUN}:/../../../etc/${marker}-dotdot`);
    // the symlink itself as the destination directory: the file goes where it points, in the container
    berth.ok('cp', evil, `${RUN}:/tmp/etc`);
    const names = ['in', 'root', 'up', 'dotdot'].map((n) => `/etc/${marker}-${n}`);
    for (const n of names) expect(existsSync(n), `${n} on the host`).toBe(false);
    expect(existsSync('/etc/evil')).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('host secret\n');
    expect(berth.ok('exec', RUN, 'cat', ...names, victim, '/etc/evil')).toBe('evil\n'.repeat(6));
    expect(lstatSync(victimDir).isDirectory()).toBe(true);
    expect(readdirSync(victimDir)).toEqual(['secret']);
  });

  it('reads through symlinks to / and /etc only inside the rootfs', () => {
    const out = join(host.path, 'read-out');
    mkdirSync(out);
    berth.ok('cp', `${RUN}:/tmp/etc/${marker}`, join(out, 'one'));
    berth.ok('cp', `${RUN}:/tmp/root/etc/${marker}`, join(out, 'two'));
    berth.ok('cp', `${RUN}:/tmp/abs/secret`, join(out, 'three'));
    berth.ok('cp', `${RUN}:../../../tmp/up${victim}`, join(out, 'four'));
    expect(readFileSync(join(out, 'one'), 'utf8')).toBe('container file\n');
    expect(readFileSync(join(out, 'two'), 'utf8')).toBe('container file\n');
    expect(readFileSync(join(out, 'three'), 'utf8')).toBe('evil\n');
    expect(readFileSync(join(out, 'four'), 'utf8')).toBe('evil\n');
    const hosts = berthRaw(['cp', `${RUN}:/tmp/root/etc/${marker}`, '-']);
    expect(execFileSync('tar', ['-xOf', '-'], { input: hosts.stdout, encoding: 'utf8' })).toBe('container file\n');
  });

  it('refuses a tar whose entries escape the destination, before writing anything', async () => {
    sh(RUN, 'mkdir -p /tar-dest && ln -s /etc /tar-dest/through');
    const tars: Array<[string, Buffer, string]> = [
      ['dotdot', await tarOf([{ path: 'ok', content: 'fine\n' }, { path: `../../../../..${victim}`, content: 'pwn\n' }]), 'climbs out of the destination directory'],
      ['absolute', await tarOf([{ path: 'ok', content: 'fine\n' }, { path: victim, content: 'pwn\n' }]), 'is an absolute path'],
      ['hardlink out', await tarOf([{ path: 'hl', type: 'hardlink', linkname: '../../etc/passwd' }]), 'climbs out of the destination directory'],
      ['own symlink', await tarOf([{ path: 'link', type: 'symlink', linkname: victimDir }, { path: 'link/secret', content: 'pwn\n' }]), 'a symbolic link made by the same archive'],
      ['container symlink', await tarOf([{ path: `through/${marker}-tar`, content: 'pwn\n' }]), 'is a symbolic link; writing through it'],
      ['not a tar', Buffer.from('this is not a tar archive\n'.repeat(40)), 'stdin is not a tar archive'],
    ];
    for (const [name, tarball, message] of tars) {
      const r = berthRaw(['cp', '-', `${RUN}:/tar-dest`], tarball);
      expect(r.code, name).toBe(125);
      expect(r.stderr, name).toContain(message);
    }
    expect(readFileSync(victim, 'utf8')).toBe('host secret\n');
    expect(existsSync(`/etc/${marker}-tar`)).toBe(false);
    expect(sh(RUN, `ls -A /tar-dest; ls /etc/${marker}-tar 2>&1 || true`)).toMatch(/^through\n.*No such file/);
  });
});

describe('berth cp with a container that is not running', () => {
  it('copies out of an exited container', () => {
    const exited = `cp-exited-${sfx}`;
    berth.ok('run', '--name', exited, plain, 'sh', '-c', 'mkdir /out && echo bye > /out/msg');
    const dest = join(host.path, 'exited');
    berth.ok('cp', `${exited}:/out/msg`, dest);
    expect(readFileSync(dest, 'utf8')).toBe('bye\n');
    const r = berthRaw(['cp', `${exited}:/out`, '-']);
    expect(execFileSync('tar', ['-tf', '-'], { input: r.stdout, encoding: 'utf8' }).trim().split('\n')).toEqual(['out/', 'out/msg']);
  });

  it('mounts a created container\'s unmounted rootfs for the copy and leaves no mount behind', () => {
    const created = `cp-created-${sfx}`;
    berth.ok('create', '--name', created, plain, 'sleep', '600');
    const rootfs = join(berth.root, 'containers', containerId(created), 'bundle', 'rootfs');
    // create mounts the overlay and cp leaves a mount it did not make alone
    expect(mountedAt(rootfs)).toBe(true);
    berth.ok('cp', hostFile('before.txt', 'before\n'), `${created}:/before.txt`);
    expect(mountedAt(rootfs)).toBe(true);
    // as after a reboot: the overlay is gone, the snapshot is on disk
    execFileSync('umount', [rootfs]);
    berth.ok('cp', hostFile('after.txt', 'after\n', { mode: 0o600 }), `${created}:/tmp/`);
    expect(mountedAt(rootfs)).toBe(false);
    const out = join(host.path, 'from-created');
    berth.ok('cp', `${created}:/tmp/after.txt`, out);
    expect(mountedAt(rootfs)).toBe(false);
    expect(readFileSync(out, 'utf8')).toBe('after\n');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    // what was copied in while it was mounted is there too
    berth.ok('cp', `${created}:/before.txt`, `${out}-before`);
    expect(readFileSync(`${out}-before`, 'utf8')).toBe('before\n');
    const failed = berth.run('cp', `${created}:/nosuch`, out);
    expect(failed.code).toBe(125);
    expect(mountedAt(rootfs)).toBe(false);
    expect(readdirSync(rootfs)).toEqual([]);
  });
});

describe('berth cp as an ordinary user (rootless)', () => {
  // The copy runs in the user's namespace (the container's id map): container
  // uid 1000 is host uid START+999 on disk; a running container is reached
  // through its /proc/PID/root, a stopped one through its overlay mounted in
  // a private mount namespace.
  const range = { start: 2_100_000, count: 65536 };
  let user: TestUser;
  const name = `cprl${sfx.slice(0, 4)}`;

  beforeAll(() => {
    user = makeUser(`brcp${sfx.slice(0, 4)}`, range);
    for (const args of [['pull', '--tls-verify=false', plain], ['run', '-d', '--name', name, '-u', '1000:1000', plain, 'sleep', '600']]) {
      const r = berthAs(user, args);
      if (r.code !== 0) throw new Error(`berth ${args.join(' ')} as ${user.name}: ${r.stderr}`);
    }
  }, 120_000);

  afterAll(() => {
    if (!user) return;
    berthAs(user, ['rm', '-f', '-a']);
    user.remove();
  });

  function ok(args: string[]): string {
    const r = berthAs(user, args);
    if (r.code !== 0) throw new Error(`berth ${args.join(' ')} as ${user.name} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  it('copies in and out of the user\'s running container with the container\'s ids', () => {
    writeFileSync(join(user.home, 'in.txt'), 'rootless\n');
    chownSync(join(user.home, 'in.txt'), user.uid, user.uid);
    ok(['cp', 'in.txt', `${name}:/tmp/`]);
    expect(ok(['exec', name, 'sh', '-c', 'mkdir /tmp/made && echo made > /tmp/made/f && ln -s / /tmp/root && stat -c "%u:%g %n" /tmp/in.txt']))
      .toBe('1000:1000 /tmp/in.txt\n');
    // on disk, container uid 1000 is the range's 1000th id
    const records = join(dataRootOf(user), 'containers');
    const pid = readdirSync(records).filter((d) => /^[0-9a-f]{64}$/.test(d))
      .map((d) => JSON.parse(readFileSync(join(records, d, 'container.json'), 'utf8')) as { name: string; state: { pid?: number } })
      .find((r) => r.name === name)!.state.pid;
    expect(statSync(`/proc/${pid}/root/tmp/in.txt`).uid).toBe(range.start + 999);
    ok(['cp', `${name}:/tmp/made`, 'out']);
    expect(readFileSync(join(user.home, 'out', 'f'), 'utf8')).toBe('made\n');
    expect(statSync(join(user.home, 'out', 'f')).uid).toBe(user.uid);
    // the container's symlink to / stays inside its root
    ok(['cp', 'in.txt', `${name}:/tmp/root/etc/${name}-escape`]);
    expect(existsSync(`/etc/${name}-escape`)).toBe(false);
    expect(ok(['exec', name, 'cat', `/etc/${name}-escape`])).toBe('rootless\n');
  });

  it('copies out of and into the user\'s stopped container, leaving no mount', () => {
    ok(['stop', '-t', '0', name]);
    ok(['cp', `${name}:/tmp/in.txt`, 'back.txt']);
    expect(readFileSync(join(user.home, 'back.txt'), 'utf8')).toBe('rootless\n');
    ok(['cp', 'back.txt', `${name}:/tmp/while-stopped`]);
    ok(['cp', `${name}:/tmp/while-stopped`, 'again.txt']);
    expect(readFileSync(join(user.home, 'again.txt'), 'utf8')).toBe('rootless\n');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('berth-cp-rootfs');
  });
});
