import { Command, Option, inBerthUserNamespace } from '@berth/cli-kit';
import {
  EngineError, findRecord, isRunning, mustFindRecord, noSuchContainer, paths,
     listRecords, signalNumber, type StorageRequest,
} from '@berth/engine';
import { EngineCommand, eachTarget, lifecycle, shq } from '../base.ts';

/** Verbs over one or more containers by name, id or id prefix; podman prints each as typed. */
abstract class ContainersCommand extends EngineCommand {
  all = Option.Boolean('-a,--all', false, { description: 'Every container' });
  containers = Option.Rest({ name: 'CONTAINER' });

  targets(): string[] {
    if (this.all) return listRecords(this.env).map((r) => r.id);
    if (this.containers.length === 0) throw new EngineError('E_USAGE', `you must provide at least one name or id`);
    return this.containers;
  }

  /** Run `fn` for each target; like podman, go on after a failure and exit with the last error. */
  async each(fn: (nameOrId: string) => Promise<void>): Promise<number | undefined> {
    const failure = await eachTarget(this.targets(), async (t) => {
      await fn(t);
      this.out(t);
    });
    if (failure !== undefined) throw failure;
    return undefined;
  }

  rt(id: string): string {
    const rec = findRecord(this.env, id);
    return rec ? `${shq(rec.runtime)} --root ${shq(rec.runtimeRoot)}` : 'RUNTIME --root RUNTIME_ROOT';
  }
}

export class StartCommand extends ContainersCommand {
  static override paths = [['start']];
  static override usage = Command.Usage({ description: 'Start created or exited containers under their monitor' });
  override explainPipeline(): string {
    return this.containers.map((c) => `conmon ... -r RUNTIME -b BUNDLE ${shq(c)}   # runs \`RUNTIME create\`, holds stdio and the exit code\n${this.rt(c)} start ${shq(c)}`).join('\n');
  }
  async perform(): Promise<number | undefined> {
    return this.each(async (t) => { const rec = mustFindRecord(this.env, t); await (await lifecycle()).startContainer(this.env, rec.id, this.exitCommand(rec.id)); });
  }
}

export class StopCommand extends ContainersCommand {
  static override paths = [['stop']];
  static override usage = Command.Usage({
    description: 'Stop containers: the stop signal, then SIGKILL after the timeout',
    details: 'Sends the image\'s StopSignal (SIGTERM by default), waits up to -t seconds (default 10), then SIGKILL. A stopped container is not restarted by --restart. A missing container exits 125.',
    examples: [['Stop with a 2-second grace period', '$0 stop -t 2 web']],
  });
  time = Option.String('-t,--time', { description: 'Seconds to wait before SIGKILL (default: the container\'s stop timeout, 10)' });
  ignore = Option.Boolean('-i,--ignore', false, { description: 'Ignore missing containers' });
  override explainPipeline(): string {
    return this.containers.map((c) => `${this.rt(c)} kill ${shq(c)} 15   # the stop signal\n# ...wait ${this.time ?? 10}s for the init to exit, then:\n${this.rt(c)} kill ${shq(c)} 9\n${this.rt(c)} delete --force ${shq(c)}`).join('\n');
  }
  async perform(): Promise<number | undefined> {
    const timeout = this.time === undefined ? undefined : Number(this.time);
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 0)) throw new EngineError('E_USAGE', `-t ${this.time}: not a number of seconds`);
    return this.each(async (t) => {
      const rec = findRecord(this.env, t);
      if (!rec) { if (this.ignore) return; throw noSuchContainer(t); }
      await (await lifecycle()).stopContainer(this.env, rec.id, timeout, this.exitCommand(rec.id));
    });
  }
}

export class KillCommand extends ContainersCommand {
  static override paths = [['kill']];
  static override usage = Command.Usage({ description: 'Send a signal to containers (default SIGKILL)' });
  signal = Option.String('-s,--signal', 'SIGKILL', { description: 'Signal name or number' });
  override explainPipeline(): string {
    return this.containers.map((c) => `${this.rt(c)} kill ${shq(c)} ${signalNumber(this.signal)}`).join('\n');
  }
  async perform(): Promise<number | undefined> {
    signalNumber(this.signal);
    return this.each(async (t) => { const rec = mustFindRecord(this.env, t); await (await lifecycle()).killContainer(this.env, rec.id, this.signal); });
  }
}

export class RestartCommand extends ContainersCommand {
  static override paths = [['restart']];
  static override usage = Command.Usage({ description: 'Stop and start containers' });
  time = Option.String('-t,--time', { description: 'Seconds to wait before SIGKILL' });
  async perform(): Promise<number | undefined> {
    const timeout = this.time === undefined ? undefined : Number(this.time);
    return this.each(async (t) => {
      const rec = mustFindRecord(this.env, t);
      await (await lifecycle()).stopContainer(this.env, rec.id, timeout, this.exitCommand(rec.id));
      if (findRecord(this.env, rec.id)) await (await lifecycle()).startContainer(this.env, rec.id, this.exitCommand(rec.id));
    });
  }
}

export class RmCommand extends ContainersCommand {
  static override paths = [['rm'], ['container', 'rm']];
  static override usage = Command.Usage({
    description: 'Remove containers',
    details: 'Deletes the runtime state, unmounts and removes the container\'s snapshot, leaves its pod and removes its record and log. A running container needs -f (it is killed). A missing container exits 125 (-i ignores it).',
    examples: [['Remove a stopped container', '$0 rm mypress'], ['Kill and remove', '$0 rm -f mypress']],
  });
  force = Option.Boolean('-f,--force', false, { description: 'Kill a running container first' });
  ignore = Option.Boolean('-i,--ignore', false, { description: 'Ignore missing containers' });
  volumes = Option.Boolean('-v,--volumes', false, { description: 'Remove the container\'s anonymous volumes too (a --rm container\'s always go)' });
  override explainPipeline(): string {
    return this.containers.map((c) => `${this.rt(c)} delete --force ${shq(c)}\numount -R ${shq(paths.bundle(this.env, findRecord(this.env, c)?.id ?? c))}/rootfs\nberth-store --root ${shq(this.env.dataRoot)} remove ${shq(findRecord(this.env, c)?.id ?? c)}`).join('\n');
  }
  async perform(): Promise<number | undefined> {
    return this.each(async (t) => {
      const rec = findRecord(this.env, t);
      if (!rec) { if (this.ignore) return; throw noSuchContainer(t); }
      await (await lifecycle()).removeContainer(this.env, rec.id, { force: this.force, ...(this.volumes ? { volumes: true } : {}) });
    });
  }
}

export class WaitCommand extends EngineCommand {
  static override paths = [['wait']];
  static override explain = `
# wait until RUNROOT/exits/ID exists (conmon writes it when the init exits), then:
cat RUNROOT/exits/ID
`;
  static override usage = Command.Usage({ description: 'Wait for containers to exit and print their exit codes' });
  containers = Option.Rest({ name: 'CONTAINER', required: 1 });
  async perform(): Promise<number | undefined> {
    for (const t of this.containers) {
      const rec = mustFindRecord(this.env, t);
      this.out(String(await (await lifecycle()).waitContainer(this.env, rec.id, this.exitCommand(rec.id))));
    }
    return undefined;
  }
}

/** The monitor's exit command (hidden): record the exit, restart or remove. */
export class CleanupCommand extends EngineCommand {
  static override paths = [['container', 'cleanup']];
  // No usage: hidden from `berth --help`; the monitor runs it when a container exits.
  static override usage = undefined;
  container = Option.String({ name: 'CONTAINER' });
  async perform(): Promise<number | undefined> {
    const rec = findRecord(this.env, this.container);
    if (!rec) return undefined;
    // The monitor runs this right as the init exits: the record may still say running for a moment.
    if (isRunning(rec)) await new Promise((r) => setTimeout(r, 20));
    await (await lifecycle()).cleanupContainer(this.env, rec.id, this.exitCommand(rec.id));
    return undefined;
  }
}

/**
 * A storage step of a rootless berth (hidden): @berth/engine runs it as
 * `unshare ... berth container storage -` inside the user's namespace, where
 * layers can be unpacked with the image's owners and snapshots removed.
 * Reads the step as JSON on stdin, prints its result as JSON.
 */
export class StorageCommand extends EngineCommand {
  static override paths = [['container', 'storage']];
  static override usage = undefined;
  input = Option.String({ name: '-' });
  async perform(): Promise<number | undefined> {
    if (this.input !== '-') throw new EngineError('E_USAGE', 'container storage reads its request from stdin: pass -');
    if (!inBerthUserNamespace()) throw new EngineError('E_ROOTLESS', 'container storage runs only inside the user namespace berth makes for it');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as StorageRequest;
    this.out(JSON.stringify(await (await lifecycle()).runStorageRequest(this.env, request)));
    return undefined;
  }
}
