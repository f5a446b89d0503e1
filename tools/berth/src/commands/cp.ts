import { Command, Option } from '@berth/cli-kit';
import { EngineError, isRootlessCaller } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * `berth cp [-a] [--overwrite] SRC DEST`, podman-cp(1): one of SRC and DEST
 * is CONTAINER:PATH, the other a host path or `-` (a tar on stdin or
 * stdout). Running containers are reached through /proc/PID/root, created
 * and exited ones through their overlay rootfs (mounted from the snapshot
 * for the copy when a reboot unmounted it). @berth/engine's cp-*.ts hold
 * the rules and the path resolution inside the container's root.
 */
export class CpCommand extends EngineCommand {
  static override paths = [['cp'], ['container', 'cp']];
  static override usage = Command.Usage({
    description: 'Copy files between a container and the host',
    details: [
      'One of SRC and DEST is CONTAINER:PATH (a name or an id); PATH is inside the container, resolved in its root (symlinks and `..` never leave it). The other is a host path, or `-`: a tar archive read from stdin (DEST must then be a directory) or written to stdout.',
      'A file onto a file replaces it; into a directory it keeps its name. A directory onto a missing path becomes it; into a directory it goes below it; `DIR/.` copies only its contents. A directory onto a file is refused, and so is replacing a directory with a file, unless --overwrite.',
      '-a/--archive (default true): what is copied in belongs to the container\'s user (config.json process.user); --archive=false keeps the source\'s owners. Modes and times are kept. What is copied out belongs to the caller.',
    ].join('\n\n'),
    examples: [
      ['A file into a container', '$0 cp app.conf web:/etc/app.conf'],
      ['A directory out', '$0 cp web:/var/www ./www'],
      ['The contents of a directory', '$0 cp web:/var/www/. ./site'],
      ['A tar to stdout', '$0 cp web:/etc - | tar -t'],
      ['A tar from stdin', 'tar -c files | $0 cp - web:/srv'],
    ],
  });
  archive = Option.String('-a,--archive', { tolerateBoolean: true, description: 'Owners: the container\'s user (true, default) or the source\'s (false)' });
  overwrite = Option.Boolean('--overwrite', false, { description: 'Replace a directory with a non-directory and the other way round' });
  src = Option.String({ name: 'SRC' });
  dest = Option.String({ name: 'DEST' });

  archiveMode(): boolean {
    const a = this.archive;
    if (a === undefined || a === true || a === 'true') return true;
    if (a === 'false') return false;
    throw new EngineError('E_USAGE', `--archive=${String(a)}: use true or false`);
  }

  override explainPipeline(): string {
    return [
      `# berth cp ${shq(this.src)} ${shq(this.dest)}: no stage binary; in-process, as podman's copier does:`,
      '#   running container:  the paths are walked from /proc/PID/root, one openat-style step at a time (symlinks re-read inside the root)',
      '#   created/exited:     ROOT/containers/ID/bundle/rootfs (mount -t overlay from the snapshot if it is not mounted; umount after)',
      '#   files:              written as .berth-cp-* with O_EXCL, fchown, fchmod, futimes, then rename(2) into place',
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    // The copier (about 800 lines) loads only when cp runs, not with every berth start.
    const { containerCopy, copyInUserNamespace, parseCopyEndpoint } = await import('@berth/engine/cp');
    const src = parseCopyEndpoint(this.src);
    const dest = parseCopyEndpoint(this.dest);
    const archive = this.archiveMode();
    if (this.env.rootless && isRootlessCaller()) {
      // The container's ids and its overlay live in the user's namespace: the copy runs there (cp-rootless.ts).
      const ctr = src.kind === 'container' ? src.container : dest.kind === 'container' ? dest.container : undefined;
      return copyInUserNamespace(this.env, ctr, [`--archive=${archive}`, ...(this.overwrite ? ['--overwrite'] : []), '--', this.src, this.dest]);
    }
    await containerCopy(this.env, {
      src, dest, archive, overwrite: this.overwrite,
      stdin: this.context.stdin, stdout: this.context.stdout,
    });
    return undefined;
  }
}
