import { readFile } from 'node:fs/promises';
import { BerthError } from '@berth/cli-kit';
import { resolveInRoot } from './paths.ts';

/**
 * USER and COPY --chown resolve names through the image's own /etc/passwd
 * and /etc/group (passwd(5), group(5)), as buildah does: a name must exist
 * there, a number need not. A user without a group takes its passwd gid.
 */
export interface ResolvedUser { uid: number; gid: number; home: string; additionalGids: number[] }

async function readRootFile(rootfs: string, path: string): Promise<string> {
  try {
    return await readFile(await resolveInRoot(rootfs, path), 'utf8');
  } catch {
    return '';
  }
}

function table(text: string): string[][] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.split(':'));
}

export async function resolveUser(rootfs: string, spec: string, where: string): Promise<ResolvedUser> {
  const [userPart, groupPart] = spec.split(':', 2) as [string, string | undefined];
  const passwd = table(await readRootFile(rootfs, '/etc/passwd'));
  const groups = table(await readRootFile(rootfs, '/etc/group'));
  let uid: number;
  let gid: number | undefined;
  let home = '/';
  let name: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const entry = passwd.find((f) => f[2] === userPart);
    if (entry) { gid = Number(entry[3]); home = entry[5] || '/'; name = entry[0]; }
  } else {
    const entry = passwd.find((f) => f[0] === userPart);
    if (!entry) throw new BerthError('E_USER', `${where}: user "${userPart}" is not in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
    home = entry[5] || '/';
    name = userPart;
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((f) => f[0] === groupPart);
      if (!g) throw new BerthError('E_USER', `${where}: group "${groupPart}" is not in the image's /etc/group`);
      gid = Number(g[2]);
    }
  }
  const additionalGids = name === undefined ? [] : groups.filter((f) => (f[3] ?? '').split(',').includes(name!)).map((f) => Number(f[2]));
  return { uid, gid: gid ?? 0, home, additionalGids };
}
