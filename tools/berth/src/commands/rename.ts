import { Command, Option } from '@berth/cli-kit';
import { findRecord, mustFindRecord, paths, renameContainer } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * `berth rename CONTAINER NAME` (podman-rename(1)): a new name for a
 * running, paused, created or exited container. The name is only in the
 * container's record, rewritten atomically under the names lock (see
 * @berth/engine's rename.ts), so every verb finds the container by the new
 * name at once and by the old one no more. Prints nothing, as podman.
 */
export class RenameCommand extends EngineCommand {
  static override paths = [['rename'], ['container', 'rename']];
  static override usage = Command.Usage({
    description: 'Rename a container',
    details: `
      CONTAINER is a name, an id or a unique id prefix. NAME follows podman's rule, [a-zA-Z0-9][a-zA-Z0-9_.-]*, and must not be another container's name (exit 125 with the container that has it). Running containers are renamed as they run: the runtime and the monitor know a container by its id. Renaming a container to the name it has is no change and no error.
    `,
    examples: [['Rename a container', '$0 rename brave_bell web'], ['By id prefix', '$0 rename 3f2a9c web-old']],
  });
  container = Option.String({ name: 'CONTAINER' });
  newName = Option.String({ name: 'NAME' });

  override explainPipeline(): string {
    const id = findRecord(this.env, this.container)?.id ?? 'ID';
    return [
      `# under ${shq(paths.namesLock(this.env))} (the lock create --name takes): no other container may be named ${shq(this.newName)}, then`,
      `# ${shq(paths.record(this.env, id))} is rewritten with "name": ${JSON.stringify(this.newName)} (temp file, fsync, rename)`,
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    const rec = mustFindRecord(this.env, this.container);
    await renameContainer(this.env, rec.id, this.newName);
    return undefined;
  }
}
