import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { authFileCandidates, findCredentials, loginAuthFile } from '../src/credentials.ts';

// Where credentials are read must be exactly where `podman login` (and
// `berth login`) write them: containers/image's getPathToAuth, then the
// per-user config file and docker's.
describe('auth file locations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-creds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('puts the login file first: XDG_RUNTIME_DIR, else /run/containers/0 for root, else rootless podman\'s run dir', () => {
    const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };
    expect(loginAuthFile(env, 1000)).toBe('/run/user/1000/containers/auth.json');
    expect(authFileCandidates(env, 1000)).toEqual([
      '/run/user/1000/containers/auth.json', '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json',
    ]);
    expect(loginAuthFile({ HOME: '/root' }, 0)).toBe('/run/containers/0/auth.json');
    // No /run/user/54321 on this machine: podman's fallback under $TMPDIR.
    expect(authFileCandidates({ HOME: '/home/u', XDG_CONFIG_HOME: '/cfg', DOCKER_CONFIG: '/dk', TMPDIR: '/var/tmp' }, 54321)).toEqual([
      '/var/tmp/podman-run-54321/containers/auth.json', '/cfg/containers/auth.json', '/dk/config.json',
    ]);
  });

  it('does not keep logins in a podman-run-UID under $TMPDIR that another user made first, or left open to others', () => {
    const tmp = join(dir, 'shared-tmp');
    mkdirSync(join(tmp, 'podman-run-54321'), { recursive: true });
    // Made by root (this test), not by uid 54321: someone else's directory.
    const env = { HOME: '/home/u', XDG_CONFIG_HOME: '/cfg', DOCKER_CONFIG: '/dk', TMPDIR: tmp };
    expect(loginAuthFile(env, 54321)).toBe('/cfg/containers/auth.json');
    expect(authFileCandidates(env, 54321)).toEqual(['/cfg/containers/auth.json', '/dk/config.json']);
    // The owner's own directory is used only while closed to others.
    const own = join(dir, 'own-tmp', 'podman-run-54322');
    mkdirSync(own, { recursive: true, mode: 0o700 });
    chownSync(own, 54322, 54322);
    const ownEnv = { ...env, TMPDIR: join(dir, 'own-tmp') };
    expect(loginAuthFile(ownEnv, 54322)).toBe(join(own, 'containers', 'auth.json'));
    chmodSync(own, 0o777);
    expect(loginAuthFile(ownEnv, 54322)).toBe('/cfg/containers/auth.json');
  });

  it('reads REGISTRY_AUTH_FILE alone, as podman takes it for --authfile', () => {
    const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000', REGISTRY_AUTH_FILE: '/etc/my-auth.json' };
    expect(loginAuthFile(env, 1000)).toBe('/etc/my-auth.json');
    expect(authFileCandidates(env, 1000)).toEqual(['/etc/my-auth.json']);
  });

  it('finds a login stored in the login file before the one in ~/.config', async () => {
    const home = join(dir, 'home');
    const run = join(dir, 'run');
    mkdirSync(join(run, 'containers'), { recursive: true });
    mkdirSync(join(home, '.config', 'containers'), { recursive: true });
    const entry = (u: string) => JSON.stringify({ auths: { 'r.example:5000': { auth: Buffer.from(`${u}:pw`).toString('base64') } } });
    writeFileSync(join(run, 'containers', 'auth.json'), entry('fresh'));
    writeFileSync(join(home, '.config', 'containers', 'auth.json'), entry('old'));
    const env = { HOME: home, XDG_RUNTIME_DIR: run };
    expect(await findCredentials('r.example:5000', 'a/b', { env })).toMatchObject({ username: 'fresh', password: 'pw' });
  });
});
