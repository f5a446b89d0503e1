import { chmodSync, lstatSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { dataRootOf, makeUser, runAs, type TestUser } from './users.ts';

// Rootless pull and unpack (issue 12): an ordinary user with a subordinate
// range pulls into $HOME/.local/share/berth, and berth-store unpacks inside a
// user namespace that maps the range, so image owners survive, shifted.
describe('rootless berth-pull and berth-store', () => {
  const suffix = process.pid.toString(36);
  let user: TestUser;
  let bare: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-');
  let ref = '';

  beforeAll(async () => {
    user = makeUser(`brl${suffix}`, { start: 300000, count: 65536 });
    bare = makeUser(`brn${suffix}`);
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    await writeImage(join(work.path, 'layout'), 'rl:1', {
      layers: [
        [...busyboxEntries(), { path: 'home/', type: 'dir' }, { path: 'home/tux/', type: 'dir', uid: 1000, gid: 1000 }, { path: 'home/tux/owned', content: 'x', uid: 1000, gid: 1000 }, { path: 'etc/gone', content: 'y' }],
        [{ path: 'etc/.wh.gone', content: '' }],
      ],
    });
    ref = `${registry.host}/rootless/rl:1`;
    skopeoPush(join(work.path, 'layout'), 'rl:1', ref);
  }, 60_000);

  afterAll(async () => {
    await registry?.stop();
    user?.remove();
    bare?.remove();
    work.cleanup();
  });

  it('pulls into the user\'s XDG data dir and unpacks with owners shifted into the subordinate range', () => {
    const pull = runAs(user, 'berth-pull', ['--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout).store).toBe(join(dataRootOf(user), 'images'));

    const prep = runAs(user, 'berth-store', ['prepare', 'c1', '--image', ref]);
    expect(prep.code, prep.stderr).toBe(0);
    expect(prep.stderr).not.toMatch(/owners .* not applied/);
    const doc = JSON.parse(prep.stdout);
    expect(doc.root).toBe(dataRootOf(user));
    expect(doc.whiteouts).toBe('xattr');

    const snapshots = join(dataRootOf(user), 'snapshots');
    const layers = readdirSync(snapshots).filter((d) => existsSync(join(snapshots, d, 'fs', 'home', 'tux', 'owned')));
    expect(layers).toHaveLength(1);
    const owned = lstatSync(join(snapshots, layers[0]!, 'fs', 'home', 'tux', 'owned'));
    // uid 1000 in the image is the 1000th id of the range: start + 999.
    expect(owned.uid).toBe(300000 + 999);
    expect(owned.gid).toBe(300000 + 999);
    // Root's files belong to the user.
    expect(lstatSync(join(snapshots, layers[0]!, 'fs', 'bin', 'busybox')).uid).toBe(user.uid);

    // Removing what the range owns also happens inside the namespace.
    const rm = runAs(user, 'berth-store', ['remove', 'c1']);
    expect(rm.code, rm.stderr).toBe(0);
  }, 60_000);

  it('berth-gc sweeps the user\'s layers, files of the subordinate range included', () => {
    const gc = runAs(user, 'berth-gc', ['--all', '--grace', '0s']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout).layersRemoved).toBe(2);
    const snapshots = join(dataRootOf(user), 'snapshots');
    const left = readdirSync(snapshots).filter((d) => /^[0-9]+$/.test(d));
    expect(left).toEqual([]);
  }, 60_000);

  it('a user without a subordinate range is told which file and which usermod command', () => {
    const pull = runAs(bare, 'berth-pull', ['--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    const prep = runAs(bare, 'berth-store', ['prepare', 'c1', '--image', ref]);
    expect(prep.code, prep.stderr).toBe(0);
    expect(prep.stderr).toContain(`no entry for ${bare.name} in /etc/subuid`);
    expect(prep.stderr).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${bare.name}`);
  }, 60_000);

  it('one user cannot read another user\'s store', () => {
    const list = runAs(bare, 'berth-store', ['--root', dataRootOf(user), 'list']);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/EACCES|permission denied/i);
  });
});
