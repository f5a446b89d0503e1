import { Command, Option } from '@berth/cli-kit';
import { EngineError, findImage, findRecord, noSuchImage, untagNames } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';
import { ago, humanSize, isTemplate, renderTemplate, table, truncate } from '../format.ts';

/**
 * `berth history IMAGE`: podman history. The rows are the config's history
 * entries, newest first; an entry that made a layer is paired with the next
 * layer of the manifest (empty_layer entries made none). berth keeps no
 * intermediate images, so only the newest row has an id and the rest show
 * `<missing>`, as podman shows an image pulled from a registry. SIZE is the
 * layer blob's size in the store (compressed, as the registry served it);
 * podman shows the uncompressed tar size, which berth does not record.
 */
export class HistoryCommand extends EngineCommand {
  static override paths = [['history'], ['image', 'history']];
  static override usage = Command.Usage({
    description: 'Show the history of an image',
    details: 'One row per history entry of the image config, newest first, with the layer each entry made. SIZE is the stored (compressed) layer blob size; entries that made no layer show 0 B.',
    examples: [['The build steps of an image', '$0 history localhost/web:latest'], ['Full commands as JSON', '$0 history --format json web']],
  });
  static override explain = `
cat ROOT/images/index.json   # the image's manifest, then its config blob:
# config.history[] (created, created_by, comment, empty_layer) paired with manifest.layers[]
`;
  human = Option.Boolean('-H,--human', true, { description: 'Sizes and dates for people (default true)' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Do not shorten ids and commands' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only the ids' });
  format = Option.String('--format', { description: 'json, table (default), or a Go template such as {{.CreatedBy}}' });
  image = Option.String({ name: 'IMAGE' });

  override explainPipeline(): string {
    return `${HistoryCommand.explain.trim()}\n# image: ${shq(this.image)}`;
  }

  async perform(): Promise<number | undefined> {
    const img = await findImage(this.env, this.image);
    if (!img) throw noSuchImage(this.image);
    const entries = img.config.history ?? [];
    const layers = [...img.layers];
    // Pair entries and layers oldest first; an image without history gets one row per layer.
    const rows = entries.length > 0
      ? entries.map((h) => ({ created: h.created, createdBy: h.created_by ?? '', comment: h.comment ?? '', size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0) }))
      : layers.map((l) => ({ created: img.created, createdBy: '', comment: '', size: l.size }));
    rows.reverse();
    const docs = rows.map((r, i) => ({
      id: i === 0 ? img.id : '<missing>', created: r.created ?? '', CreatedBy: r.createdBy, size: r.size, comment: r.comment,
    }));
    const shortId = (id: string) => (this.noTrunc || id === '<missing>' ? id : id.slice(0, 12));
    if (this.format === 'json') {
      this.out(JSON.stringify(docs, null, 2));
      return undefined;
    }
    if (this.format !== undefined && isTemplate(this.format)) {
      for (const d of docs) {
        this.out(renderTemplate(this.format, {
          ID: shortId(d.id), Created: this.human ? ago(d.created) : d.created, CreatedAt: d.created, CreatedSince: ago(d.created),
          CreatedBy: d.CreatedBy, Size: this.human ? humanSize(d.size) : String(d.size), Comment: d.comment,
        }));
      }
      return undefined;
    }
    if (this.format !== undefined && this.format !== 'table') throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json, table and Go templates such as {{.ID}}`);
    if (this.quiet) {
      this.out(docs.map((d) => shortId(d.id)).join('\n'));
      return undefined;
    }
    this.out(table(['ID', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], docs.map((d) => [
      shortId(d.id), this.human ? ago(d.created) : d.created, this.noTrunc ? d.CreatedBy : truncate(d.CreatedBy, 45),
      this.human ? humanSize(d.size) : String(d.size), d.comment,
    ])));
    return undefined;
  }
}

/**
 * `berth untag IMAGE [NAME...]`: podman untag. The names go; the image
 * stays (unnamed, for `berth image prune` to take). One name the image does
 * not have fails the call before any is taken.
 */
export class UntagCommand extends EngineCommand {
  static override paths = [['untag'], ['image', 'untag']];
  static override usage = Command.Usage({
    description: 'Remove names from an image, keeping the image',
    details: 'Without NAMEs every name goes and the image is left dangling (`berth images -a` shows it as <none>; `berth image prune` removes it). A NAME is matched as `berth images` would: `web` is localhost/web:latest.',
    examples: [['Drop one name', '$0 untag web localhost/web:old'], ['Drop all names', '$0 untag web']],
  });
  image = Option.String({ name: 'IMAGE' });
  names = Option.Rest({ name: 'NAME' });

  override explainPipeline(): string {
    return `# rewrite ${shq(this.env.dataRoot)}/images/index.json under its lock: drop the ref-name entries of ${this.names.length > 0 ? this.names.map(shq).join(' ') : 'every name'} of ${shq(this.image)}; keep the manifest as an unnamed entry`;
  }

  async perform(): Promise<number | undefined> {
    const img = await findImage(this.env, this.image);
    if (!img) throw noSuchImage(this.image);
    await untagNames(this.env, img, this.names);
    return undefined;
  }
}

/** podman's `image exists`, `container exists` and `pod exists`: exit 0 if it does, 1 if not, 125 on another failure. */
abstract class ExistsVerb extends EngineCommand {
  name = Option.String({ name: 'NAME' });
  abstract exists(): Promise<boolean>;
  async perform(): Promise<number | undefined> {
    return (await this.exists()) ? 0 : 1;
  }
}

export class ImageExistsCommand extends ExistsVerb {
  static override paths = [['image', 'exists']];
  static override usage = Command.Usage({ description: 'Exit 0 if an image is in the store, 1 if not', examples: [['In a script', '$0 image exists web || berth pull registry.local/web']] });
  async exists(): Promise<boolean> {
    return (await findImage(this.env, this.name)) !== undefined;
  }
}

export class ContainerExistsCommand extends ExistsVerb {
  static override paths = [['container', 'exists']];
  static override usage = Command.Usage({ description: 'Exit 0 if a container exists, 1 if not' });
  async exists(): Promise<boolean> {
    return findRecord(this.env, this.name) !== undefined;
  }
}

export class PodExistsCommand extends ExistsVerb {
  static override paths = [['pod', 'exists']];
  static override usage = Command.Usage({ description: 'Exit 0 if a pod exists, 1 if not' });
  async exists(): Promise<boolean> {
    const { inspectPod } = await import('@berth/pod');
    try {
      await inspectPod(this.name, { runRoot: this.env.runRoot });
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'E_NO_POD') return false;
      throw err;
    }
  }
}
