import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { realpathSync } from 'node:fs';
import { Command, Option } from '@berth/cli-kit';
import {
  EngineError, findImage, imageFilter, listImages, listRecords, noSuchImage, splitRef, untagImage,
  type EngineEnv,
} from '@berth/engine';
import { EngineCommand, eachTarget, lifecycle, shq } from '../base.ts';
import { ago, humanSize, isTemplate, renderTemplate, table } from '../format.ts';

export class ImagesCommand extends EngineCommand {
  static override paths = [['images'], ['image', 'list'], ['image', 'ls']];
  static override explain = `
cat ROOT/images/index.json                  # names: org.opencontainers.image.ref.name annotations
# each manifest blob, then its config blob: the IMAGE ID is the config digest
`;
  static override usage = Command.Usage({
    description: 'List images in the store',
    details: 'The IMAGE ID is the config digest, as podman shows it. `--no-trunc` prints it as sha256:HEX, the form `berth rmi` takes back.',
    examples: [['Ids of images with a label', '$0 images --filter label=my-project.purpose=app-image --no-trunc --quiet']],
  });
  all = Option.Boolean('-a,--all', false, { description: 'Accepted for podman compatibility (berth has no intermediate images)' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only image ids' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Full image ids (sha256:...)' });
  filter = Option.Array('-f,--filter', [], { description: 'label=KEY[=VALUE], reference=PATTERN, dangling=true|false, id=PREFIX' });
  format = Option.String('--format', { description: 'json, table (default), or a Go template such as {{.ID}}' });
  name = Option.String({ name: 'REPOSITORY', required: false });

  async perform(): Promise<number | undefined> {
    const filters = [...this.filter, ...(this.name ? [`reference=${this.name}`] : [])].map(imageFilter);
    const images = (await listImages(this.env)).filter((i) => filters.every((f) => f(i)));
    images.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
    const id = (hex: string) => (this.noTrunc ? `sha256:${hex}` : hex.slice(0, 12));
    if (this.format === 'json' || (this.format !== undefined && isTemplate(this.format))) {
      const docs = images.map((i) => ({
        Id: i.id, Digest: i.manifest.digest, Names: i.names, RepoTags: i.names, Created: i.created ? Math.floor(Date.parse(i.created) / 1000) : 0,
        CreatedAt: i.created, Size: i.size, Labels: i.labels, Dangling: i.names.length === 0,
        ID: id(i.id), Repository: splitRef(i.names[0]).repository, Tag: splitRef(i.names[0]).tag,
      }));
      if (this.format === 'json') this.out(JSON.stringify(docs, null, 2));
      else for (const d of docs) this.out(renderTemplate(this.format!, d));
      return undefined;
    }
    if (this.format !== undefined && this.format !== 'table') throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and table`);
    if (this.quiet) {
      const ids = [...new Set(images.map((i) => id(i.id)))];
      if (ids.length > 0) this.out(ids.join('\n'));
      return undefined;
    }
    const rows: string[][] = [];
    for (const i of images) {
      const names = i.names.length > 0 ? i.names : [undefined];
      for (const n of names) {
        const { repository, tag } = splitRef(n);
        rows.push([repository, tag, id(i.id), ago(i.created), humanSize(i.size)]);
      }
    }
    this.out(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows));
    return undefined;
  }
}

/** berth-gc, the image store's mark and sweep, as a binary next to this berth (or on PATH). */
export function runGc(env: EngineEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const self = process.argv[1] ? realpathSync(process.argv[1]) : '';
  const launcher = join(dirname(self), '..', '..', 'image-gc', 'bin', 'berth-gc.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [launcher, '--root', env.dataRoot, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', (err) => resolve({ code: 1, stdout, stderr: err.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export class RmiCommand extends EngineCommand {
  static override paths = [['rmi'], ['image', 'rm']];
  static override usage = Command.Usage({
    description: 'Remove images',
    details: 'Untags the image in ROOT/images/index.json, then berth-gc sweeps the blobs and layers nothing else uses. An image a container uses is refused unless -f (which removes those containers).',
    examples: [['Remove by full id', '$0 rmi sha256:<hex>'], ['Remove by name', '$0 image rm busybox']],
  });
  force = Option.Boolean('-f,--force', false, { description: 'Remove containers using the image too' });
  all = Option.Boolean('-a,--all', false, { description: 'Remove every image' });
  ignore = Option.Boolean('-i,--ignore', false, { description: 'Ignore missing images' });
  images = Option.Rest({ name: 'IMAGE' });

  override explainPipeline(): string {
    return `${this.images.map((i) => `# untag ${shq(i)} in ${shq(this.env.dataRoot)}/images/index.json`).join('\n')}\nberth-gc --root ${shq(this.env.dataRoot)} --grace 0s   # sweep what no image, container or lease uses`;
  }

  async perform(): Promise<number | undefined> {
    const targets = this.all ? (await listImages(this.env)).map((i) => i.id) : this.images;
    if (targets.length === 0) throw new EngineError('E_USAGE', 'image name or ID must be specified');
    const failure = await eachTarget(targets, async (t) => {
      const img = await findImage(this.env, t);
      if (!img) { if (this.ignore) return; throw noSuchImage(t); }
      if (this.force) {
        for (const r of listRecords(this.env).filter((c) => c.image.id === img.id)) await (await lifecycle()).removeContainer(this.env, r.id, { force: true });
      }
      const byName = /^(sha256:)?[0-9a-f]{12,64}$/.test(t) ? undefined : img.names.find((n) => n === t || n.endsWith(`/${t}`) || n.endsWith(`/${t}:latest`) || n === `${t}:latest`);
      const { untagged } = await untagImage(this.env, img, { force: this.force, byName });
      for (const u of untagged) this.out(`Untagged: ${u}`);
      if (!(await findImage(this.env, img.id))) this.out(`Deleted: ${img.id}`);
    });
    const gc = await runGc(this.env, ['--grace', '0s']);
    if (gc.code !== 0) process.stderr.write(gc.stderr);
    if (failure !== undefined) throw failure;
    return undefined;
  }
}

export class ImagePruneCommand extends EngineCommand {
  static override paths = [['image', 'prune']];
  static override usage = Command.Usage({
    description: 'Remove unused images (berth-gc)',
    details: 'Without -a: dangling images (no name). With -a: every image no container uses. Then berth-gc sweeps blobs and layers.',
  });
  all = Option.Boolean('-a,--all', false, { description: 'Every image no container uses, not only dangling ones' });
  force = Option.Boolean('-f,--force', false, { description: 'Do not ask (berth never asks)' });
  filter = Option.Array('--filter', [], { description: 'label=KEY[=VALUE], until=DURATION (berth-gc filters)' });
  override explainPipeline(): string {
    return `berth-gc --root ${shq(this.env.dataRoot)} ${this.all ? '--all' : '--filter dangling=true'}${this.filter.map((f) => ` --filter ${shq(f)}`).join('')} --grace 0s`;
  }
  async perform(): Promise<number | undefined> {
    const args = [this.all ? '--all' : '--filter=dangling=true', ...this.filter.map((f) => `--filter=${f}`), '--grace', '0s'];
    const gc = await runGc(this.env, args);
    if (gc.code !== 0) throw new EngineError('E_GC', `berth-gc: ${gc.stderr.trim()}`);
    try {
      const report = JSON.parse(gc.stdout) as { untagged: string[]; bytesReclaimed: number };
      for (const u of report.untagged) this.out(u);
      process.stderr.write(`Reclaimed ${humanSize(report.bytesReclaimed)}\n`);
    } catch {
      this.out(gc.stdout);
    }
    return undefined;
  }
}
