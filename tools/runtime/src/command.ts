/**
 * The base of every berth-runtime subcommand: global flags were pre-parsed
 * (runc puts them before the subcommand); a --root after the subcommand is
 * accepted too. Errors go to stderr (and --log), exit 1, as runc does.
 */
import { BerthCommand, log } from '@berth/cli-kit';
import { globals } from './globals.ts';

export abstract class RuntimeCommand extends BerthCommand {
  protected override configure(): void {
    if (this.root) globals.root = this.root;
    if (this.logFormat === 'json' && globals.logFormat !== 'json') log.configure({ format: 'json' });
    if (this.debug) log.configure({ level: 'debug' });
  }
}
