import { createReadStream, statSync } from 'node:fs';
import { Command, Option } from '@berth/cli-kit';
import { EngineError, candidateNames, findImage, noSuchImage, paths } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/** `berth save [-o FILE] [--format F] [-m] [--uncompressed] [--compress] [-q] IMAGE...`: podman save. */
export class SaveCommand extends EngineCommand {
  static override paths = [['save'], ['image', 'save']];
  static override usage = Command.Usage({
    description: 'Save images to an archive (docker-archive, oci-archive, oci-dir, docker-dir)',
    details: `
      Writes the image to stdout (refused when stdout is a terminal) or to \`-o FILE\`, which appears only when complete (a temp file renamed over it). The default docker-archive is what \`docker load\` and \`podman load\` read: manifest.json, the config and the layers uncompressed. oci-archive is a tar of an OCI image layout with the blobs as stored; oci-dir and docker-dir write a directory (\`-o\` required). Without \`-m\`, more names after the first are extra tags of the first image (podman's rule, docker-archive only); with \`-m\` each is an image of its own.
    `,
    examples: [
      ['Save to a file', '$0 save -o busybox.tar busybox'],
      ['An OCI archive', '$0 save --format oci-archive -o busybox-oci.tar busybox'],
      ['Two images in one archive', '$0 save -m -o both.tar web:1 db:1'],
      ['Copy to another store', '$0 save busybox | berth --root /other load'],
    ],
  });
  static override explain = `
A docker-archive is a tar: manifest.json = [{"Config":"<id>.json","RepoTags":[...],"Layers":["<diffID>.tar",...]}],
the image config, and every layer as an uncompressed tar named by its diffID.
An oci-archive is a tar of an OCI image layout (image-layout.md): oci-layout,
index.json naming the manifest (org.opencontainers.image.ref.name), blobs/sha256/*.
Every blob is read from ROOT/images/blobs and hashed as it is copied.
`;

  output = Option.String('-o,--output', { description: 'Write to FILE (a directory for oci-dir and docker-dir) instead of stdout' });
  format = Option.String('--format', 'docker-archive', { description: 'docker-archive (default), oci-archive, oci-dir or docker-dir' });
  multi = Option.Boolean('-m,--multi-image-archive', false, { description: 'More than one image in a docker-archive' });
  uncompressed = Option.Boolean('--uncompressed', false, { description: 'Keep uncompressed layers uncompressed in the OCI formats' });
  compress = Option.Boolean('--compress', false, { description: 'docker-dir: gzip layers the store holds uncompressed' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'No progress output' });
  images = Option.Rest({ name: 'IMAGE' });

  override explainPipeline(): string {
    const out = this.output ? `-o ${shq(this.output)}` : '> FILE';
    return `${(this.constructor as typeof SaveCommand).explain.trim()}\n# the same with skopeo:\nskopeo copy oci:${shq(paths.images(this.env))}:${shq(this.images[0] ?? 'IMAGE')} ${this.format}:${this.output ? shq(this.output) : '/dev/stdout'}   # berth save ${out}`;
  }

  async perform(): Promise<number | undefined> {
    const { SAVE_FORMATS, localName, saveImages, streamSink, tarOutput, withAtomicDir, withAtomicFile } = await import('../save-archive.ts');
    const format = SAVE_FORMATS.find((f) => f === this.format);
    if (!format) throw new EngineError('E_USAGE', `unknown format "${this.format}": use docker-archive, oci-archive, oci-dir or docker-dir`);
    if (this.images.length === 0) throw new EngineError('E_USAGE', 'need at least 1 argument: the image to save');
    if (this.compress && format !== 'docker-dir') throw new EngineError('E_USAGE', '--compress can only be set when --format is docker-dir');
    if (this.multi && format !== 'docker-archive') throw new EngineError('E_USAGE', `unsupported format "${format}" for saving multiple images (only docker-archive)`);
    if (!this.multi && this.images.length > 1 && format !== 'docker-archive') {
      throw new EngineError('E_USAGE', `${format} holds one image: give one name (several images need -m and docker-archive)`);
    }
    const isDir = format === 'oci-dir' || format === 'docker-dir';
    if (isDir && this.output === undefined) throw new EngineError('E_USAGE', `${format} writes a directory: give it with -o DIR`);
    if (!isDir && this.output === undefined && process.stdout.isTTY) throw new EngineError('E_USAGE', 'refusing to save to terminal. Use -o flag or redirect');

    const images = this.multi ? this.images : [this.images[0]!];
    const selected = [];
    for (const arg of images) {
      const img = await findImage(this.env, arg);
      if (!img) throw noSuchImage(arg);
      // The archive carries the name the user typed as the store knows it; an id gives no name, as with podman.
      const name = candidateNames(arg).find((n) => img.names.includes(n));
      selected.push({ names: name ? [name] : [], manifest: img.manifest, id: img.id });
    }
    if (!this.multi && this.images.length > 1) {
      // podman: without -m, further names are more tags for the first image.
      for (const extra of this.images.slice(1)) {
        const other = await findImage(this.env, extra).catch(() => undefined);
        if (other && other.id !== selected[0]!.id) process.stderr.write(`Warning: ${extra} is saved as another tag of ${this.images[0]}; use -m to save it as an image of its own\n`);
        selected[0]!.names.unshift(localName(extra));
      }
    }
    const progress = this.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
    const opts = { imageStore: paths.images(this.env), images: selected, format, uncompressed: this.uncompressed, compress: this.compress, progress };
    if (isDir) await withAtomicDir(this.output!, (out) => saveImages(opts, out));
    else if (this.output !== undefined) await withAtomicFile(this.output, (out) => saveImages(opts, out));
    else await saveImages(opts, tarOutput(streamSink(process.stdout)));
    return undefined;
  }
}

/** `berth load [-i FILE] [-q]`: podman load. */
export class LoadCommand extends EngineCommand {
  static override paths = [['load'], ['image', 'load']];
  static override usage = Command.Usage({
    description: 'Load images from a docker-archive or oci-archive',
    details: `
      Reads the archive from stdin or \`-i FILE\` (either format, told apart by its content; a gzip-compressed tar is fine too); \`-i DIR\` loads an oci-dir or docker-dir as \`berth save\` writes them. Every blob is checked against its digest and size, and every layer against the config's diffIDs, before anything becomes visible in the store; the names in the archive are then added to ROOT/images/index.json in one step. Prints \`Loaded image: NAME\` for each name, or \`Loaded image: sha256:ID\` for an image without one, as podman does.
    `,
    examples: [
      ['Load a file', '$0 load -i busybox.tar'],
      ['From a pipe', 'podman save busybox | $0 load'],
    ],
  });
  static override explain = `
Every tar entry is staged under ROOT/images/ingest while it is hashed (no
entry may leave the archive root: no "..", no absolute path, links resolved
inside the archive only). Then manifest.json (docker-archive) or index.json
(oci-archive) is checked against what arrived: digest and size of each blob,
the config's rootfs.diff_ids against each layer's uncompressed digest. Only
then are the blobs renamed into blobs/ (under a lease, so berth-gc keeps
them) and the names written to index.json, atomically. A docker-archive image
gets an OCI manifest; its uncompressed layers stay uncompressed OCI layers.
`;

  input = Option.String('-i,--input', { description: 'Read FILE instead of stdin' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'No progress output' });

  async perform(): Promise<number | undefined> {
    const { loadArchive } = await import('../load-archive.ts');
    if (this.input === undefined && process.stdin.isTTY) throw new EngineError('E_USAGE', 'cannot read from terminal, use command-line redirection or the --input flag');
    let input: NodeJS.ReadableStream | { directory: string } = process.stdin;
    if (this.input !== undefined) {
      const path = this.input;
      let isDir: boolean;
      try { isDir = statSync(path).isDirectory(); } catch (err) { throw new EngineError('E_LOAD', `opening ${path}: ${(err as Error).message}`); }
      if (isDir) input = { directory: path };
      else {
        const stream = createReadStream(path);
        await new Promise<void>((ok, ko) => {
          stream.once('open', () => ok()).once('error', (err) => ko(new EngineError('E_LOAD', `opening ${path}: ${err.message}`)));
        });
        input = stream;
      }
    }
    const progress = this.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
    const loaded = await loadArchive({ imageStore: paths.images(this.env), dataRoot: this.env.dataRoot, input, source: this.input ?? 'stdin', progress });
    for (const img of loaded) for (const name of img.display) this.out(`Loaded image: ${name}`);
    return undefined;
  }
}
