import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runToolAsync, tempDir } from '../helpers/run.ts';

// Credential helpers (the docker-credential-helpers protocol podman and docker
// share): credHelpers in docker's config.json or podman's auth.json, and
// docker's credsStore. The helper here is a small program speaking that
// protocol (`get`, the server on stdin, JSON on stdout), like
// docker-credential-pass but answering from its environment; a real
// registry with Basic auth checks what it hands over.
const user = 'helped';
const password = 'from-the-helper';

describe('berth-pull with credential helpers', () => {
  let reg: TestRegistry;
  const dir = tempDir('berth-pull-credhelper-');
  const bin = join(dir.path, 'bin');
  const asked = join(dir.path, 'asked.log');
  let ref = '';
  let n = 0;

  const env = (files: { docker?: unknown; podman?: unknown }, known: string) => {
    const home = join(dir.path, `home${n++}`);
    mkdirSync(join(home, 'run', 'containers'), { recursive: true });
    mkdirSync(join(home, '.docker'), { recursive: true });
    if (files.docker) writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify(files.docker));
    if (files.podman) writeFileSync(join(home, 'run', 'containers', 'auth.json'), JSON.stringify(files.podman));
    return {
      HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, 'config'), DOCKER_CONFIG: undefined, REGISTRY_AUTH_FILE: undefined,
      PATH: `${bin}:${process.env.PATH}`, HELPER_KNOWN: known, HELPER_USER: user, HELPER_SECRET: password, HELPER_LOG: asked,
    };
  };
  const pull = (e: NodeJS.ProcessEnv) => runToolAsync('berth-pull', ['--root', join(dir.path, `root${n++}`), '--tls-verify=false', ref], { env: e });

  beforeAll(async () => {
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'docker-credential-berthtest'), `#!/bin/sh
[ "$1" = get ] || { echo "only get is supported" >&2; exit 2; }
read -r server
echo "$server" >> "$HELPER_LOG"
if [ "$server" = "$HELPER_KNOWN" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" "$HELPER_USER" "$HELPER_SECRET"
else
  echo "credentials not found in native keychain"
  exit 1
fi
`);
    chmodSync(join(bin, 'docker-credential-berthtest'), 0o755);
    reg = await startRegistry({ basicAuth: { user, password } });
    await writeBusyboxImage(join(dir.path, 'layout'), 'busybox:latest');
    skopeoPush(join(dir.path, 'layout'), 'busybox:latest', `${reg.host}/library/busybox:latest`, { creds: `${user}:${password}` });
    ref = `${reg.host}/library/busybox:latest`;
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    dir.cleanup();
  });

  it('asks the helper credHelpers names for the registry, over the file\'s own auths, and pulls with its answer', async () => {
    const wrong = Buffer.from(`${user}:not-the-password`).toString('base64');
    const r = await pull(env({ docker: { auths: { [reg.host]: { auth: wrong } }, credHelpers: { [reg.host]: 'berthtest' } } }, reg.host));
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(asked, 'utf8').split('\n')).toContain(reg.host);
  });

  it('reads credHelpers in podman\'s auth.json too', async () => {
    const r = await pull(env({ podman: { auths: {}, credHelpers: { [reg.host]: 'berthtest' } } }, reg.host));
    expect(r.code, r.stderr).toBe(0);
  });

  it('uses docker\'s credsStore for registries without an entry, and goes anonymous when the store has none', async () => {
    const ok = await pull(env({ docker: { auths: { [reg.host]: {} }, credsStore: 'berthtest' } }, reg.host));
    expect(ok.code, ok.stderr).toBe(0);
    const none = await pull(env({ docker: { credsStore: 'berthtest' } }, 'some.other.registry'));
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/401|authentication required|credentials/i);
  });

  it('names a helper that is not installed, and where it was named', async () => {
    const e = env({ docker: { credHelpers: { [reg.host]: 'nosuch' } } }, reg.host);
    const r = await pull(e);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`credential helper docker-credential-nosuch (credHelpers in ${join(e.HOME, '.docker', 'config.json')}) is not on PATH`);
  });
});
