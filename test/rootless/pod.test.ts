import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeUser, runAs, type TestUser } from './users.ts';

// A rootless pod with a private network is refused with the reason spelled
// out: the device and its permissions, and which user-mode network exists.
describe('rootless berth-pod', () => {
  let user: TestUser;
  beforeAll(() => { user = makeUser(`brp${process.pid.toString(36)}`, { start: 400000, count: 65536 }); });
  afterAll(() => user?.remove());

  it('names /dev/net/tun and the user-mode network when an ordinary user asks for a bridged pod', () => {
    const r = runAs(user, 'berth-pod', ['create', '--name', 'rl']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('creating a pod needs root');
    expect(r.stderr).toMatch(/\/dev\/net\/tun (cannot be opened by this user \(mode \d{4}, owner uid \d+, gid \d+\)|is usable|does not exist)/);
    expect(r.stderr).toMatch(/slirp4netns|pasta/);
  });

  it('without a network it says what does work rootless', () => {
    const r = runAs(user, 'berth-pod', ['create', '--name', 'rl', '--network', 'none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('berth-bundle --network none|host');
  });
});
