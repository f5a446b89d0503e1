/**
 * The base of every berth-runtime subcommand: global flags were pre-parsed
 * (runc puts them before the subcommand); a --root after the subcommand is
 * accepted too. Errors go to stderr (and --log), exit 1, as runc does.
 */
import { BerthCommand, log, writeDocument } from '@berth/cli-kit';
import { globals } from './globals.ts';

export abstract class RuntimeCommand extends BerthCommand {
  override async execute(): Promise<number> {
    if (this.root) globals.root = this.root;
    if (this.logFormat === 'json' && globals.logFormat !== 'json') log.configure({ format: 'json' });
    if (this.debug) log.configure({ level: 'debug' });
    if (this.explainFlag) {
      const text = (this.constructor as typeof BerthCommand).explain;
      this.context.stdout.write((text || 'No explanation is written for this command yet.').trim() + '\n');
      return 0;
    }
    const doc = await this.perform();
    if (doc !== undefined) writeDocument(this.context.stdout, doc);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  }
}
