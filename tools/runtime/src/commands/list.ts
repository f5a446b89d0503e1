import { Command, Option, log, t } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { listIds, loadRecord, ociState } from '../state.ts';

export class ListCommand extends RuntimeCommand {
  static override paths = [['list'], ['ls']];
  static override usage = Command.Usage({
    description: 'List the containers under --root',
    examples: [['Table', 'berth-runtime list'], ['JSON', 'berth-runtime list --format json'], ['Ids', 'berth-runtime list -q']],
  });
  static override explain = 'list: every ROOT/ID/state.json, with the status derived as `state` does. Directories that are not berth-runtime state (another runtime sharing --root) are skipped with a warning.';

  format = Option.String('-f,--format', 'table', { validator: t.isEnum(['table', 'json'] as const), description: 'table or json' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Only the ids' });

  async perform(): Promise<undefined> {
    const states = [];
    for (const id of listIds()) {
      try {
        states.push(ociState(loadRecord(id)));
      } catch (err) {
        log.debug(`list: skipping ${id}: ${(err as Error).message}`);
      }
    }
    if (this.quiet) {
      this.context.stdout.write(states.map((s) => s.id + '\n').join(''));
    } else if (this.format === 'json') {
      this.context.stdout.write(JSON.stringify(states) + '\n');
    } else {
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid ?? 0), s.status, s.bundle, s.created ?? '', s.owner ?? ''])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      this.context.stdout.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 4))).join('')).join('\n') + '\n');
    }
    return undefined;
  }
}
