import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { Berth, pushGuideImages } from './fixtures.ts';

// podman's history, untag and exists verbs: what a build made, names taken
// off without losing the image, and script-friendly existence checks.
let reg: TestRegistry;
const layout = tempDir('berth-engine-history-layout-');
const ctx = tempDir('berth-engine-history-ctx-');
const berth = new Berth();
let plain = '';

beforeAll(async () => {
  reg = await startRegistry();
  plain = (await pushGuideImages(reg, layout.path)).plain;
  berth.ok('pull', '--tls-verify=false', plain);
  mkdirSync(join(ctx.path, 'site'));
  writeFileSync(join(ctx.path, 'site', 'index.html'), 'hello\n'.repeat(2000));
  writeFileSync(join(ctx.path, 'Containerfile'), [
    `FROM ${plain}`,
    'ENV GREETING=hi',
    'COPY site /srv/site',
    'RUN echo built > /srv/stamp',
    'LABEL stage=history',
  ].join('\n') + '\n');
  berth.ok('build', '--tls-verify=false', '-t', 'hist:1', ctx.path);
}, 180_000);

afterAll(async () => {
  await berth.cleanup();
  await reg?.stop();
  layout.cleanup();
  ctx.cleanup();
});

/** Every name in the store, as `berth images` lists one row per name. */
function allNames(): string[] {
  return (JSON.parse(berth.ok('images', '--format', 'json')) as Array<{ Names: string[] }>).flatMap((i) => i.Names);
}

function imageId(ref: string): string {
  return (JSON.parse(berth.ok('inspect', ref)) as Array<{ Id: string }>)[0]!.Id;
}

describe('berth history', () => {
  it('lists the build steps newest first, with the image id on the top row and each layer\'s size', () => {
    const lines = berth.ok('history', 'hist:1').trimEnd().split('\n');
    expect(lines[0]!.split(/\s{2,}/)).toEqual(['ID', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']);
    const rows = lines.slice(1);
    // busybox base (1 entry) + ENV, COPY, RUN, LABEL
    expect(rows).toHaveLength(5);
    expect(rows[0]!.startsWith(imageId('hist:1').slice(0, 12) + ' ')).toBe(true);
    expect(rows.slice(1).every((r) => r.startsWith('<missing> '))).toBe(true);
    expect(rows[0]).toContain('LABEL stage=history');
    expect(rows[1]).toContain('/bin/sh -c echo built > /srv/stamp');
    expect(rows[3]).toContain('ENV GREETING=hi');
    expect(rows[0]).toMatch(/\s0 B\s*$/);
    expect(rows[3]).toMatch(/\s0 B\s*$/);
  });

  it('pairs each layer-making entry with its layer blob in --format json, oldest layer last', () => {
    const docs = JSON.parse(berth.ok('history', '--format', 'json', 'hist:1')) as Array<{ id: string; CreatedBy: string; size: number; created: string }>;
    const manifestLayers = (JSON.parse(berth.ok('inspect', 'hist:1')) as Array<{ Id: string }>)[0]!;
    expect(manifestLayers.Id).toBe(docs[0]!.id);
    const sized = docs.filter((d) => d.size > 0);
    expect(sized).toHaveLength(3); // RUN, COPY and the base layer
    expect(sized[0]!.CreatedBy).toContain('echo built > /srv/stamp');
    expect(sized[1]!.CreatedBy).toContain('COPY');
    // The COPY layer holds 12 kB of text: its compressed blob is small but not empty.
    expect(sized[1]!.size).toBeGreaterThan(50);
    expect(docs.every((d) => !Number.isNaN(Date.parse(d.created)))).toBe(true);
    expect(berth.ok('history', '-q', '--no-trunc', 'hist:1').split('\n')[0]).toBe(docs[0]!.id);
    expect(berth.ok('history', '--format', '{{.ID}}|{{.Size}}', 'hist:1').trim().split('\n').at(-1)).toMatch(/^<missing>\|[\d.]+ [kM]B$/);
  });

  it('names a missing image and exits 125', () => {
    const r = berth.run('history', 'nosuch:1');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('nosuch:1: image not known');
  });
});

describe('berth untag', () => {
  it('takes one name and keeps the image under its others; a name it lacks fails before any is taken', () => {
    const id = imageId('hist:1');
    berth.ok('tag', 'hist:1', 'hist:2', 'other/hist:3');
    const bad = berth.run('untag', 'hist:1', 'hist:2', 'hist:9');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('localhost/hist:9: tag not known');
    expect(allNames()).toEqual(expect.arrayContaining(['localhost/hist:1', 'localhost/hist:2', 'localhost/other/hist:3']));
    berth.ok('untag', 'hist:1', 'hist:2');
    const names = allNames();
    expect(names).not.toContain('localhost/hist:2');
    expect(names).toContain('localhost/hist:1');
    expect(imageId('other/hist:3')).toBe(id);
  });

  it('without names leaves the image dangling, runnable by id, until image prune takes it', () => {
    const id = imageId('hist:1');
    berth.ok('untag', id);
    const index = JSON.parse(readFileSync(join(berth.root, 'images', 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    expect(index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name']?.includes('hist'))).toEqual([]);
    expect(berth.ok('images', '--filter', 'dangling=true', '-q', '--no-trunc').trim().split('\n')).toContain(`sha256:${id}`);
    expect(berth.ok('run', '--rm', id, 'cat', '/srv/stamp')).toBe('built\n');
    berth.ok('image', 'prune', '-f');
    expect(berth.run('image', 'exists', id).code).toBe(1);
  });
});

describe('berth image|container|pod exists', () => {
  it('exits 0 when the object is there and 1 when not, printing nothing', () => {
    const image = berth.run('image', 'exists', plain);
    expect([image.code, image.stdout, image.stderr]).toEqual([0, '', '']);
    expect(berth.run('image', 'exists', 'localhost/nosuch:1').code).toBe(1);
    berth.ok('create', '--name', 'there', plain, 'true');
    expect(berth.run('container', 'exists', 'there').code).toBe(0);
    expect(berth.run('container', 'exists', 'not-there').code).toBe(1);
    berth.ok('rm', 'there');
    expect(berth.run('container', 'exists', 'there').code).toBe(1);
    berth.ok('pod', 'create', '--network', 'none', '--name', 'hist-pod');
    expect(berth.run('pod', 'exists', 'hist-pod').code).toBe(0);
    berth.ok('pod', 'rm', 'hist-pod');
    expect(berth.run('pod', 'exists', 'hist-pod').code).toBe(1);
  });
});
