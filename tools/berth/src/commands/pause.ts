import { readFileSync } from 'node:fs';
import { Command, Option } from '@berth/cli-kit';
import {
  EngineError, findRecord, listRecords, mustFindRecord, observedStatus, pauseContainer, unpauseContainer, type ContainerRecord,
} from '@berth/engine';
import { EngineCommand, eachTarget, shq } from '../base.ts';

/**
 * `berth pause` and `berth unpause` (podman-pause(1), podman-unpause(1)):
 * the OCI runtime's `pause` and `resume`, which freeze and thaw the
 * container's cgroup, so they work under berth-runtime, runc and crun alike.
 * Targets are names or ids as typed (printed back as typed), or with
 * --all / --latest / --cidfile the full ids, as podman prints them. Like
 * berth's other multi-container verbs, a failure does not stop the rest;
 * the exit status is the last error's (125).
 */
abstract class FreezeCommand extends EngineCommand {
  all = Option.Boolean('-a,--all', false, { description: 'Every container that can be acted on' });
  latest = Option.Boolean('-l,--latest', false, { description: 'The container created last' });
  cidfile = Option.Array('--cidfile', [], { description: 'Read the container id from this file (may repeat)' });
  containers = Option.Rest({ name: 'CONTAINER' });

  /** The runtime verb this stands for: pause or resume. */
  abstract readonly verb: 'pause' | 'resume';
  /** Which containers --all takes: the running ones for pause, the paused ones for unpause. */
  abstract readonly allState: 'running' | 'paused';
  abstract act(id: string): Promise<unknown>;

  /** What to act on, each with what to print for it. */
  targets(): Array<{ nameOrId: string; shown: string }> {
    const given = this.containers.length + this.cidfile.length;
    if (this.all && (given > 0 || this.latest)) throw new EngineError('E_USAGE', 'no arguments are needed with --all');
    if (this.latest && given > 0) throw new EngineError('E_USAGE', '--latest and containers cannot be used together');
    if (this.all) {
      return listRecords(this.env).filter((r) => observedStatus(this.env, r).status === this.allState).map((r) => ({ nameOrId: r.id, shown: r.id }));
    }
    if (this.latest) {
      const newest = listRecords(this.env).at(-1);
      if (!newest) throw new EngineError('E_NO_CONTAINER', 'no containers to act on: --latest found none');
      return [{ nameOrId: newest.id, shown: newest.id }];
    }
    if (given === 0) throw new EngineError('E_USAGE', 'you must provide at least one name or id');
    const fromFiles = this.cidfile.map((file) => {
      let id: string;
      try { id = readFileSync(file, 'utf8').trim(); } catch (err) {
        throw new EngineError('E_CIDFILE', `reading CIDFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (id === '') throw new EngineError('E_CIDFILE', `CIDFile ${file} is empty: it should hold a container id`);
      return { nameOrId: id, shown: id };
    });
    return [...this.containers.map((c) => ({ nameOrId: c, shown: c })), ...fromFiles];
  }

  override explainPipeline(): string {
    const what = this.verb === 'pause'
      ? 'the cgroup freezer: v1 freezer.state FROZEN, v2 cgroup.freeze 1'
      : 'thaw: v1 freezer.state THAWED, v2 cgroup.freeze 0';
    let targets: Array<{ nameOrId: string }>;
    try { targets = this.targets(); } catch { targets = this.containers.map((c) => ({ nameOrId: c })); }
    return targets.map(({ nameOrId }) => {
      const rec = findRecord(this.env, nameOrId);
      const rt = rec ? `${shq(rec.runtime)} --root ${shq(rec.runtimeRoot)}` : 'RUNTIME --root RUNTIME_ROOT';
      return `${rt} ${this.verb} ${shq(rec?.id ?? nameOrId)}   # ${what}`;
    }).join('\n') || `RUNTIME --root RUNTIME_ROOT ${this.verb} ID   # ${what}`;
  }

  async perform(): Promise<number | undefined> {
    const failure = await eachTarget(this.targets(), async (t) => {
      const rec: ContainerRecord = mustFindRecord(this.env, t.nameOrId);
      await this.act(rec.id);
      this.out(t.shown);
    });
    if (failure !== undefined) throw failure;
    return undefined;
  }
}

export class PauseCommand extends FreezeCommand {
  static override paths = [['pause'], ['container', 'pause']];
  static override usage = Command.Usage({
    description: 'Pause every process of running containers',
    details: `
      Freezes the container's cgroup through the OCI runtime's \`pause\` (cgroup v1 \`freezer.state\` FROZEN, v2 \`cgroup.freeze\` 1): its processes stop where they are and keep their memory, open files and connections. \`ps -a\` shows it Paused, \`inspect\` State.Status "paused"; \`exec\` is refused until \`unpause\`; \`stop\`, \`kill\` and \`rm -f\` still work (the signal is delivered as the container is thawed). A container that is not running, or already paused, is refused (exit 125).

      As an ordinary user pausing needs a cgroup of the container's own that the user may freeze: only a cgroup v2 host with a delegated cgroup gives one, so on a v1 or hybrid host it is refused, as podman refuses it.
    `,
    examples: [['Pause a container', '$0 pause web'], ['Pause every running container', '$0 pause --all']],
  });
  readonly verb = 'pause';
  readonly allState = 'running';
  act(id: string): Promise<unknown> { return pauseContainer(this.env, id); }
}

export class UnpauseCommand extends FreezeCommand {
  static override paths = [['unpause'], ['container', 'unpause']];
  static override usage = Command.Usage({
    description: 'Unpause paused containers',
    details: 'Thaws the container\'s cgroup through the OCI runtime\'s `resume`: its processes run on from where they were frozen. A container that is not paused is refused (exit 125).',
    examples: [['Unpause a container', '$0 unpause web'], ['Unpause every paused container', '$0 unpause --all']],
  });
  readonly verb = 'resume';
  readonly allState = 'paused';
  act(id: string): Promise<unknown> { return unpauseContainer(this.env, id); }
}
