/**
 * mount(8) option words from config.json's mounts[].options turned into
 * mount(2) flags, propagation flags and the filesystem's data string.
 */
import * as m from '@berth/sys';

const setFlags: Record<string, number> = {
  ro: m.MS_RDONLY, nosuid: m.MS_NOSUID, nodev: m.MS_NODEV, noexec: m.MS_NOEXEC, sync: m.MS_SYNCHRONOUS,
  remount: m.MS_REMOUNT, mand: m.MS_MANDLOCK, dirsync: m.MS_DIRSYNC, nosymfollow: m.MS_NOSYMFOLLOW,
  noatime: m.MS_NOATIME, nodiratime: m.MS_NODIRATIME, bind: m.MS_BIND, rbind: m.MS_BIND | m.MS_REC,
  relatime: m.MS_RELATIME, strictatime: m.MS_STRICTATIME, lazytime: m.MS_LAZYTIME, silent: m.MS_SILENT,
  iversion: m.MS_I_VERSION,
};

const clearFlags: Record<string, number> = {
  rw: m.MS_RDONLY, suid: m.MS_NOSUID, dev: m.MS_NODEV, exec: m.MS_NOEXEC, async: m.MS_SYNCHRONOUS,
  nomand: m.MS_MANDLOCK, atime: m.MS_NOATIME, diratime: m.MS_NODIRATIME, norelatime: m.MS_RELATIME,
  nostrictatime: m.MS_STRICTATIME, nolazytime: m.MS_LAZYTIME, loud: m.MS_SILENT, noiversion: m.MS_I_VERSION,
  defaults: 0,
};

export const propagationFlags: Record<string, number> = {
  private: m.MS_PRIVATE, rprivate: m.MS_PRIVATE | m.MS_REC, shared: m.MS_SHARED, rshared: m.MS_SHARED | m.MS_REC,
  slave: m.MS_SLAVE, rslave: m.MS_SLAVE | m.MS_REC, unbindable: m.MS_UNBINDABLE, runbindable: m.MS_UNBINDABLE | m.MS_REC,
};

export interface ParsedOptions { flags: number; propagation: number[]; data: string }

export function parseMountOptions(options: readonly string[] | undefined): ParsedOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const o of options ?? []) {
    if (o in setFlags) flags |= setFlags[o]!;
    else if (o in clearFlags) flags &= ~clearFlags[o]!;
    else if (o in propagationFlags) propagation.push(propagationFlags[o]!);
    else data.push(o);
  }
  return { flags, propagation, data: data.join(',') };
}

/** Every option word this runtime understands (for `features`). */
export const knownMountOptions = [...Object.keys(setFlags), ...Object.keys(clearFlags), ...Object.keys(propagationFlags)].sort();
