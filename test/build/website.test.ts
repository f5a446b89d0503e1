import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { freePort, skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, repoRoot, tempDir } from '../helpers/run.ts';

/**
 * The guide's Makefile chain, as a user runs it: `make -C examples/website
 * all` with the `berth` front builds the site image (the git hash built
 * into the page), tags it :latest, runs test.sh (a container serving the
 * page, fetched and checked for the hash), pushes both tags to a loopback
 * registry, and cleans up containers and old images of the project.
 */
let registry: TestRegistry;
let work: { path: string; cleanup: () => void };
let root: string;
let runRoot: string;

function make(target: string[], vars: Record<string, string>) {
  const berth = `${process.execPath} ${binPath('berth')}`;
  return spawnSync('make', ['-C', join(repoRoot, 'examples', 'website'), ...target,
    `BERTH=${berth}`, `REGISTRY=${registry.host}`, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, BERTH_ROOT: root, BERTH_RUN_ROOT: runRoot },
  });
}

function registryDigest(ref: string): string {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })).Digest as string;
}

beforeAll(async () => {
  work = tempDir('berth-website-');
  root = join(work.path, 'root');
  runRoot = join(work.path, 'run');
  registry = await startRegistry();
  const seed = join(work.path, 'seed');
  await writeBusyboxImage(seed, 'busybox:latest');
  skopeoPush(seed, 'busybox:latest', `${registry.host}/library/busybox:latest`);
}, 60_000);

afterAll(async () => {
  if (registry) spawnSync(process.execPath, [binPath('berth'), 'rm', '--force', 'smk'], { env: { ...process.env, BERTH_ROOT: root, BERTH_RUN_ROOT: runRoot } });
  await registry?.stop();
  work?.cleanup();
});

describe('examples/website: make all with berth', () => {
  it('builds, tests the page for the hash, pushes :HASH and :latest, and cleans the older image', async () => {
    const imageRef = `${registry.host}/berth-example/website`;
    const older = make(['all'], { HASH: 'older01', TEST_PORT: String(await freePort()) });
    expect(older.stderr + older.stdout).not.toMatch(/Error|error:/);
    expect(older.status, older.stdout + older.stderr).toBe(0);
    expect(older.stdout).toContain('test: ok');
    expect(older.stdout).toContain('revision older01');

    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const current = make(['all'], { TEST_PORT: String(await freePort()) });
    expect(current.stderr + current.stdout).not.toMatch(/Error|error:/);
    expect(current.status, current.stdout + current.stderr).toBe(0);
    expect(current.stdout).toContain(`revision ${hash}`);

    // Both tags are in the registry and name the same manifest.
    expect(registryDigest(`${imageRef}:${hash}`)).toBe(registryDigest(`${imageRef}:latest`));
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${imageRef}:latest`], { encoding: 'utf8' }));
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');

    // clean_images removed the older build from the store, kept the latest.
    const names = JSON.parse(readFileSync(join(root, 'images', 'index.json'), 'utf8')).manifests
      .map((m: any) => m.annotations?.['org.opencontainers.image.ref.name']);
    expect(names).toContain(`${imageRef}:latest`);
    expect(names).toContain(`${imageRef}:${hash}`);
    expect(names).not.toContain(`${imageRef}:older01`);

    // clean_containers tolerates containers that are not there (exit 125).
    const clean = make(['clean_containers'], {});
    expect(clean.status, clean.stdout + clean.stderr).toBe(0);
  });
});
