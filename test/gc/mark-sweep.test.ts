import { describe, expect, it } from 'vitest';
import { chainIds } from '@berth/digest';
import { RefGraph, collect, mark, parseDuration, parseFilter, planCollection, selectForUntag, sweep, tagOf, type BlobFacts, type ImageFacts, type StoreFacts } from '@berth/gc';
import { leaseIsLive, type LeaseRecord } from '@berth/content';

// Pins the GC rules on plain strings: what is kept, what goes, and in which order.

const d = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;
const NOW = Date.parse('2026-01-01T00:00:00Z');
const OLD = NOW - 3_600_000;

function image(name: string, config: string, layers: string[], diffIds: string[]): BlobFacts[] {
  return [
    { digest: name, size: 500, mtimeMs: OLD, refs: [config, ...layers] },
    { digest: config, size: 300, mtimeMs: OLD, refs: [], diffIds },
  ];
}

function facts(over: Partial<StoreFacts>): StoreFacts {
  return { entries: [], blobs: [], layers: [], snapshots: [], leases: [], now: NOW, graceMs: 600_000, ...over };
}

describe('mark and sweep on a graph', () => {
  it('keeps what a root reaches and orders removal referrers first', () => {
    const g = new RefGraph()
      .link('image:a', 'blob:m1').link('blob:m1', 'blob:c1').link('blob:m1', 'blob:base')
      .link('blob:m2', 'blob:c2').link('blob:m2', 'blob:base').link('blob:m2', 'blob:top');
    const { marked, garbage } = collect(g, ['image:a']);
    expect([...marked].sort()).toEqual(['blob:base', 'blob:c1', 'blob:m1', 'image:a']);
    expect(garbage.sort()).toEqual(['blob:c2', 'blob:m2', 'blob:top']);
    const order = sweep(g, marked);
    expect(order[0]).toBe('blob:m2');
  });

  it('removes a snapshot chain child first, never a parent before its child', () => {
    const g = new RefGraph().link('snapshot:c', 'snapshot:b').link('snapshot:b', 'snapshot:a').add('snapshot:z');
    const order = sweep(g, mark(g, []));
    expect(order.indexOf('snapshot:c')).toBeLessThan(order.indexOf('snapshot:b'));
    expect(order.indexOf('snapshot:b')).toBeLessThan(order.indexOf('snapshot:a'));
    expect(order).toHaveLength(4);
    // A root in the middle keeps its ancestors only.
    expect(sweep(g, mark(g, ['snapshot:b'])).sort()).toEqual(['snapshot:c', 'snapshot:z']);
  });

  it('still removes the members of a reference cycle nothing reaches', () => {
    const g = new RefGraph().link('snapshot:x', 'snapshot:y').link('snapshot:y', 'snapshot:x');
    expect(sweep(g, mark(g, [])).sort()).toEqual(['snapshot:x', 'snapshot:y']);
  });
});

describe('planCollection over store facts', () => {
  const base = d('b'), top1 = d('1'), top2 = d('2');
  const diffBase = d('e'), diffTop1 = d('f'), diffTop2 = d('9');
  const blobs: BlobFacts[] = [
    ...image(d('a'), d('c'), [base, top1], [diffBase, diffTop1]),
    ...image(d('3'), d('4'), [base, top2], [diffBase, diffTop2]),
    { digest: base, size: 1000, mtimeMs: OLD, refs: [] },
    { digest: top1, size: 100, mtimeMs: OLD, refs: [] },
    { digest: top2, size: 200, mtimeMs: OLD, refs: [] },
  ];

  it('keeps a layer two images share when one of them is removed', () => {
    const p = planCollection(facts({ entries: [{ ref: 'app:1', digest: d('a') }], blobs }));
    expect(new Set(p.garbage)).toEqual(new Set([`blob:${d('3')}`, `blob:${d('4')}`, `blob:${top2}`]));
    expect(p.garbage[0]).toBe(`blob:${d('3')}`);
    expect(p.marked.has(`blob:${base}`)).toBe(true);
  });

  it('keeps an image tagged twice until both tags are gone', () => {
    const twice = [{ ref: 'app:1', digest: d('a') }, { ref: 'app:latest', digest: d('a') }];
    expect(planCollection(facts({ entries: twice.slice(1), blobs })).marked.has(`blob:${d('a')}`)).toBe(true);
    expect(planCollection(facts({ entries: [], blobs })).garbage).toContain(`blob:${d('a')}`);
  });

  it('keeps what a lease names, and what an expired lease named goes', () => {
    const lease: LeaseRecord = { id: 'pull-1', pid: 42, created: '', expires: new Date(NOW + 1000).toISOString(), resources: [{ type: 'blob', id: d('3') }] };
    const expired: LeaseRecord = { ...lease, id: 'pull-0', expires: new Date(NOW - 1).toISOString() };
    const live = [lease, expired].filter((l) => leaseIsLive(l, NOW, () => true));
    expect(live.map((l) => l.id)).toEqual(['pull-1']);
    expect([lease].filter((l) => leaseIsLive(l, NOW, () => false))).toEqual([]);
    const p = planCollection(facts({ blobs, leases: live }));
    expect(p.marked.has(`blob:${top2}`)).toBe(true);
    expect(p.garbage).toContain(`blob:${d('a')}`);
    const none = planCollection(facts({ blobs, leases: [] }));
    expect(none.garbage).toHaveLength(blobs.length);
  });

  it('protects blobs younger than the grace period (a pull not yet tagged) and what they refer to', () => {
    const young = blobs.map((b) => (b.digest === d('3') ? { ...b, mtimeMs: NOW - 1000 } : b));
    const p = planCollection(facts({ blobs: young }));
    expect(p.marked.has(`blob:${top2}`)).toBe(true);
    expect(p.marked.has(`blob:${top1}`)).toBe(false);
  });

  it('a container (active snapshot) keeps the image it was made from, a committed snapshot alone does not', () => {
    const ctr = planCollection(facts({ blobs, snapshots: [{ key: 'ctr-1', kind: 'active', image: d('3'), size: 0, mtimeMs: OLD }] }));
    expect(new Set(ctr.garbage)).toEqual(new Set([`blob:${d('a')}`, `blob:${d('c')}`, `blob:${top1}`]));
    const built = planCollection(facts({ blobs, snapshots: [{ key: 'built', kind: 'committed', image: d('3'), size: 0, mtimeMs: OLD }] }));
    expect(built.garbage).toHaveLength(blobs.length + 1);
    expect(built.garbage.indexOf('snapshot:built')).toBeLessThan(built.garbage.indexOf(`blob:${d('3')}`));
  });

  it('follows configs to the chainIDs of extracted layers and to committed snapshots', () => {
    const [c0, c1] = chainIds([diffBase, diffTop1]);
    const [, c2] = chainIds([diffBase, diffTop2]);
    const p = planCollection(facts({
      entries: [{ ref: 'app:1', digest: d('a') }],
      blobs,
      layers: [
        { chainId: c0!, size: 10, mtimeMs: OLD },
        { chainId: c1!, parent: c0!, size: 10, mtimeMs: OLD },
        { chainId: c2!, parent: c0!, size: 10, mtimeMs: OLD },
      ],
      snapshots: [
        { key: 's-c2', kind: 'committed', chainId: c2!, size: 5, mtimeMs: OLD },
        { key: 'ctr-1', kind: 'active', parent: 'old-base', size: 5, mtimeMs: OLD },
        { key: 'old-base', kind: 'committed', size: 5, mtimeMs: OLD },
        { key: 'orphan', kind: 'committed', size: 5, mtimeMs: OLD },
      ],
    }));
    expect(p.marked.has(`layer:${c1}`)).toBe(true);
    expect(p.marked.has(`layer:${c0}`)).toBe(true);
    expect(p.marked.has('snapshot:old-base')).toBe(true);
    expect(new Set(p.garbage)).toEqual(new Set([`blob:${d('3')}`, `blob:${d('4')}`, `blob:${top2}`, `layer:${c2}`, 'snapshot:s-c2', 'snapshot:orphan']));
    expect(p.garbage.indexOf(`blob:${d('4')}`)).toBeLessThan(p.garbage.indexOf(`layer:${c2}`));
    expect(p.garbage.indexOf(`layer:${c2}`)).toBeLessThan(p.garbage.indexOf('snapshot:s-c2'));
  });
});

describe('image selection (podman filter words)', () => {
  const imgs: ImageFacts[] = [
    { ref: 'localhost/app:latest', digest: d('1'), labels: [{ 'my-project.purpose': 'app-image' }], created: OLD },
    { ref: 'localhost/app:v1', digest: d('1'), labels: [{ 'my-project.purpose': 'app-image' }], created: OLD },
    { ref: 'localhost/app:v0', digest: d('2'), labels: [{ 'my-project.purpose': 'app-image' }], created: OLD - 86_400_000 },
    { ref: 'localhost/db:v1', digest: d('3'), labels: [{ 'my-project.purpose': 'db' }], created: NOW },
    { digest: d('4'), labels: [{}], created: OLD },
  ];
  const names = (s: ImageFacts[]) => s.map((i) => i.ref ?? i.digest);

  it('removes the labelled images except what :latest points to (clean_images)', () => {
    const sel = selectForUntag(imgs, { filters: [parseFilter('label=my-project.purpose=app-image')], keepTags: ['latest'], all: false });
    expect(names(sel)).toEqual(['localhost/app:v0']);
    // label=KEY matches any value of that key.
    expect(names(selectForUntag(imgs, { filters: [parseFilter('label=my-project.purpose')], keepTags: [], all: false }))).toEqual(['localhost/app:latest', 'localhost/app:v1', 'localhost/app:v0', 'localhost/db:v1']);
  });

  it('selects nothing without a filter or --all, everything with --all, and ANDs filters', () => {
    expect(selectForUntag(imgs, { filters: [], keepTags: [], all: false })).toEqual([]);
    expect(selectForUntag(imgs, { filters: [], keepTags: [], all: true })).toHaveLength(5);
    expect(names(selectForUntag(imgs, { filters: [parseFilter('dangling=true')], keepTags: [], all: false }))).toEqual([d('4')]);
    expect(names(selectForUntag(imgs, { filters: [parseFilter('until=2h', NOW), parseFilter('label=my-project.purpose')], keepTags: [], all: false }))).toEqual(['localhost/app:v0']);
    expect(names(selectForUntag(imgs, { filters: [], keepTags: ['localhost/db:v1'], all: true, inUse: new Set([d('4')]) }))).toEqual(['localhost/app:latest', 'localhost/app:v1', 'localhost/app:v0']);
  });

  it('parses durations, timestamps and refuses bad filters', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('10x')).toBeUndefined();
    expect(parseFilter('until=2025-12-31T00:00:00Z')).toEqual({ kind: 'until', before: Date.parse('2025-12-31T00:00:00Z') });
    expect(parseFilter('until=1700000000')).toEqual({ kind: 'until', before: 1_700_000_000_000 });
    expect(() => parseFilter('until=yesterday')).toThrow(/until=yesterday/);
    expect(() => parseFilter('reference=foo')).toThrow(/unknown filter "reference"/);
    expect(() => parseFilter('dangling=maybe')).toThrow(/dangling/);
    expect(tagOf('registry:5000/app:v1')).toBe('v1');
    expect(tagOf('registry:5000/app')).toBeUndefined();
  });
});
