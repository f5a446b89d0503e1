import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, runToolAsync, tempDir } from '../helpers/run.ts';
import { issueCert, makeCa } from '../helpers/tls.ts';

// Registries on HTTPS with a private CA, as containers-certs.d(5) sets them
// up for podman and skopeo: the CA in certs.d/HOST:PORT/ca.crt (or a
// --cert-dir), and for a registry that wants mutual TLS, a client.cert and
// client.key beside it. Two real docker-registry servers on loopback: one
// with a certificate from the test's own CA, one that also requires a client
// certificate from it. skopeo reads the same directories.

describe('berth-pull, berth pull and berth push against HTTPS registries with a private CA (certs.d)', () => {
  const dir = tempDir('berth-tls-');
  let plain: TestRegistry;
  let mutual: TestRegistry;
  let caDir = '';
  let clientDir = '';
  let n = 0;
  const etcDirs: string[] = [];

  const root = () => join(dir.path, `root${n++}`);
  const skopeo = (args: string[]) => spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  const inspectDigest = (ref: string, certDir: string): string => {
    const r = skopeo(['inspect', '--cert-dir', certDir, '--format', '{{.Digest}}', `docker://${ref}`]);
    expect(r.stderr).toBe('');
    return r.stdout.trim();
  };

  beforeAll(async () => {
    const ca = makeCa(dir.path);
    const server = issueCert(ca, 'registry', 'server');
    const client = issueCert(ca, 'client', 'client');
    // The two certs.d layouts: the CA alone, and the CA with a client pair.
    caDir = join(dir.path, 'certs-ca');
    clientDir = join(dir.path, 'certs-client');
    for (const d of [caDir, clientDir]) {
      mkdirSync(d);
      copyFileSync(ca.cert, join(d, 'ca.crt'));
    }
    copyFileSync(client.cert, join(clientDir, 'client.cert'));
    copyFileSync(client.key, join(clientDir, 'client.key'));
    plain = await startRegistry({ tls: { certificate: server.cert, key: server.key } });
    mutual = await startRegistry({ tls: { certificate: server.cert, key: server.key, clientCas: [ca.cert] } });
    const layout = join(dir.path, 'layout');
    await writeBusyboxImage(layout, 'busybox:latest');
    // skopeo pushes with the same directories berth reads.
    execFileSync('skopeo', ['copy', '--quiet', '--dest-cert-dir', caDir, `oci:${layout}:busybox:latest`, `docker://${plain.host}/library/busybox:latest`]);
    execFileSync('skopeo', ['copy', '--quiet', '--dest-cert-dir', clientDir, `oci:${layout}:busybox:latest`, `docker://${mutual.host}/library/busybox:latest`]);
  }, 120_000);

  afterAll(async () => {
    for (const d of etcDirs) rmSync(d, { recursive: true, force: true });
    await plain?.stop();
    await mutual?.stop();
    dir.cleanup();
  });

  it('an unknown CA is refused with the certs.d path to put it in, and nothing is stored', async () => {
    const r0 = root();
    const r = await runToolAsync('berth-pull', ['--root', r0, `${plain.host}/library/busybox:latest`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/certificate/i);
    expect(r.stderr).toContain(`/etc/containers/certs.d/${plain.host}/ca.crt`);
    expect(r.stderr).toContain('--tls-verify=false');
    const index = join(r0, 'images', 'index.json');
    expect(existsSync(index) ? JSON.parse(readFileSync(index, 'utf8')).manifests : []).toEqual([]);
  }, 60_000);

  it('--cert-dir with the CA pulls the image skopeo sees with the same directory', async () => {
    const ref = `${plain.host}/library/busybox:latest`;
    const r = await runToolAsync('berth-pull', ['--root', root(), '--cert-dir', caDir, ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.manifest.digest).toBe(inspectDigest(ref, caDir));
  }, 60_000);

  it('/etc/containers/certs.d/HOST:PORT/ca.crt is used with no flag, by berth-pull and by berth pull', async () => {
    const hostDir = join('/etc/containers/certs.d', plain.host);
    // What this test makes under /etc goes again: the host dir, and certs.d itself if it was not there.
    etcDirs.push(existsSync('/etc/containers/certs.d') ? hostDir : '/etc/containers/certs.d');
    mkdirSync(hostDir, { recursive: true });
    copyFileSync(join(caDir, 'ca.crt'), join(hostDir, 'ca.crt'));
    try {
      const ref = `${plain.host}/library/busybox:latest`;
      const pulled = await runToolAsync('berth-pull', ['--root', root(), ref]);
      expect(pulled.code, pulled.stderr).toBe(0);
      const front = await runToolAsync('berth', ['--root', root(), 'pull', '-q', ref]);
      expect(front.code, front.stderr).toBe(0);
      expect(front.stdout.trim()).toBe(pulled.json.config.digest.slice('sha256:'.length));
    } finally {
      rmSync(etcDirs.at(-1)!, { recursive: true, force: true });
    }
  }, 60_000);

  it('a CA in NODE_EXTRA_CA_CERTS is trusted, whether Node reads it (node bin/...) or the launcher passes it on (bin/... by path)', async () => {
    const ref = `${plain.host}/library/busybox:latest`;
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(caDir, 'ca.crt') };
    const viaNode = await runToolAsync('berth-pull', ['--root', root(), ref], { env });
    expect(viaNode.code, viaNode.stderr).toBe(0);
    // Run by path, sh starts Node without the variable and hands the file on as BERTH_EXTRA_CA_CERTS.
    const byPath = spawnSync(binPath('berth-pull'), ['--root', root(), ref], { encoding: 'utf8', env, timeout: 60_000 });
    expect(byPath.status, byPath.stderr).toBe(0);
    expect(JSON.parse(byPath.stdout).manifest.digest).toBe(viaNode.json.manifest.digest);
  }, 60_000);

  it('a registry that wants a client certificate: refused with the CA alone, pulled with client.cert and client.key', async () => {
    const ref = `${mutual.host}/library/busybox:latest`;
    const without = await runToolAsync('berth-pull', ['--root', root(), '--cert-dir', caDir, ref]);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain(mutual.host);
    const r = await runToolAsync('berth-pull', ['--root', root(), '--cert-dir', clientDir, ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.manifest.digest).toBe(inspectDigest(ref, clientDir));
  }, 60_000);

  it('a client certificate without its key, and a --cert-dir that is not a directory, are named', async () => {
    const half = join(dir.path, 'certs-half');
    mkdirSync(half);
    copyFileSync(join(caDir, 'ca.crt'), join(half, 'ca.crt'));
    copyFileSync(join(clientDir, 'client.cert'), join(half, 'client.cert'));
    const ref = `${mutual.host}/library/busybox:latest`;
    const r = await runToolAsync('berth-pull', ['--root', root(), '--cert-dir', half, ref]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(half, 'client.cert')}: missing client key client.key beside it`);
    const notDir = await runToolAsync('berth-pull', ['--root', root(), '--cert-dir', join(half, 'ca.crt'), ref]);
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toContain(`--cert-dir ${join(half, 'ca.crt')}: not a directory`);
  }, 60_000);

  it('berth push --cert-dir uploads to the mutual-TLS registry; skopeo finds the same manifest there', async () => {
    const r0 = root();
    const from = `${plain.host}/library/busybox:latest`;
    expect((await runToolAsync('berth', ['--root', r0, 'pull', '-q', '--cert-dir', caDir, from])).code).toBe(0);
    const to = `${mutual.host}/pushed/busybox:1`;
    const push = await runToolAsync('berth', ['--root', r0, 'push', '-q', '--cert-dir', clientDir, '--digestfile', join(dir.path, 'digest'), from, to]);
    expect(push.code, push.stderr).toBe(0);
    expect(inspectDigest(to, clientDir)).toBe(inspectDigest(from, caDir));
    expect(readFileSync(join(dir.path, 'digest'), 'utf8').trim()).toBe(inspectDigest(to, clientDir));
  }, 90_000);
});
