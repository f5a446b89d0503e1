import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, skopeoPush, type TestRegistry } from '../helpers/registry.ts';
import { writeBusyboxImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/run.ts';

// Pins the test fixtures themselves: the busybox image the suites build is a
// valid OCI image that skopeo pushes to the loopback registry and reads back.
describe('test fixtures', () => {
  let reg: TestRegistry;
  const dir = tempDir();
  beforeAll(async () => { reg = await startRegistry(); });
  afterAll(async () => { await reg.stop(); dir.cleanup(); });

  it('builds a busybox image that skopeo pushes and inspects', async () => {
    const img = await writeBusyboxImage(dir.path, 'busybox:latest');
    skopeoPush(dir.path, 'busybox:latest', `${reg.host}/library/busybox:latest`);
    const out = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/library/busybox:latest`], { encoding: 'utf8' }));
    expect(out.Digest).toBe(img.manifest.digest);
    expect(out.Layers).toEqual(img.layers.map((l) => l.digest));
  });
});
