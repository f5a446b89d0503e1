import { Command, Option, tlsVerifyFlag } from '@berth/cli-kit';
import { EngineCommand, shq } from '../base.ts';
import { pullImage } from '../pull-image.ts';

export class PullCommand extends EngineCommand {
  static override paths = [['pull'], ['image', 'pull']];
  static override usage = Command.Usage({
    description: 'Pull an image from a registry into the image store',
    details: 'berth-pull in-process: the image lands in ROOT/images, an OCI image layout. Prints the image id (the config digest).',
    examples: [['Pull from a loopback registry', '$0 pull --tls-verify=false 127.0.0.1:5000/library/busybox:latest']],
  });
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS (default true)' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD for the registry' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only the image id' });
  reference = Option.String({ name: 'IMAGE' });

  override explainPipeline(): string {
    return `berth-pull --root ${shq(this.env.dataRoot)}${this.tlsVerify === 'false' ? ' --tls-verify=false' : ''} ${shq(this.reference)}   # distribution-spec pull into ${shq(this.env.dataRoot)}/images (an OCI image layout)`;
  }

  async perform(): Promise<number | undefined> {
    const doc = await pullImage(this.env, this.reference, { tlsVerify: tlsVerifyFlag(this.tlsVerify), quiet: this.quiet, creds: this.creds });
    this.out(doc.config.slice('sha256:'.length));
    return undefined;
  }
}
