import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage } from '../helpers/images.ts';
import { binPath } from '../helpers/run.ts';
import { deletionsLayer, richLayer, tempRoot } from './fixtures.ts';

/**
 * Inside a user namespace mknod is refused, so whiteouts cannot be 0/0
 * character devices: berth-store writes overlayfs's xattr form
 * (user.overlay.whiteout, user.overlay.opaque), says so in the JSON, and
 * mounts with userxattr. Deletions and opaque directories still hide what
 * lies below.
 */
describe('unpack and mount inside a user namespace', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  beforeAll(async () => {
    await writeImage(store, 'localhost/rich:latest', {
      layers: [
        busyboxEntries(),
        richLayer(),
        deletionsLayer(),
      ],
    });
  });
  afterAll(() => t.cleanup());

  it('uses xattr whiteouts and userxattr, and the mounted tree hides deleted files', () => {
    const store_ = `${process.execPath} ${binPath('berth-store')} --root ${t.root}`;
    const mnt = join(t.root, 'mnt');
    // One shell in a new user+mount namespace: prepare, mount, look, unmount.
    const script = [
      'set -e',
      `${store_} prepare k --image localhost/rich:latest > ${t.root}/doc.json`,
      `mkdir -p ${mnt} && ${store_} mount k ${mnt} > /dev/null`,
      `test -e ${mnt}/etc/passwd`,
      `if test -e ${mnt}/etc/hosts; then echo "etc/hosts visible"; exit 1; fi`,
      `ls ${mnt}/usr/lib`,
      `echo written > ${mnt}/tmp/new`,
      `${store_} unmount ${mnt} > /dev/null`,
    ].join('\n');
    const out = execFileSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim()).toBe('fresh');
    const doc = JSON.parse(execFileSync('cat', [join(t.root, 'doc.json')], { encoding: 'utf8' }));
    expect(doc.whiteouts).toBe('xattr');
    expect(doc.mounts[0].options).toContain('userxattr');
  });
});
