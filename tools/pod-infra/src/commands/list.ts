import { Command, Option, t } from '@berth/cli-kit';
import { listPods, type PodInspect } from '@berth/pod';
import { PodCommand } from './common.ts';

export class ListCommand extends PodCommand {
  static override paths = [['list'], ['ls'], ['ps']];

  static override usage = Command.Usage({
    description: 'List pods (a table as podman pod list shows it, or JSON)',
    details: 'Columns: POD ID, NAME, STATUS, INFRA ID, # OF CONTAINERS. STATUS follows podman: Created (no containers), Running (all running), Degraded (some), Exited (none). berth pods have no infra container, so INFRA ID is empty. `--format json` prints `{"kind":"podList","pods":[...]}`.',
    examples: [['List pods', 'berth-pod list'], ['As JSON', 'berth-pod list --format json']],
  });

  static override explain = 'list: reads every RUNROOT/pods/ID/pod.json; a member container runs when the init pid in its OCI runtime state (ROOT/ID/state.json) is alive with the same start time.';

  format = Option.String('--format', 'table', { description: 'table or json', validator: t.isEnum(['table', 'json'] as const) });

  async perform(): Promise<unknown> {
    const pods = await listPods(this.env);
    if (this.format === 'json') return { kind: 'podList', pods };
    this.context.stdout.write(table(pods));
    return undefined;
  }
}

function table(pods: PodInspect[]): string {
  const rows = [['POD ID', 'NAME', 'STATUS', 'INFRA ID', '# OF CONTAINERS'], ...pods.map((p) => [p.id.slice(0, 12), p.name, p.status, '', String(p.containers.length)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd() + '\n').join('');
}
