import { withFileLock } from '@berth/content';
import { EngineError, noSuchContainer } from './errors.ts';
import { paths, type EngineEnv } from './paths.ts';
import { listRecords, readRecord, saveRecord, validateName, withContainerLock, type ContainerRecord } from './records.ts';

/**
 * `rename`: a container's name lives in one place, its record (`ps`,
 * `inspect`, `logs`, `exec`, `stop` all find a container by scanning the
 * records; there is no separate name index to keep in step). So a rename is
 * one atomic rewrite of container.json (temp, fsync, rename), made under
 * the names lock, the same lock `create --name` reserves a name under, so a
 * concurrent create cannot take the new name between the check and the
 * write; and under the container's own lock, so a monitor's cleanup writing
 * the record at the same moment cannot put the old name back. A running
 * container is renamed too: neither the runtime nor conmon looks a
 * container up by name (both know it by id). Container names are berth's
 * own namespace; pods have theirs (berth-pod), as berth's create checks.
 */
export async function renameContainer(env: EngineEnv, id: string, newName: string): Promise<ContainerRecord> {
  validateName(newName);
  // The container's lock first, the names lock inside it: the names lock (which every create --name
  // needs) is then never held while waiting for a container lock a long cp or export may hold.
  return withContainerLock(env, id, () => withFileLock(paths.namesLock(env), async () => {
    const rec = readRecord(env, id);
    if (!rec) throw noSuchContainer(id);
    // podman: renaming to the name it already has is no change, and no error.
    if (rec.name === newName) return rec;
    const clash = listRecords(env).find((r) => r.name === newName && r.id !== rec.id);
    if (clash) {
      throw new EngineError('E_NAME_IN_USE', `renaming container ${rec.id}: name ${newName} already in use by container ${clash.id}; pick another name, or rename or remove that container first: container already exists`);
    }
    rec.name = newName;
    await saveRecord(env, rec);
    return rec;
  }));
}
