import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistriesConf, mergeFile, registriesConfFiles, resolvePullCandidates, type RegistriesConf } from '../src/registries-conf.ts';

// registries.conf as containers-registries.conf(5) describes it: the man
// page's own example, prefixes, aliases, search registries, drop-ins, and the
// errors a user makes in the file.
const conf = (text: string, file = '/etc/containers/registries.conf'): RegistriesConf => {
  const c: RegistriesConf = { files: [], unqualifiedSearchRegistries: [], shortNameMode: 'permissive', aliases: new Map(), registries: [] };
  mergeFile(c, file, text);
  return c;
};
const where = (c: RegistriesConf, name: string, tlsVerify?: boolean) =>
  resolvePullCandidates(c, name, tlsVerify).map((cand) => ({
    name: `${cand.reference.registry}/${cand.reference.repository}`,
    from: cand.sources.map((s) => `${s.kind} ${s.registry}/${s.repository}${s.insecure ? ' insecure' : ''}`),
  }));

describe('registries.conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-regconf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tries the man page example\'s mirrors in order, then the rewritten location, naming the image as given', () => {
    const c = conf(`
unqualified-search-registries = ["example.com"]
[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"
[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"
[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
`);
    expect(where(c, 'example.com/foo/image:latest')).toEqual([{
      name: 'example.com/foo/image',
      from: [
        'mirror example-mirror-0.local/mirror-for-foo/image',
        'mirror example-mirror-1.local/mirrors/foo/image insecure',
        'location internal-registry-for-example.com/bar/image',
      ],
    }]);
    // A short name goes to the one search registry, then through the same table.
    expect(where(c, 'foo/image')[0]!.name).toBe('example.com/foo/image');
    // --tls-verify wins over the file, both ways.
    expect(where(c, 'example.com/foo/image', false)[0]!.from.every((f) => f.endsWith('insecure'))).toBe(true);
    expect(where(c, 'example.com/foo/image', true)[0]!.from.some((f) => f.endsWith('insecure'))).toBe(false);
  });

  it('uses the longest prefix, matching only at a separator, and wildcard hosts', () => {
    const c = conf(`
[[registry]]
location = "r.example"
insecure = true
[[registry]]
prefix = "r.example/team"
location = "team.example/t"
[[registry]]
prefix = "*.corp.example"
insecure = true
`);
    expect(where(c, 'r.example/team/app')[0]!.from).toEqual(['location team.example/t/app']);
    expect(where(c, 'r.example/teamwork/app')[0]!.from).toEqual(['primary r.example/teamwork/app insecure']);
    expect(where(c, 'a.b.corp.example/app')[0]!.from).toEqual(['primary a.b.corp.example/app insecure']);
    expect(where(c, 'corp.example/app')[0]!.from).toEqual(['primary corp.example/app']);
  });

  it('keeps mirrors for digests only when asked to', () => {
    const c = conf(`
[[registry]]
location = "r.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.example"
[[registry]]
location = "s.example"
[[registry.mirror]]
location = "tags.example"
pull-from-mirror = "tag-only"
`);
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(where(c, 'r.example/app:v1')[0]!.from).toEqual(['primary r.example/app']);
    expect(where(c, `r.example/app@${digest}`)[0]!.from).toEqual(['mirror m.example/app', 'primary r.example/app']);
    expect(where(c, 's.example/app:v1')[0]!.from).toEqual(['mirror tags.example/app', 'primary s.example/app']);
    expect(where(c, `s.example/app@${digest}`)[0]!.from).toEqual(['primary s.example/app']);
  });

  it('resolves short names through aliases (keeping the tag), search registries, or docker.io', () => {
    const c = conf(`
unqualified-search-registries = ["one.example", "two.example:5000"]
[aliases]
"app" = "quay.example/team/app"
`);
    expect(resolvePullCandidates(c, 'app:v2')[0]).toMatchObject({ reference: { registry: 'quay.example', repository: 'team/app', tag: 'v2' } });
    expect(where(c, 'tool').map((x) => x.name)).toEqual(['one.example/tool', 'two.example:5000/tool']);
    expect(where(conf(''), 'busybox').map((x) => x.name)).toEqual(['docker.io/library/busybox']);
    expect(where(conf('unqualified-search-registries = ["docker.io"]'), 'busybox').map((x) => x.name)).toEqual(['docker.io/library/busybox']);
  });

  it('refuses to guess between search registries in enforcing mode, naming them', () => {
    const c = conf(`short-name-mode = "enforcing"\nunqualified-search-registries = ["one.example", "two.example"]`);
    expect(() => resolvePullCandidates(c, 'tool')).toThrow(/short name "tool" is ambiguous: .*one\.example, two\.example/);
    expect(where(conf(`short-name-mode = "enforcing"\nunqualified-search-registries = ["one.example"]`), 'tool')[0]!.name).toBe('one.example/tool');
  });

  it('refuses a blocked name, naming the file and the prefix', () => {
    const c = conf(`[[registry]]\nprefix = "bad.example/evil"\nblocked = true\n`, '/tmp/x.conf');
    expect(() => resolvePullCandidates(c, 'bad.example/evil/app')).toThrow('pulling bad.example/evil/app:latest is blocked by /tmp/x.conf ([[registry]] prefix "bad.example/evil", blocked = true)');
    expect(where(c, 'bad.example/good/app')).toHaveLength(1);
  });

  it('names the file and the field for each mistake', () => {
    const cases: [string, RegExp][] = [
      ['unqualified-search-registries = "x"', /unqualified-search-registries must be an array/],
      ['unqualified-search-registries = ["a.example/ns"]', /must be a host\[:port\], without a path/],
      ['short-name-mode = "lax"', /short-name-mode "lax" must be enforcing, permissive or disabled/],
      ['[aliases]\n"a.example/x" = "b.example/x"', /the name must be a short name/],
      ['[aliases]\n"x" = "x"', /must be a fully qualified name/],
      ['[[registry]]\ninsecure = true', /has neither prefix nor location/],
      ['[[registry]]\nlocation = "r.example"\ninsecure = "yes"', /insecure must be true or false/],
      ['[[registry]]\nlocation = "r.example"\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "some"', /pull-from-mirror "some" must be all, digest-only or tag-only/],
      ['[registries.search]\nregistries = ["a.example"]', /deprecated version 1 format/],
      ['[[registry]\n', /not valid TOML/],
    ];
    for (const [text, message] of cases) expect(() => conf(text, '/etc/r.conf'), text).toThrow(message);
    expect(() => conf('short-name-mode = "lax"', '/etc/r.conf')).toThrow(/^registries.conf \/etc\/r.conf: /);
  });

  it('reads the user\'s file instead of the system one, then drop-ins in name order; a drop-in replaces a prefix and erases an alias', () => {
    const sys = join(dir, 'etc');
    const home = join(dir, 'home');
    mkdirSync(join(sys, 'registries.conf.d'), { recursive: true });
    writeFileSync(join(sys, 'registries.conf'), 'unqualified-search-registries = ["sys.example"]\n');
    writeFileSync(join(sys, 'registries.conf.d', '10-a.conf'), '[aliases]\n"app" = "a.example/app"\n"gone" = "a.example/gone"\n[[registry]]\nlocation = "r.example"\ninsecure = true\n');
    writeFileSync(join(sys, 'registries.conf.d', '20-b.conf'), '[aliases]\n"gone" = ""\n[[registry]]\nlocation = "r.example"\n');
    writeFileSync(join(sys, 'registries.conf.d', 'README'), 'not a drop-in');
    const env = { HOME: home };
    expect(registriesConfFiles({ env, systemDir: sys }).map((f) => f.slice(dir.length))).toEqual(['/etc/registries.conf', '/etc/registries.conf.d/10-a.conf', '/etc/registries.conf.d/20-b.conf']);
    let c = loadRegistriesConf({ env, systemDir: sys });
    expect(c.unqualifiedSearchRegistries).toEqual(['sys.example']);
    expect([...c.aliases.keys()]).toEqual(['app']);
    expect(c.registries).toHaveLength(1);
    expect(c.registries[0]!.insecure).toBe(false);
    mkdirSync(join(home, '.config', 'containers'), { recursive: true });
    writeFileSync(join(home, '.config', 'containers', 'registries.conf'), 'unqualified-search-registries = ["mine.example"]\n');
    c = loadRegistriesConf({ env, systemDir: sys });
    expect(c.unqualifiedSearchRegistries).toEqual(['mine.example']);
    // An explicit file (--registries-conf, CONTAINERS_REGISTRIES_CONF) is read alone, and must exist.
    expect(registriesConfFiles({ env: { ...env, CONTAINERS_REGISTRIES_CONF: join(sys, 'registries.conf') }, systemDir: sys })).toEqual([join(sys, 'registries.conf')]);
    expect(() => registriesConfFiles({ path: join(dir, 'nope.conf') })).toThrow(`registries.conf ${join(dir, 'nope.conf')}: no such file`);
  });
});
