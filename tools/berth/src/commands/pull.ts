import { BerthUsageError, Command, Option, tlsVerifyFlag } from '@berth/cli-kit';
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
  authfile = Option.String('--authfile', { description: 'Path of an auth.json (default: where `berth login` writes)' });
  certDir = Option.String('--cert-dir', { description: 'Use certificates at DIR (*.crt CAs, *.cert/*.key client pair) for the registry, instead of the certs.d directories (containers-certs.d(5))' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only the image id' });
  reference = Option.String({ name: 'IMAGE' });

  override explainPipeline(): string {
    return `berth-pull --root ${shq(this.env.dataRoot)}${this.tlsVerify === 'false' ? ' --tls-verify=false' : ''} ${shq(this.reference)}   # distribution-spec pull into ${shq(this.env.dataRoot)}/images (an OCI image layout)`;
  }

  async perform(): Promise<number | undefined> {
    if (this.creds !== undefined && this.authfile !== undefined) throw new BerthUsageError('--creds and --authfile cannot be used together');
    const doc = await pullImage(this.env, this.reference, { tlsVerify: tlsVerifyFlag(this.tlsVerify), quiet: this.quiet, creds: this.creds, authfile: this.authfile, certDir: this.certDir });
    this.out(doc.config.slice('sha256:'.length));
    return undefined;
  }
}
