import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatReference, normalizeReference, parseReference } from '@berth/oci-spec';
import { authKeys, findCredentials, parseChallenges, decodeErrorBody } from '@berth/registry';
import { tempDir } from '../helpers/run.ts';

// Pins the parts of a pull that are pure functions: reference normalization
// the way podman does it, WWW-Authenticate parsing, distribution error
// bodies, and where credentials are looked up.
describe('image references', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['tux/app', 'docker.io/tux/app:latest'],
    ['quay.io/podman/stable:v5', 'quay.io/podman/stable:v5'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/library/busybox:latest', '127.0.0.1:5000/library/busybox:latest'],
    ['localhost:5000/a/b/c', 'localhost:5000/a/b/c:latest'],
    ['[::1]:5000/app:v1', '[::1]:5000/app:v1'],
    [`busybox@sha256:${'a'.repeat(64)}`, `docker.io/library/busybox@sha256:${'a'.repeat(64)}`],
    [`host:5000/app:v1@sha256:${'b'.repeat(64)}`, `host:5000/app:v1@sha256:${'b'.repeat(64)}`],
    ['my-app__x/z.y-1', 'docker.io/my-app__x/z.y-1:latest'],
  ])('%s is %s', (input, full) => {
    expect(normalizeReference(input)).toBe(full);
  });

  it('splits a reference into registry, repository, tag and digest', () => {
    expect(parseReference('127.0.0.1:5000/library/busybox:1.36')).toEqual({ registry: '127.0.0.1:5000', repository: 'library/busybox', tag: '1.36' });
    const d = `sha256:${'c'.repeat(64)}`;
    expect(parseReference(`app@${d}`)).toEqual({ registry: 'docker.io', repository: 'library/app', digest: d });
    expect(formatReference({ registry: 'r.example', repository: 'x', tag: 't', digest: d })).toBe(`r.example/x:t@${d}`);
  });

  it.each([
    ['', /it is empty/],
    ['Busybox', /must be lowercase/],
    ['busybox:', /tag "" must match/],
    ['busybox:-bad', /tag "-bad" must match/],
    ['busybox@sha256:abc', /sha256 needs 64 lowercase hex characters/],
    ['busybox@md5:abc', /unsupported digest algorithm "md5"/],
    ['docker://busybox', /without a transport or scheme/],
    ['a//b', /repository component "" must be/],
    ['app-/x', /repository component "app-"/],
    ['host:5000/', /no repository name/],
    ['bad host/app', /white space/],
    ['x'.repeat(256), /longer than 255/],
  ])('refuses %j', (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
    try { parseReference(input); } catch (err) { expect((err as { exitCode: number }).exitCode).toBe(2); }
  });
});

describe('registry protocol pieces', () => {
  it('parses WWW-Authenticate challenges with quoted commas', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm=https://x/t, service=s'])).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', service: 's' } },
    ]);
  });

  it('decodes distribution error bodies, and shortens HTML', () => {
    expect(decodeErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}').summary)
      .toBe('MANIFEST_UNKNOWN: manifest unknown ({"Tag":"v9"})');
    expect(decodeErrorBody('<html><body><h1>502 Bad Gateway</h1></body></html>').summary).toBe('502 Bad Gateway');
  });

  it('looks credentials up from the most specific key, in podman\'s file order', async () => {
    expect(authKeys('docker.io', 'library/busybox')).toEqual(['docker.io/library/busybox', 'docker.io/library', 'docker.io', 'index.docker.io', 'registry-1.docker.io', 'index.docker.io/v1']);
    const dir = tempDir('berth-auth-');
    try {
      const run = join(dir.path, 'run');
      mkdirSync(join(run, 'containers'), { recursive: true });
      mkdirSync(join(dir.path, '.docker'), { recursive: true });
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      writeFileSync(join(run, 'containers', 'auth.json'), JSON.stringify({ auths: { 'quay.io': { auth: b64('podman:pw') } } }));
      writeFileSync(join(dir.path, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('docker:pw2') }, 'quay.io': { auth: b64('other:x') } } }));
      const env = { HOME: dir.path, XDG_RUNTIME_DIR: run, XDG_CONFIG_HOME: join(dir.path, 'cfg') };
      expect(await findCredentials('docker.io', 'library/busybox', { env })).toMatchObject({ username: 'docker', password: 'pw2' });
      // podman's file comes before docker's.
      expect(await findCredentials('quay.io', 'a/b', { env })).toMatchObject({ username: 'podman', password: 'pw' });
      expect(await findCredentials('ghcr.io', 'a/b', { env })).toBeUndefined();
    } finally {
      dir.cleanup();
    }
  });
});
