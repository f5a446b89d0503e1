import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blockIoStats, openCgroup, parseIoStat, parseV1ServiceBytes, perCpuUsage, processCgroup } from '../src/index.ts';
import { fakeHybrid, fakeV1, fakeV2 } from './fake-hierarchy.ts';

// The readers behind `berth stats`: block I/O from v1 blkio and v2 io.stat,
// per-CPU time, and the cgroup of a pid found through /proc/PID/cgroup.
let root: string;
beforeEach(() => { root = mkdtempSync(join(tmpdir(), 'berth-cgroup-stats-')); });
afterEach(() => rmSync(root, { recursive: true, force: true }));

const V1_BYTES = '8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Async 4608\n8:0 Discard 0\n8:0 Total 4608\n'
  + '8:16 Read 1000\n8:16 Write 24\n8:16 Total 1024\nTotal 5632\n';

describe('block I/O', () => {
  it('sums Read and Write over devices in v1 service bytes, skipping totals', () => {
    expect(parseV1ServiceBytes(V1_BYTES)).toEqual({ readBytes: 5096, writeBytes: 536 });
    expect(parseV1ServiceBytes('Total 0\n')).toEqual({ readBytes: 0, writeBytes: 0 });
  });

  it('sums rbytes and wbytes over devices in v2 io.stat', () => {
    expect(parseIoStat('8:0 rbytes=100 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=7 rios=1 wios=1 dbytes=0 dios=0\n'))
      .toEqual({ readBytes: 105, writeBytes: 27 });
  });

  it('reads the throttle file first on v1, so bytes are not counted twice', () => {
    fakeV1(root, ['/berth/c1']);
    const dir = join(root, 'blkio/berth/c1');
    writeFileSync(join(dir, 'blkio.throttle.io_service_bytes_recursive'), V1_BYTES);
    writeFileSync(join(dir, 'blkio.bfq.io_service_bytes_recursive'), '8:0 Read 1\n8:0 Write 1\n');
    const cg = openCgroup({ id: 'c1', path: '/berth/c1', root });
    expect(blockIoStats(cg)).toEqual({ readBytes: 5096, writeBytes: 536 });
  });

  it('falls back to the BFQ file, and reads io.stat on v2', () => {
    fakeV1(join(root, 'a'), ['/berth/c1']);
    writeFileSync(join(root, 'a/blkio/berth/c1/blkio.bfq.io_service_bytes_recursive'), '8:0 Read 10\n8:0 Write 3\nTotal 13\n');
    expect(blockIoStats(openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'a') }))).toEqual({ readBytes: 10, writeBytes: 3 });
    fakeV2(join(root, 'b'), ['/berth/c1']);
    writeFileSync(join(root, 'b/berth/c1/io.stat'), '259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n');
    expect(blockIoStats(openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'b') }))).toEqual({ readBytes: 4096, writeBytes: 8192 });
  });

  it('is undefined without a blkio or io controller', () => {
    fakeV1(root, ['/berth/c1'], ['memory', 'pids']);
    expect(blockIoStats(openCgroup({ id: 'c1', path: '/berth/c1', root }))).toBeUndefined();
  });
});

describe('per-CPU usage', () => {
  it('reads cpuacct.usage_percpu on v1 and has none on v2', () => {
    fakeV1(join(root, 'a'), ['/berth/c1']);
    writeFileSync(join(root, 'a/cpuacct/berth/c1/cpuacct.usage_percpu'), '8204066286 6312791279 \n');
    expect(perCpuUsage(openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'a') }))).toEqual([8204066286, 6312791279]);
    fakeV2(join(root, 'b'), ['/berth/c1']);
    expect(perCpuUsage(openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'b') }))).toBeUndefined();
  });
});

describe('processCgroup', () => {
  function proc(pid: number, text: string): string {
    const procRoot = join(root, 'proc');
    mkdirSync(join(procRoot, String(pid)), { recursive: true });
    writeFileSync(join(procRoot, String(pid), 'cgroup'), text);
    return procRoot;
  }

  it('finds a hybrid host\'s container by its memory hierarchy path and reads its counters', () => {
    const cgroups = join(root, 'cg');
    fakeHybrid(cgroups, ['/berth/abc']);
    writeFileSync(join(cgroups, 'memory/berth/abc/memory.usage_in_bytes'), '249856\n');
    writeFileSync(join(cgroups, 'memory/berth/abc/memory.limit_in_bytes'), '67108864\n');
    writeFileSync(join(cgroups, 'pids/berth/abc/pids.current'), '3\n');
    const procRoot = proc(42, '12:pids:/berth/abc\n9:memory:/berth/abc\n1:name=systemd:/\n0::/berth/abc\n');
    const cg = processCgroup(42, { root: cgroups, procRoot });
    expect(cg.mode).toBe('hybrid');
    expect(cg.paths.memory).toBe(join(cgroups, 'memory/berth/abc'));
    const s = cg.stats();
    expect(s.memory?.usage).toBe(249856);
    expect(s.memory?.limit).toBe(67108864);
    expect(s.pids?.current).toBe(3);
  });

  it('takes the cgroup2 path on a v2 host', () => {
    const cgroups = join(root, 'cg');
    fakeV2(cgroups, ['/user.slice/c9']);
    const procRoot = proc(7, '0::/user.slice/c9\n');
    expect(processCgroup(7, { root: cgroups, procRoot }).paths.unified).toBe(join(cgroups, 'user.slice/c9'));
  });

  it('refuses a process in the root cgroup and a pid that is gone, naming them', () => {
    const cgroups = join(root, 'cg');
    fakeV1(cgroups, []);
    const procRoot = proc(8, '9:memory:/\n12:pids:/\n');
    expect(() => processCgroup(8, { root: cgroups, procRoot })).toThrow('process 8 is in the root cgroup');
    expect(() => processCgroup(9, { root: cgroups, procRoot })).toThrow(`read ${join(procRoot, '9/cgroup')}: ENOENT`);
    expect(() => processCgroup(0, { root: cgroups, procRoot })).toThrow('0 is not a process id');
  });
});
