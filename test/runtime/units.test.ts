/**
 * The runtime's pure parts, without root: mount option words, symlink-safe
 * path resolution inside a rootfs, signal names, the sync channel framing, and
 * the parent side of global flags.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as sys from '@berth/sys';
import { parseMountOptions } from '../../tools/runtime/src/mount-options.ts';
import { secureJoin } from '../../tools/runtime/src/paths.ts';
import { parseSignal } from '../../tools/runtime/src/signals.ts';
import { LineReader } from '../../tools/runtime/src/messages.ts';
import { globals, parseGlobals } from '../../tools/runtime/src/globals.ts';

describe('mount options', () => {
  it('turns words into flags, propagation and data, later words winning', () => {
    const p = parseMountOptions(['nosuid', 'ro', 'rw', 'rbind', 'rslave', 'size=1m', 'mode=700', 'noexec']);
    expect(p.flags).toBe(sys.MS_NOSUID | sys.MS_BIND | sys.MS_REC | sys.MS_NOEXEC);
    expect(p.propagation).toEqual([sys.MS_SLAVE | sys.MS_REC]);
    expect(p.data).toBe('size=1m,mode=700');
  });
});

describe('secureJoin', () => {
  // Made in beforeAll, not while the file is collected: a run filtered
  // with -t collects this block without running its hooks.
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'berth-sj-'));
    mkdirSync(join(root, 'etc'));
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync('../../../../etc', join(root, 'rel'));
    symlinkSync('loop2', join(root, 'loop1'));
    symlinkSync('loop1', join(root, 'loop2'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('follows an absolute symlink with the rootfs as /', () => {
    expect(secureJoin(root, '/abs/passwd')).toBe(`${root}/etc/passwd`);
  });
  it('stops .. at the rootfs', () => {
    expect(secureJoin(root, '/rel/shadow')).toBe(`${root}/etc/shadow`);
    expect(secureJoin(root, '/../../x')).toBe(`${root}/x`);
  });
  it('keeps missing components and refuses symlink loops', () => {
    expect(secureJoin(root, '/new/dir')).toBe(`${root}/new/dir`);
    expect(() => secureJoin(root, '/loop1/x')).toThrow(/too many levels/);
  });
});

describe('signals', () => {
  it('accepts names with and without SIG and numbers, refuses the rest', () => {
    expect(parseSignal('KILL')).toBe(9);
    expect(parseSignal('SIGTERM')).toBe(15);
    expect(parseSignal('hup')).toBe(1);
    expect(parseSignal('10')).toBe(10);
    expect(() => parseSignal('NOPE')).toThrow(/invalid signal/);
    expect(() => parseSignal('99')).toThrow(/invalid signal/);
  });
});

describe('sync channel framing', () => {
  it('splits JSON lines across chunks and reports the end', async () => {
    const r = new LineReader<{ type: string }>();
    r.push('{"type":"Hel');
    r.push('lo"}\n{"type":"InitReady"}\n');
    expect(await r.next()).toEqual({ type: 'Hello' });
    expect(await r.next()).toEqual({ type: 'InitReady' });
    const pending = r.next();
    r.close();
    expect(await pending).toBeUndefined();
  });
});

describe('global flags', () => {
  it('are read before the subcommand, as runc reads them', () => {
    const rest = parseGlobals(['--root', '/tmp/x', '--log-format=json', '--systemd-cgroup', 'state', '--root', 'later', 'id']);
    expect(rest).toEqual(['state', '--root', 'later', 'id']);
    expect(globals.root).toBe('/tmp/x');
    expect(globals.logFormat).toBe('json');
    expect(globals.systemdCgroup).toBe(true);
  });
});
