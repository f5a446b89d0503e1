import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runTool, tempDir } from '../helpers/run.ts';

/**
 * berth-build push against a real registry, checked by the peers: skopeo
 * inspects what berth pushed, podman pulls and runs it. Also: blobs the
 * registry has are skipped, blobs in another repository are mounted, big
 * blobs go up in PATCH chunks, and a registry refusing the credentials gives
 * a clear error.
 */
let registry: TestRegistry;
let authRegistry: TestRegistry;
let work: { path: string; cleanup: () => void };
let root: string;
let image: any;

function tool(args: string[]) {
  return runTool('berth-build', [...args.slice(0, 1), '--root', root, ...args.slice(1)], { timeoutMs: 180_000 });
}

function podman(args: string[]) {
  const base = ['--root', join(work.path, 'podman-root'), '--runroot', join(work.path, 'podman-run'), '--storage-driver', 'vfs', '--runtime', 'runc'];
  return spawnSync('podman', [...base, ...args], { encoding: 'utf8', timeout: 120_000 });
}

beforeAll(async () => {
  work = tempDir('berth-push-');
  root = join(work.path, 'root');
  registry = await startRegistry();
  authRegistry = await startRegistry({ basicAuth: { user: 'builder', password: 'right-password' } });
  const seed = join(work.path, 'seed');
  await writeBusyboxImage(seed, 'busybox:latest');
  skopeoPush(seed, 'busybox:latest', `${registry.host}/library/busybox:latest`);
  const ctx = join(work.path, 'ctx');
  mkdirSync(join(ctx, 'www'), { recursive: true });
  writeFileSync(join(ctx, 'www', 'index.html'), '<p>pushed by berth</p>\n');
  writeFileSync(join(ctx, 'Containerfile'), `FROM ${registry.host}/library/busybox:latest\nRUN mkdir -p /srv && echo ran > /srv/ran\nCOPY www/ /www/\nCMD ["cat", "/www/index.html"]\n`);
  const r = runTool('berth-build', ['--root', root, '--tls-verify=false', '--format', 'docker', '-q', '-t', 'site:1', ctx], { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`build failed: ${r.stderr}`);
  image = r.json;
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  await authRegistry?.stop();
  // podman's vfs store is plain directories under the temp dir (no mounts), so removing the dir removes it.
  work?.cleanup();
});

describe('berth-build push', () => {
  it('mounts the base layer, uploads the rest in PATCH chunks; skopeo inspects and podman pulls and runs what it pushed', () => {
    const dest = `${registry.host}/site/web:1`;
    // 256-byte chunks: the config (about 1.5 KiB) goes up as several PATCHes.
    const r = tool(['push', '--tls-verify=false', '--remove-signatures', '--chunk-size', String(256 / 1024 / 1024), 'site:1', dest]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    // The busybox layer came from library/busybox on this registry (the FROM pull): mounted, not sent.
    expect(r.json.blobs.map((b: any) => b.how)).toEqual(['mounted', 'uploaded', 'uploaded', 'uploaded']);
    expect(r.stderr).toContain('mounted from library/busybox');
    const config = r.json.blobs[3];
    expect(config.requests).toBe(Math.ceil(config.size / 256));
    expect(r.json.manifest.digest).toBe(image.manifest.digest);
    expect(r.stderr).toContain('Writing manifest to image destination');

    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}`], { encoding: 'utf8' }));
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(raw.layers.map((l: any) => l.digest)).toEqual(image.layers.map((l: any) => l.digest));
    const info = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`], { encoding: 'utf8' }));
    expect(info.Digest).toBe(image.manifest.digest);

    const pulled = podman(['pull', '--tls-verify=false', '-q', dest]);
    expect(pulled.stderr).toBe('');
    expect(pulled.status).toBe(0);
    const run = podman(['run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', dest]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('<p>pushed by berth</p>\n');
    const ran = podman(['run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', dest, 'cat', '/srv/ran']);
    expect(ran.stdout).toBe('ran\n');
  });

  it('skips blobs the repository has and mounts blobs from another repository of the registry', () => {
    const again = tool(['push', '--tls-verify=false', 'site:1', `${registry.host}/site/web:again`]);
    expect(again.code).toBe(0);
    expect(again.json.blobs.map((b: any) => b.how)).toEqual(['exists', 'exists', 'exists', 'exists']);
    const other = tool(['push', '--tls-verify=false', 'site:1', `${registry.host}/other/web:1`]);
    expect(other.code).toBe(0);
    expect(other.json.blobs.map((b: any) => b.how)).toEqual(['mounted', 'mounted', 'mounted', 'mounted']);
    expect(other.stderr).toContain('mounted from site/web');
    const info = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/other/web:1`], { encoding: 'utf8' }));
    expect(info.Digest).toBe(image.manifest.digest);
  });

  it('converts media types with --format oci on the way', () => {
    const r = tool(['push', '--tls-verify=false', '--format', 'oci', 'site:1', `${registry.host}/site/web:oci`]);
    expect(r.code).toBe(0);
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/site/web:oci`], { encoding: 'utf8' }));
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(raw.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('says clearly when the registry rejects the credentials, and pushes with the right ones', () => {
    const dest = `${authRegistry.host}/site/web:1`;
    const wrong = tool(['push', '--tls-verify=false', '--creds', 'builder:wrong', 'site:1', dest]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/registry answered 401 \(credentials from --creds were rejected\)/);
    expect(wrong.stdout).toBe('');
    const none = tool(['push', '--tls-verify=false', 'site:1', dest]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('authentication required');
    const right = tool(['push', '--tls-verify=false', '--creds', 'builder:right-password', 'site:1', dest]);
    expect(right.stderr).not.toMatch(/error/i);
    expect(right.code).toBe(0);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--creds', 'builder:right-password', `docker://${dest}`], { encoding: 'utf8' }));
    expect(info.Digest).toBe(image.manifest.digest);
  });

  it('refuses an image that is not in the store and a destination that is not a registry', () => {
    const missing = tool(['push', '--tls-verify=false', 'nothere:1', `${registry.host}/x/y:1`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('image "nothere:1" is not in the image store');
    const transport = tool(['push', 'site:1', 'oci:/tmp/layout']);
    expect(transport.code).toBe(2);
    expect(transport.stderr).toContain('berth pushes to registries only');
  });
});
