import { BerthCommand, Command, Option } from '@berth/cli-kit';

export class PullCommand extends BerthCommand {
  static override paths = [Command.Default];
  static override usage = Command.Usage({ description: 'Pull an image', details: 'x', examples: [['Pull busybox', '$0 busybox']] });
  reference = Option.String({ required: true });
  async perform(): Promise<unknown> {
    return { kind: 'image', reference: this.reference };
  }
}
