import { Command, Option, log } from '@berth/cli-kit';
import {
  createVolume, EngineError, isRunning, listRecords, listVolumes, noSuchVolume, readVolume, reclaimVolumeLeftovers, removeVolume, volumePaths, volumeUsers,
  type EngineEnv, type VolumeRecord,
} from '@berth/engine';
import { EngineCommand, eachTarget, lifecycle, removalExit, shq } from '../base.ts';
import { confirm, isTemplate, renderTemplate, tabwriter } from '../format.ts';
import { combineFilters, danglingWanted, labelMatches, nameRegex, parseKeyValues } from '../filters.ts';

/**
 * `berth volume ...`: podman's named volumes (podman-volume(1)). A volume is
 * ROOT/volumes/NAME/_data, bind-mounted into the containers that name it
 * (`-v NAME:/dst`, `--mount type=volume,...`), and ROOT/volumes/NAME/volume.json
 * (@berth/engine's volume-store.ts). These verbs read and change only those
 * files and the container records; no stage binary is involved.
 */

/** podman's `volume inspect` document; the flags it omits when false are omitted here too. */
export function volumeDocument(env: EngineEnv, v: VolumeRecord): Record<string, unknown> {
  return {
    Name: v.name, Driver: v.driver, Mountpoint: volumePaths.data(env, v.name), CreatedAt: v.createdAt,
    Labels: v.labels, Scope: 'local', Options: v.options,
    ...(v.uid !== undefined ? { UID: v.uid } : {}), ...(v.gid !== undefined ? { GID: v.gid } : {}),
    ...(v.anonymous ? { Anonymous: true } : {}),
    // The local driver mounts nothing of its own: podman's count stays 0 for these.
    MountCount: 0,
    ...(v.needsCopyUp ? { NeedsCopyUp: true } : {}), ...(v.needsChown ? { NeedsChown: true } : {}),
  };
}

/** `--filter KEY=VALUE` of ls (and prune), combined as podman does (filters.ts). */
function volumeFilters(exprs: readonly string[], allowed: readonly string[]): (v: VolumeRecord, inUse: boolean) => boolean {
  return combineFilters<[VolumeRecord, boolean]>(exprs, allowed, 'volume', (key, value) => {
    switch (key) {
      case 'name': { const re = nameRegex(value); return (v) => re.test(v.name); }
      case 'label': return (v) => labelMatches(v.labels, value);
      case 'label!': return (v) => !labelMatches(v.labels, value);
      case 'driver': return (v) => v.driver === value;
      case 'scope': return () => value === 'local';
      case 'dangling': { const want = danglingWanted(value); return (_v, inUse) => !inUse === want; }
      default: throw new EngineError('E_USAGE', `${JSON.stringify(key)} is an invalid volume filter`);
    }
  });
}

/** The names of volumes some container record names. */
function volumesInUse(env: EngineEnv): Set<string> {
  const used = new Set<string>();
  for (const r of listRecords(env)) for (const m of r.mounts ?? []) if (m.type === 'volume' && m.name) used.add(m.name);
  return used;
}

const HEADERS: Record<string, string> = {
  name: 'VOLUME NAME', driver: 'DRIVER', mountpoint: 'MOUNTPOINT', scope: 'SCOPE', labels: 'LABELS', createdat: 'CREATED AT',
  options: 'OPTIONS', mountcount: 'MOUNT COUNT', needscopyup: 'NEEDS COPY UP', needschown: 'NEEDS CHOWN', anonymous: 'ANONYMOUS',
};

export class VolumeCreateCommand extends EngineCommand {
  static override paths = [['volume', 'create']];
  static override explain = `
mkdir ROOT/volumes/.new-XXXX/_data; write ROOT/volumes/.new-XXXX/volume.json   # built out of sight
mv ROOT/volumes/.new-XXXX ROOT/volumes/NAME                                    # rename(2): whole or not at all
`;
  static override usage = Command.Usage({
    description: 'Create a named volume',
    details: `
      A directory, ROOT/volumes/NAME/_data, that containers get with \`-v NAME:/dst\` and that outlives them. Without NAME it gets 64 random hex digits, as podman gives. Names are podman's: [a-zA-Z0-9][a-zA-Z0-9_.-]*. The first container that mounts the volume copies the image's files at the mount point into it (unless the volume has files already) and gives it the owner and mode of the image's directory there.

      The only driver is \`local\`, and its only options are \`-o o=uid=N,gid=N\`, the directory's owner; mount options (type=tmpfs, device=, o=bind, size=) are refused.
    `,
    examples: [['A named volume with a label', '$0 volume create --label app=web webdata'], ['Owned by uid 1000', '$0 volume create -o o=uid=1000,gid=1000 home']],
  });
  driver = Option.String('--driver,-d', 'local', { description: 'Volume driver: local (the only one)' });
  label = Option.Array('-l,--label', [], { description: 'Set a label KEY[=VALUE]' });
  opt = Option.Array('-o,--opt', [], { description: 'Driver option: o=uid=N,gid=N' });
  name = Option.String({ name: 'NAME', required: false });

  async perform(): Promise<number | undefined> {
    if (this.driver !== 'local') throw new EngineError('E_VOLUME_DRIVER', `--driver ${this.driver}: berth has only the local driver (directories under ${volumePaths.root(this.env)}); no volume plugins`);
    const v = await createVolume(this.env, { ...(this.name !== undefined ? { name: this.name } : {}), labels: parseKeyValues(this.label, '--label'), opts: this.opt });
    this.out(v.name);
    return undefined;
  }
}

export class VolumeLsCommand extends EngineCommand {
  static override paths = [['volume', 'ls'], ['volume', 'list']];
  static override explain = 'cat ROOT/volumes/*/volume.json   # and ROOT/containers/*/container.json for dangling=';
  static override usage = Command.Usage({
    description: 'List volumes',
    details: 'Sorted by name. Filters: name=REGEX, label=KEY[=VALUE], dangling=true|false (used by no container, whatever its state), driver=local. The same key twice matches either value; different keys must all match.',
    examples: [['Only names', '$0 volume ls -q'], ['Unused volumes', '$0 volume ls --filter dangling=true'], ['A template', '$0 volume ls --format "{{.Name}} {{.Mountpoint}}"']],
  });
  filter = Option.Array('-f,--filter', [], { description: 'name=, label=, dangling=, driver=' });
  format = Option.String('--format', { description: 'json, or a Go template such as {{.Name}} (table {{.Name}} adds headers)' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only volume names' });
  noHeading = Option.Boolean('--noheading,-n', false, { description: 'No header line' });

  async perform(): Promise<number | undefined> {
    const match = volumeFilters(this.filter, ['name', 'label', 'dangling', 'driver', 'scope']);
    const used = this.filter.some((f) => f.startsWith('dangling=')) ? volumesInUse(this.env) : new Set<string>();
    const vols = listVolumes(this.env).filter((v) => match(v, used.has(v.name)));
    const docs = vols.map((v) => volumeDocument(this.env, v));
    if (this.format === 'json') { this.out(JSON.stringify(docs, null, 2)); return undefined; }
    if (this.quiet) { if (vols.length) this.out(vols.map((v) => v.name).join('\n')); return undefined; }
    if (this.format !== undefined && this.format !== 'table') {
      const table = /^table\s+/.test(this.format);
      const template = this.format.replace(/^table\s+/, '');
      if (!isTemplate(template)) throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and Go templates such as {{.Name}}`);
      const lines = docs.map((d) => renderTemplate(template, d));
      if (table && !this.noHeading) {
        const header = template.replace(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, n: string) => HEADERS[n.toLowerCase()] ?? n.toUpperCase());
        lines.unshift(header.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
      }
      if (lines.length === 0) return undefined;
      if (lines.some((l) => l.includes('\t'))) this.out(tabwriter(lines.map((l) => l.split('\t'))));
      else this.out(lines.join('\n'));
      return undefined;
    }
    // podman prints nothing at all, not even the header, when there is no volume.
    if (vols.length === 0) return undefined;
    const rows = vols.map((v) => [v.driver, v.name]);
    this.out(tabwriter(this.noHeading ? rows : [['DRIVER', 'VOLUME NAME'], ...rows]));
    return undefined;
  }
}

export class VolumeInspectCommand extends EngineCommand {
  static override paths = [['volume', 'inspect']];
  static override explain = 'cat ROOT/volumes/NAME/volume.json';
  static override usage = Command.Usage({
    description: 'Show volumes as JSON (an array, as podman prints it)',
    details: 'podman\'s keys: Name, Driver (local), Mountpoint (ROOT/volumes/NAME/_data), CreatedAt, Labels, Scope (local), Options, UID/GID when given at create, Anonymous when made by `-v /dst`, MountCount, and NeedsCopyUp/NeedsChown while the first container has still to fill the volume / give it an owner.',
    examples: [['One field', '$0 volume inspect --format "{{.Mountpoint}}" webdata']],
  });
  all = Option.Boolean('-a,--all', false, { description: 'Every volume' });
  format = Option.String('-f,--format', { description: 'json (default), or a Go template such as {{.Mountpoint}}' });
  names = Option.Rest({ name: 'VOLUME' });

  async perform(): Promise<number | undefined> {
    if (this.all === (this.names.length > 0)) throw new EngineError('E_USAGE', 'provide one or more volume names or --all');
    if (this.format !== undefined && this.format !== 'json' && !isTemplate(this.format)) throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and Go templates such as {{.Mountpoint}}`);
    const found: VolumeRecord[] = [];
    let missing: string | undefined;
    for (const n of this.all ? listVolumes(this.env).map((v) => v.name) : this.names) {
      const v = readVolume(this.env, n);
      if (v) found.push(v);
      else if (missing === undefined) missing = n;
    }
    const docs = found.map((v) => volumeDocument(this.env, v));
    if (this.format === undefined || this.format === 'json') this.out(JSON.stringify(docs, null, 2));
    else for (const d of docs) this.out(renderTemplate(this.format, d));
    if (missing !== undefined) throw new EngineError('E_NO_VOLUME', `inspecting object: no such volume ${missing}`);
    return undefined;
  }
}

export class VolumeRmCommand extends EngineCommand {
  static override paths = [['volume', 'rm'], ['volume', 'remove']];
  static override usage = Command.Usage({
    description: 'Remove volumes',
    details: `
      A volume some container uses (running, created or exited: podman counts them all) is refused, exit 2; -f first removes those containers (stopping a running one with its stop signal, then SIGKILL after -t seconds), as podman does, then the volume. A missing volume exits 1. Each volume removed is printed; a failure does not stop the others.

      The volume is renamed out of sight first, then its files deleted without following any symlink a container left in it, and without crossing into another filesystem.
    `,
    examples: [['Two volumes', '$0 volume rm data1 data2'], ['In use: remove the containers too', '$0 volume rm -f webdata']],
  });
  all = Option.Boolean('-a,--all', false, { description: 'Every volume' });
  force = Option.Boolean('-f,--force', false, { description: 'Remove the containers that use the volume first' });
  time = Option.String('-t,--time', { description: 'Seconds to wait for a running container to stop before SIGKILL (default: its stop timeout)' });
  names = Option.Rest({ name: 'VOLUME' });

  override explainPipeline(): string {
    const names = this.all ? ['NAME'] : this.names;
    return names.map((n) => `grep -l '"name": "${n}"' ROOT/containers/*/container.json   # in use? then refused, or (-f) berth rm -f each\nmv ${shq(volumePaths.root(this.env))}/${shq(n)} ${shq(volumePaths.root(this.env))}/.trash-XXXX && rm -rf --one-file-system ${shq(volumePaths.root(this.env))}/.trash-XXXX`).join('\n');
  }

  async perform(): Promise<number | undefined> {
    if (this.all === (this.names.length > 0)) throw new EngineError('E_USAGE', 'choose either one or more volumes or all');
    const timeout = this.time === undefined ? undefined : Number(this.time);
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 0)) throw new EngineError('E_USAGE', `-t ${this.time}: not a number of seconds`);
    const failure = await eachTarget(this.all ? listVolumes(this.env).map((v) => v.name) : this.names, async (name) => {
      if (!readVolume(this.env, name)) throw noSuchVolume(name);
      if (this.force) await this.removeUsers(name, timeout);
      await removeVolume(this.env, name);
      this.out(name);
    });
    return removalExit(failure, { missing: 'E_NO_VOLUME', inUse: 'E_VOLUME_IN_USE' });
  }

  private async removeUsers(name: string, timeout: number | undefined): Promise<void> {
    const engine = await lifecycle();
    for (const rec of volumeUsers(this.env, name)) {
      if (isRunning(rec)) await engine.stopContainer(this.env, rec.id, timeout, this.exitCommand(rec.id));
      await engine.removeContainer(this.env, rec.id, { force: true });
    }
  }
}

export class VolumePruneCommand extends EngineCommand {
  static override paths = [['volume', 'prune']];
  static override explain = '# every volume no container record names: berth volume rm NAME for each';
  static override usage = Command.Usage({
    description: 'Remove every volume no container uses',
    details: 'A container in any state (created, running, exited) keeps its volumes. Asks first, as podman does, unless -f; the removed names are printed. Filters: label=KEY[=VALUE], label!=KEY[=VALUE].',
    examples: [['Without asking', '$0 volume prune -f'], ['Only some', '$0 volume prune -f --filter label=tmp']],
  });
  force = Option.Boolean('-f,--force', false, { description: 'Do not ask for confirmation' });
  filter = Option.Array('--filter', [], { description: 'label=KEY[=VALUE], label!=KEY[=VALUE]' });

  async perform(): Promise<number | undefined> {
    const match = volumeFilters(this.filter, ['label', 'label!']);
    const used = volumesInUse(this.env);
    const unused = listVolumes(this.env).filter((v) => !used.has(v.name) && match(v, false));
    if (!this.force) {
      process.stderr.write('WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:\n');
      process.stderr.write(unused.map((v) => `${v.name}\n`).join(''));
      if (!(await confirm('Are you sure you want to continue? [y/N] '))) return undefined;
    }
    // What a killed berth left half-made or half-removed goes too (printed nowhere: it was never a volume).
    for (const n of await reclaimVolumeLeftovers(this.env)) log.debug(`volume prune: removed the leftover ${n}`);
    const failure = await eachTarget(unused, async (v) => {
      try {
        // Checked again under the lock: a container made since the list keeps its volume.
        await removeVolume(this.env, v.name);
        this.out(v.name);
      } catch (err) {
        if ((err as EngineError).code !== 'E_VOLUME_IN_USE' && (err as EngineError).code !== 'E_NO_VOLUME') throw err;
      }
    });
    if (failure !== undefined) throw failure;
    return undefined;
  }
}

export class VolumeExistsCommand extends EngineCommand {
  static override paths = [['volume', 'exists']];
  static override explain = 'test -f ROOT/volumes/NAME/volume.json';
  static override usage = Command.Usage({
    description: 'Exit 0 when the volume exists, 1 when it does not',
    examples: [['In a script', '$0 volume exists webdata || $0 volume create webdata']],
  });
  name = Option.String({ name: 'VOLUME' });
  async perform(): Promise<number | undefined> {
    return readVolume(this.env, this.name) ? 0 : 1;
  }
}
