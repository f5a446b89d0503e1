/**
 * Credentials: setgroups(2), setresgid(2), setresuid(2) through glibc, whose
 * wrappers apply the change to every thread of the process (POSIX semantics
 * via the nptl setxid broadcast), which matters inside Node.
 */
import { check, fn } from './libc.ts';

export function setgroups(gids: readonly number[]): void {
  const f = fn<(n: number, list: number[]) => number>('setgroups', 'int setgroups(size_t size, const uint32_t *list)');
  check(f(gids.length, [...gids]), 'setgroups', gids.join(','));
}

export function setresgid(gid: number): void {
  const f = fn<(r: number, e: number, s: number) => number>('setresgid', 'int setresgid(uint32_t r, uint32_t e, uint32_t s)');
  check(f(gid, gid, gid), 'setresgid', String(gid));
}

export function setresuid(uid: number): void {
  const f = fn<(r: number, e: number, s: number) => number>('setresuid', 'int setresuid(uint32_t r, uint32_t e, uint32_t s)');
  check(f(uid, uid, uid), 'setresuid', String(uid));
}

export function sethostname(name: string): void {
  const f = fn<(n: string, l: number) => number>('sethostname', 'int sethostname(const char *name, size_t len)');
  check(f(name, Buffer.byteLength(name)), 'sethostname', name);
}

export function setdomainname(name: string): void {
  const f = fn<(n: string, l: number) => number>('setdomainname', 'int setdomainname(const char *name, size_t len)');
  check(f(name, Buffer.byteLength(name)), 'setdomainname', name);
}

export function setsid(): number {
  const f = fn<() => number>('setsid', 'int setsid(void)');
  return check(f(), 'setsid');
}
