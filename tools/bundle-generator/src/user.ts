import { BerthError } from '@berth/cli-kit';
import type { User } from '@berth/oci-spec';
import { parseUserSpec } from './options.ts';

/**
 * Resolve a user spec (`name`, `uid`, `name:group`, `uid:gid`) through the
 * rootfs's own /etc/passwd and /etc/group, as podman does: names must exist
 * there, numeric ids need not; the supplementary groups are every group whose
 * member list names the user (group(5)); HOME comes from passwd.
 */
export interface ResolvedUser {
  user: User;
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').map((m) => m.trim()).filter((m) => m !== '') });
  }
  return out;
}

const ID_MAX = 0xfffffffe; // (uid_t)-1 means "no change" to the kernel

function numericId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= ID_MAX ? n : undefined;
}

/**
 * @param spec the -u value or the image's User ('' means root)
 * @param files the rootfs's /etc/passwd and /etc/group (undefined when absent)
 */
export function resolveUser(spec: string, files: { passwd?: string; group?: string }, flag = '-u/--user'): ResolvedUser {
  const { user: userPart, group: groupPart } = spec === '' ? { user: '0', group: undefined } : parseUserSpec(spec, flag);
  const passwd = parsePasswd(files.passwd);
  const groups = parseGroup(files.group);

  let uid: number;
  let gid: number;
  let name: string | undefined;
  let home = '/';
  const asNumber = numericId(userPart);
  const entry = asNumber === undefined ? passwd.find((p) => p.name === userPart) : passwd.find((p) => p.uid === asNumber);
  if (entry) {
    ({ uid, gid, name, home } = entry);
  } else if (asNumber !== undefined) {
    // A numeric uid the image does not know still runs, with gid 0, as in podman.
    uid = asNumber;
    gid = 0;
  } else {
    throw new BerthError('E_USER', `unable to find user ${userPart}: no matching entries in passwd file`);
  }

  if (groupPart !== undefined) {
    const g = numericId(groupPart);
    if (g !== undefined) gid = g;
    else {
      const ge = groups.find((x) => x.name === groupPart);
      if (!ge) throw new BerthError('E_USER', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = ge.gid;
    }
  }

  // Supplementary groups: the primary group first (so `id` shows it among the
  // groups, as it does on a login), then each group that lists the user.
  const additional = [gid];
  if (name !== undefined) for (const g of groups) if (g.members.includes(name) && !additional.includes(g.gid)) additional.push(g.gid);
  // runtime-spec's user.username is for Windows only; Linux gets ids.
  return { user: { uid, gid, additionalGids: additional }, home };
}
