import { Command, Option } from '@berth/cli-kit';
import { EngineError, observedStatus, type ContainerRecord, type EngineEnv } from '@berth/engine';
import { EngineCommand } from '../base.ts';
import { ago, humanDuration, isTemplate, renderTemplate, table, truncate } from '../format.ts';
import { portColumn } from './port.ts';
import { labelMatches } from '../filters.ts';

export function statusText(env: EngineEnv, rec: ContainerRecord): string {
  const s = observedStatus(env, rec);
  if (s.status === 'running') return `Up ${humanDuration(Date.now() - Date.parse(rec.state.startedAt ?? rec.created))}`;
  if (s.status === 'created') return 'Created';
  if (s.status === 'paused') return 'Paused';
  return `Exited (${s.exitCode ?? -1}) ${ago(rec.state.finishedAt ?? rec.state.startedAt ?? rec.created)}`;
}

/** podman ps --filter keys: name, id, status, label, pod, ancestor, exited, network. `networks`: the pods on each network= value. */
function psFilter(expr: string, networks: Map<string, Set<string>>): (env: EngineEnv, r: ContainerRecord) => boolean {
  const i = expr.indexOf('=');
  if (i < 0) throw new EngineError('E_USAGE', `invalid filter "${expr}": filters are KEY=VALUE`);
  const key = expr.slice(0, i);
  const value = expr.slice(i + 1);
  switch (key) {
    case 'name': return (_e, r) => new RegExp(value).test(r.name);
    case 'id': return (_e, r) => r.id.startsWith(value);
    case 'status': return (e, r) => observedStatus(e, r).status === value;
    case 'pod': return (_e, r) => r.pod !== undefined && (r.pod.name === value || r.pod.id.startsWith(value));
    case 'ancestor': return (_e, r) => r.image.reference === value || (r.image.reference ?? '').endsWith(`/${value}`) || (r.image.reference ?? '').endsWith(`/${value}:latest`) || r.image.id.startsWith(value);
    case 'label': return (_e, r) => labelMatches(r.labels, value);
    case 'exited': return (e, r) => { const s = observedStatus(e, r); return s.status === 'exited' && String(s.exitCode) === value; };
    case 'network': return (_e, r) => r.pod !== undefined && (networks.get(value)?.has(r.pod.id) ?? false);
    default: throw new EngineError('E_USAGE', `invalid filter "${expr}": unknown key ${key} (name, id, status, pod, ancestor, label, exited, network)`);
  }
}

export class PsCommand extends EngineCommand {
  static override paths = [['ps'], ['container', 'list'], ['container', 'ls']];
  static override explain = `
# berth ps reads records, never asks a runtime:
cat ROOT/containers/*/container.json       # name, image, command, state, exit code
cat /proc/PID/stat                         # field 22 (start time) proves the init is still the container's
cat RUNROOT/exits/ID                       # the exit code conmon wrote, before cleanup records it
`;
  static override usage = Command.Usage({
    description: 'List containers',
    details: 'Reads the records in ROOT/containers; a running container\'s liveness is its init pid (with its start time), so no runtime is asked. After the run root is wiped (a reboot), -a still lists every container.',
    examples: [['Every container, as JSON', '$0 ps -a --format json'], ['Only ids of a pod', '$0 ps -q --filter pod=wp_pod']],
  });
  all = Option.Boolean('-a,--all', false, { description: 'Show all containers, not only running ones' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only ids' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Do not truncate ids and commands' });
  filter = Option.Array('-f,--filter', [], { description: 'name=, id=, status=, pod=, ancestor=, label=, exited=, network=' });
  format = Option.String('--format', { description: 'json, table (default), or a Go template such as {{.ID}} {{.Names}}' });
  latest = Option.Boolean('-l,--latest', false, { description: 'Only the newest container' });

  async perform(): Promise<number | undefined> {
    const { listRecords } = await import('@berth/engine');
    // network=NAME|ID: the pods on that network, read only when asked (ps otherwise reads the records alone).
    const networks = new Map<string, Set<string>>();
    for (const f of this.filter.filter((x) => x.startsWith('network='))) {
      const pod = await import('@berth/pod');
      const value = f.slice('network='.length);
      const name = pod.findStoredNetwork(value)?.info.name ?? value;
      networks.set(value, new Set((await pod.podsOnNetwork(name, { runRoot: this.env.runRoot })).map((p) => p.id)));
    }
    const filters = this.filter.map((f) => psFilter(f, networks));
    let recs = listRecords(this.env).filter((r) => filters.every((f) => f(this.env, r)));
    if (!this.all && !this.filter.some((f) => f.startsWith('status=') || f.startsWith('exited='))) recs = recs.filter((r) => observedStatus(this.env, r).status === 'running');
    if (this.latest) recs = recs.slice(-1);
    if (this.format === 'json' || (this.format !== undefined && isTemplate(this.format))) {
      const docs = recs.map((r) => {
        const s = observedStatus(this.env, r);
        return {
          Id: r.id, Names: [r.name], Image: r.image.reference ?? r.image.id, ImageID: r.image.id, Command: r.command,
          Created: Math.floor(Date.parse(r.created) / 1000), CreatedAt: r.created, State: s.status, Status: statusText(this.env, r),
          ExitCode: s.exitCode ?? 0, Exited: s.status === 'exited', Pid: s.status === 'running' || s.status === 'paused' ? r.state.pid ?? 0 : 0,
          Pod: r.pod?.id ?? '', PodName: r.pod?.name ?? '', Ports: r.ports, Labels: r.labels, AutoRemove: r.autoRemove,
          StartedAt: r.state.startedAt ? Math.floor(Date.parse(r.state.startedAt) / 1000) : 0, Restarts: r.state.restartCount,
          // The names podman's ps templates use beside the JSON keys.
          ID: this.noTrunc ? r.id : r.id.slice(0, 12), CreatedHuman: ago(r.created),
        };
      });
      if (this.format === 'json') this.out(JSON.stringify(docs, null, 2));
      else for (const d of docs) this.out(renderTemplate(this.format!, d));
      return undefined;
    }
    if (this.format !== undefined && this.format !== 'table') throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and table`);
    const id = (r: ContainerRecord) => (this.noTrunc ? r.id : r.id.slice(0, 12));
    if (this.quiet) { this.out(recs.map(id).join('\n')); return undefined; }
    const rows = recs.map((r) => [
      id(r), r.image.reference ?? r.image.id.slice(0, 12), this.noTrunc ? r.command.join(' ') : truncate(r.command.join(' '), 20),
      ago(r.created), statusText(this.env, r), r.ports.map(portColumn).join(', '), r.name,
    ]);
    this.out(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], rows));
    return undefined;
  }
}
