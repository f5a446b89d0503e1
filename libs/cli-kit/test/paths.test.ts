import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makePrivateRoot } from '../src/paths.ts';

// The data and run roots of an ordinary user: private, tightened when an
// older berth (or a umask) left them readable, refused when somebody else
// made them first. The caller's uid is whoever runs the test (root in CI).
describe('makePrivateRoot', () => {
  const base = mkdtempSync(join(tmpdir(), 'berth-private-root-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('makes a missing root 0700', () => {
    const dir = join(base, 'new', 'berth');
    makePrivateRoot(dir);
    expect(mode(dir)).toBe(0o700);
  });

  it('tightens a root an older berth left 0755 to 0700, keeping what is in it', () => {
    const dir = join(base, 'old');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'kept'), 'x');
    makePrivateRoot(dir);
    expect(mode(dir)).toBe(0o700);
    expect(statSync(join(dir, 'kept')).size).toBe(1);
  });

  it('refuses a root that belongs to another user, naming its owner', () => {
    const dir = join(base, 'theirs');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const me = process.geteuid!();
    chownSync(dir, me + 4321, me + 4321);
    expect(() => makePrivateRoot(dir)).toThrow(`${dir}: belongs to uid ${me + 4321}, not to you (uid ${me})`);
    expect(mode(dir)).toBe(0o777);
  });

  it('refuses a file where the root should be', () => {
    const file = join(base, 'file');
    writeFileSync(file, '');
    expect(() => makePrivateRoot(file)).toThrow(`${file}: is not a directory`);
  });
});
