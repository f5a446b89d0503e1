import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

// `berth run SHORTNAME` the podman way: the short name goes through
// registries.conf's search registries (insecure = true instead of
// --tls-verify=false), the image is stored under the name it resolved to, and
// the container runs from it; `berth pull` with an alias the same.
describe('berth with registries.conf', () => {
  let reg: TestRegistry;
  const layout = tempDir('berth-engine-regconf-layout-');
  const berth = new Berth();
  let conf = '';
  const run = (...args: string[]) => runTool('berth', berth.args(args), { env: { CONTAINERS_REGISTRIES_CONF: conf }, timeoutMs: 90_000 });

  beforeAll(async () => {
    reg = await startRegistry();
    await pushGuideImages(reg, layout.path);
    conf = join(layout.path, 'registries.conf');
    writeFileSync(conf, `unqualified-search-registries = ["${reg.host}"]\n[aliases]\n"webapp" = "${reg.host}/guide/web"\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
  }, 120_000);

  afterAll(async () => {
    await berth.cleanup();
    await reg?.stop();
    layout.cleanup();
  });

  it('runs a short name found on the search registry, stored under its full name', () => {
    const r = run('run', '--rm', 'library/busybox', 'echo', 'from the search registry');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('from the search registry\n');
    expect(run('images', '--format', 'json').stdout).toContain(`${reg.host}/library/busybox`);
  });

  it('pulls an alias under the name it stands for', () => {
    const r = run('pull', 'webapp');
    expect(r.code, r.stderr).toBe(0);
    const images = JSON.parse(run('images', '--format', 'json').stdout) as Array<{ Names?: string[]; RepoTags?: string[] }>;
    expect(JSON.stringify(images)).toContain(`${reg.host}/guide/web:latest`);
  });
});
