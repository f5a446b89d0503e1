import { closeSync, createReadStream, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, Option } from '@berth/cli-kit';
import { EngineError, isRootlessCaller, mustFindRecord } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * `berth export [-o FILE] CONTAINER`: podman export. The container's whole
 * filesystem (image layers and its changes, none of the runtime's mounts)
 * as one tar; @berth/engine's export.ts reaches the rootfs and
 * @berth/archive's treeTar writes it.
 */
export class ExportCommand extends EngineCommand {
  static override paths = [['export'], ['container', 'export']];
  static override usage = Command.Usage({
    description: 'Export a container\'s filesystem as a tar archive',
    details: `
      Writes the container's root filesystem — its image with its changes on top — as a tar to stdout (refused when stdout is a terminal) or to \`-o FILE\`, which appears only once complete (written under a temporary name, then renamed). Running, created and exited containers alike. What the runtime mounts inside the container is not in it: no /proc or /sys contents, no volumes, and /etc/hosts and /etc/resolv.conf as the empty files they are under the mounts, as with podman. Owners, modes, times, extended attributes, hard links and device nodes are kept. \`berth import\` (or \`podman import\`) makes an image of it again.
    `,
    examples: [
      ['To a file', '$0 export -o web1.tar web1'],
      ['Through a pipe', '$0 export web1 | tar -t'],
      ['Flatten a container into an image', '$0 export web1 | $0 import - web-flat'],
    ],
  });
  static override explain = `
create mounted the container's overlay (lowerdir = the image's layers, upperdir
= the container's changes) on ROOT/containers/ID/bundle/rootfs in the host's
mount namespace; the runtime's own mounts (/proc, /dev, binds) are made in the
container's namespace and do not show there. export walks that overlay,
never following a symlink (every step is /proc/self/fd/N/NAME of an
O_NOFOLLOW directory descriptor) and never crossing into another filesystem,
and writes ustar/PAX headers (SCHILY.xattr.* for xattrs) with each file's
bytes. A created or exited container whose overlay is not mounted (after a
reboot) gets it mounted for the export and unmounted after.
`;

  output = Option.String('-o,--output', { description: 'Write to FILE instead of stdout' });
  container = Option.String({ name: 'CONTAINER' });

  override explainPipeline(): string {
    const to = this.output ? `> ${shq(this.output)}` : '';
    return [
      `tar --create --one-file-system --xattrs --numeric-owner -C ROOT/containers/ID/bundle/rootfs . ${to}   # what berth export ${shq(this.container)} writes, in-process`,
      (this.constructor as typeof ExportCommand).explain.trim(),
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    if (this.output === undefined && process.stdout.isTTY) throw new EngineError('E_USAGE', 'refusing to export to terminal. Use -o flag or redirect');
    if (isRootlessCaller()) {
      throw new EngineError('E_ROOTLESS', 'export as an ordinary user is not supported yet: a rootless container\'s rootfs is mounted only in its user namespace; run berth export as root');
    }
    const rec = mustFindRecord(this.env, this.container);
    const { exportContainer } = await import('@berth/engine/export');
    if (this.output === undefined) {
      await exportContainer(this.env, rec, stdoutWriter());
      return undefined;
    }
    const target = this.output;
    const tmp = join(dirname(target), `.${basename(target)}.berth-export-${randomBytes(4).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', 0o644);
    } catch (err) {
      throw new EngineError('E_EXPORT', `creating ${target}: ${(err as Error).message}`);
    }
    try {
      const out = fd;
      await exportContainer(this.env, rec, async (chunk) => {
        let off = 0;
        while (off < chunk.length) off += writeSync(out, chunk, off, chunk.length - off);
      });
      fsyncSync(fd);
      closeSync(fd);
      fd = -1;
      renameSync(tmp, target);
      const { fsyncDir } = await import('@berth/content');
      await fsyncDir(dirname(target));
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
    return undefined;
  }
}

/**
 * Writes to stdout that resolve once the chunk is handed to the kernel (the
 * write's callback), so the exporter may refill the buffer; a reader that
 * went away is an error that says so, not a crash.
 */
function stdoutWriter(): (chunk: Buffer) => Promise<void> {
  let failure: Error | undefined;
  process.stdout.on('error', (err: Error) => { failure = err; });
  const broken = (err: Error) => new EngineError('E_EXPORT', `writing the tar to stdout: ${err.message} (did the reader of the pipe go away?)`);
  return (chunk) => new Promise<void>((ok, ko) => {
    if (failure) return ko(broken(failure));
    process.stdout.write(chunk, (err) => (err ? ko(broken(err)) : ok()));
  });
}

/**
 * `berth import [-c CHANGE]... [-m MSG] [--os OS] [--arch ARCH] [--variant V] [-q] FILE|- [REFERENCE]`:
 * podman import. A tarball of a root filesystem becomes a one-layer image;
 * @berth/builder's import.ts checks it with the layer store's own extractor
 * before anything is visible, and writes blob, snapshot, config, manifest,
 * name, in that order.
 */
export class ImportCommand extends EngineCommand {
  static override paths = [['import'], ['image', 'import']];
  static override usage = Command.Usage({
    description: 'Create an image from a tarball of a filesystem',
    details: `
      FILE is a tar, plain or compressed with gzip or zstd (xz and bzip2 are refused: decompress them first), or \`-\` for stdin. It becomes an image of one layer, named REFERENCE as podman names it (\`web\` is localhost/web:latest), or unnamed. The image id is printed, as \`sha256:ID\`.

      The tarball is checked as a pulled layer is: an entry with an absolute name or a \`..\` component, one written through a symbolic link the same tarball made, or a hard link to something it does not hold is refused, and the store is left as it was. The layer is unpacked while it is checked, so the first \`berth run\` of the image starts without unpacking.

      The image config is podman's: created is the file's modification time (now, for stdin), the architecture and OS are this host's unless \`--arch\`/\`--os\`/\`--variant\` say otherwise, \`--change\` applies CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR in Containerfile syntax, and \`-m\` is the history entry's comment ("imported from tarball" without it). The same file imported by podman and by berth gets the same image id.
    `,
    examples: [
      ['Import a file', '$0 import rootfs.tar.gz myimage:1'],
      ['With a command', '$0 import -c \'CMD ["/bin/sh"]\' -m "from the build farm" rootfs.tar myimage'],
      ['From a pipe', '$0 export web1 | $0 import - web-flat'],
    ],
  });
  static override explain = `
The bytes are staged in ROOT/images/ingest while sha256 hashes them (the
layer blob's digest), then unpacked by the layer store's extractor into
ROOT/snapshots/tmp, which hashes the uncompressed tar (the diffID) and
refuses entries that would leave the layer. Only then, under a lease (so
berth-gc keeps what is being written): the staged file is renamed into
blobs/sha256/, the unpacked tree becomes the committed snapshot named by the
layer's chainID, the config (rootfs.diff_ids = [diffID], one history entry)
and an OCI manifest are written as blobs, and the name goes into
ROOT/images/index.json.
`;

  changes = Option.Array('-c,--change', [], { description: 'Apply a Containerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR' });
  message = Option.String('-m,--message', { description: 'Comment of the history entry' });
  os = Option.String('--os', { description: 'The image\'s OS (default: this host\'s)' });
  arch = Option.String('--arch', { description: 'The image\'s architecture (default: this host\'s)' });
  variant = Option.String('--variant', { description: 'The image\'s architecture variant' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'No progress output' });
  source = Option.String({ name: 'FILE' });
  reference = Option.String({ name: 'REFERENCE', required: false });

  override explainPipeline(): string {
    return [
      `# berth import ${shq(this.source)}: no stage binary; in-process, with berth-store unpack's extractor: stage and hash, unpack and check, then blob, snapshot, config, manifest${this.reference ? `, name ${shq(this.reference)}` : ''}`,
      (this.constructor as typeof ImportCommand).explain.trim(),
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    const { importTarball, parseChanges, localReference, rfc3339Nano } = await import('@berth/builder');
    // What the user typed is checked before any byte is read.
    parseChanges(this.changes);
    if (this.reference !== undefined) localReference(this.reference);
    for (const [flag, v] of [['--os', this.os], ['--arch', this.arch], ['--variant', this.variant]] as const) {
      if (v !== undefined && !/^[A-Za-z0-9_.-]+$/.test(v)) throw new EngineError('E_USAGE', `${flag} "${v}": expected a name such as linux, amd64 or v8`);
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(this.source)) {
      throw new EngineError('E_USAGE', `importing from a URL (${this.source}) is not supported: download it first (curl -fLo FILE URL) and import the file`);
    }
    if (isRootlessCaller()) {
      throw new EngineError('E_ROOTLESS', 'import as an ordinary user is not supported yet: the layer is unpacked into the store, whose files belong to your user namespace; run berth import as root');
    }
    let input: NodeJS.ReadableStream;
    let created: string;
    if (this.source === '-') {
      if (process.stdin.isTTY) throw new EngineError('E_USAGE', 'cannot read from terminal, use command-line redirection or give a FILE');
      input = process.stdin;
      created = rfc3339Nano(BigInt(Date.now()) * 1_000_000n);
    } else {
      let st;
      try {
        st = statSync(this.source, { bigint: true });
      } catch (err) {
        throw new EngineError('E_IMPORT', `opening ${this.source}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      }
      if (!st.isFile()) throw new EngineError('E_IMPORT', `${this.source} is not a file: import takes a tarball (make one with tar -C DIR -cf FILE .)`);
      // podman's created time for a file: its modification time.
      created = rfc3339Nano(st.mtimeNs);
      const stream = createReadStream(this.source, { highWaterMark: 1024 * 1024 });
      await new Promise<void>((ok, ko) => {
        stream.once('open', () => ok()).once('error', (err) => ko(new EngineError('E_IMPORT', `opening ${this.source}: ${err.message}`)));
      });
      input = stream;
    }
    const { hostPlatform } = await import('@berth/oci-spec');
    const host = hostPlatform();
    const platform = {
      os: this.os ?? host.os,
      architecture: this.arch ?? host.architecture,
      ...((this.variant ?? (this.arch === undefined ? host.variant : undefined)) ? { variant: this.variant ?? host.variant } : {}),
    };
    const image = await importTarball({
      dataRoot: this.env.dataRoot,
      input,
      source: this.source === '-' ? 'stdin' : this.source,
      created,
      changes: this.changes,
      message: this.message,
      name: this.reference,
      platform,
      progress: this.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    this.out(image.id);
    return undefined;
  }
}
