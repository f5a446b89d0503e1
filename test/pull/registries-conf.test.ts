import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { freePort, skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runToolAsync, tempDir, type RunResult } from '../helpers/run.ts';
import { expectStoreClean, indexText } from './store-check.ts';

// berth-pull through a registries.conf, against real registries on loopback:
// a mirror that has the image while the primary is down, a mirror without it,
// `insecure = true` in place of --tls-verify=false, blocked names, short names
// through search registries and aliases. skopeo reads the same file the same
// way (interop). A port nobody listens on stands for a registry that is down.
describe('berth-pull with registries.conf', () => {
  const dir = tempDir('berth-pull-regconf-');
  let mirror: TestRegistry;
  let primary: TestRegistry;
  let downHost = '';
  let n = 0;
  const home = join(dir.path, 'home');
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), XDG_RUNTIME_DIR: join(home, 'run'), CONTAINERS_REGISTRIES_CONF: undefined };
  const writeConf = (text: string): string => {
    const file = join(dir.path, `registries-${n++}.conf`);
    writeFileSync(file, text);
    return file;
  };
  const pull = (conf: string, ref: string, extra: string[] = []): Promise<RunResult & { root: string }> => {
    const root = join(dir.path, `root${n++}`);
    return runToolAsync('berth-pull', ['--root', root, '--registries-conf', conf, ...extra, ref], { env }).then((r) => ({ ...r, root }));
  };
  const namesIn = (root: string): string[] =>
    (JSON.parse(indexText(join(root, 'images'))!) as { manifests: { annotations?: Record<string, string> }[] }).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '');

  beforeAll(async () => {
    [mirror, primary] = await Promise.all([startRegistry(), startRegistry()]);
    downHost = `127.0.0.1:${await freePort()}`;
    const layout = join(dir.path, 'layout');
    await writeBusyboxImage(layout, 'busybox:latest');
    // The mirror holds the image under its own path; the primary under the name users type.
    skopeoPush(layout, 'busybox:latest', `${mirror.host}/cache/team/app:v1`);
    skopeoPush(layout, 'busybox:latest', `${primary.host}/team/app:v1`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([mirror?.stop(), primary?.stop()]);
    dir.cleanup();
  });

  it('pulls from a mirror while the primary is down, and names the image as the user gave it', async () => {
    const conf = writeConf(`
[[registry]]
prefix = "${downHost}/team"
location = "${downHost}/team"
[[registry.mirror]]
location = "${mirror.host}/cache/team"
insecure = true
`);
    const r = await pull(conf, `${downHost}/team/app:v1`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'image', reference: `${downHost}/team/app:v1` });
    expect(namesIn(r.root)).toEqual([`${downHost}/team/app:v1`]);
    // What berth stored is an OCI layout skopeo reads under that name.
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${join(r.root, 'images')}:${downHost}/team/app:v1`], { encoding: 'utf8' })) as { Layers: string[] };
    expect(inspect.Layers.length).toBeGreaterThan(0);
    // skopeo follows the same file to the same mirror (its --registries-conf), and finds the same manifest.
    const viaSkopeo = JSON.parse(execFileSync('skopeo', ['inspect', '--no-tags', '--registries-conf', conf, `docker://${downHost}/team/app:v1`], { encoding: 'utf8' })) as { Digest: string };
    expect(JSON.parse(r.stdout).manifest.digest).toBe(viaSkopeo.Digest);
  });

  it('falls back from a mirror without the image to the primary, saying why on stderr', async () => {
    const conf = writeConf(`
[[registry]]
location = "${primary.host}"
insecure = true
[[registry.mirror]]
location = "${mirror.host}/empty"
insecure = true
`);
    const r = await pull(conf, `${primary.host}/team/app:v1`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`${primary.host}/team/app:v1 from mirror ${mirror.host}/empty/team/app`);
    expect(r.stderr).toContain('trying the next source');
    expect(namesIn(r.root)).toEqual([`${primary.host}/team/app:v1`]);
  });

  it('takes insecure = true for a plain-HTTP registry, and fails over HTTPS without it, leaving the store clean', async () => {
    const ok = await pull(writeConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`), `${primary.host}/team/app:v1`);
    expect(ok.code, ok.stderr).toBe(0);
    const refused = await pull(writeConf(''), `${primary.host}/team/app:v1`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/https|TLS|SSL/i);
    const left = indexText(join(refused.root, 'images'));
    expect(left === undefined || (JSON.parse(left) as { manifests: unknown[] }).manifests.length === 0, 'a failed pull names no image').toBe(true);
    expectStoreClean(join(refused.root, 'images'), left);
    // --tls-verify=true wins over the file's insecure.
    const forced = await pull(writeConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`), `${primary.host}/team/app:v1`, ['--tls-verify=true']);
    expect(forced.code).toBe(1);
  });

  it('refuses a blocked name before any request, naming the file and prefix', async () => {
    const conf = writeConf(`[[registry]]\nprefix = "${primary.host}/team"\nblocked = true\n`);
    const r = await pull(conf, `${primary.host}/team/app:v1`, ['--tls-verify=false']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pulling ${primary.host}/team/app:v1 is blocked by ${conf} ([[registry]] prefix "${primary.host}/team", blocked = true)`);
  });

  it('resolves a short name through the search registries in order, and through an alias', async () => {
    const search = writeConf(`unqualified-search-registries = ["${downHost}", "${primary.host}"]\n[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry]]\nlocation = "${downHost}"\ninsecure = true\n`);
    const r = await pull(search, 'team/app:v1');
    expect(r.code, r.stderr).toBe(0);
    expect(namesIn(r.root)).toEqual([`${primary.host}/team/app:v1`]);
    const alias = writeConf(`[aliases]\n"app" = "${primary.host}/team/app"\n[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`);
    const a = await pull(alias, 'app:v1');
    expect(a.code, a.stderr).toBe(0);
    expect(namesIn(a.root)).toEqual([`${primary.host}/team/app:v1`]);
    const enforcing = await pull(writeConf(`short-name-mode = "enforcing"\nunqualified-search-registries = ["${downHost}", "${primary.host}"]\n`), 'team/app:v1');
    expect(enforcing.code).toBe(1);
    expect(enforcing.stderr).toContain('short name "team/app:v1" is ambiguous');
  });

  it('names every source it tried when none serves the image', async () => {
    const conf = writeConf(`[[registry]]\nlocation = "${downHost}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}/empty"\ninsecure = true\n`);
    const r = await pull(conf, `${downHost}/team/app:v1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pull ${downHost}/team/app:v1: every source failed`);
    expect(r.stderr).toContain(`from mirror ${mirror.host}/empty/team/app`);
    expect(r.stderr).toContain(`  ${downHost}/team/app:v1: `);
  });

  it('reports a broken registries.conf by file and field, exit 1', async () => {
    const r = await pull(writeConf('short-name-mode = "sometimes"\n'), `${primary.host}/team/app:v1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/registries\.conf .*registries-\d+\.conf: short-name-mode "sometimes" must be enforcing, permissive or disabled/);
  });
});
