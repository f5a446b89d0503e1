import { BerthCommand, BerthUsageError, Command, Option, log } from '@berth/cli-kit';
import { parseDuration, parseFilter } from '@berth/gc';
import { runGc } from '../collect.ts';

function duration(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new BerthUsageError(`${flag} ${text}: expected a duration such as 30s, 10m, 1h30m`);
  return ms;
}

export class GcCommand extends BerthCommand {
  static override paths = [Command.Default];

  static override usage = Command.Usage({
    description: 'Remove images that match filters, then sweep what no image, container, snapshot or lease uses',
    details: `
      First the images the filters select are untagged (their entries leave index.json). Then a mark and sweep runs over the stores: from the roots — every index.json entry, every live lease, active snapshots, and anything written less than --grace ago — everything reachable is kept; unreachable blobs, extracted layers and committed snapshots are removed, referrers before what they refer to. Temp files of writes that died are removed too.

      Filters (podman's words): \`label=KEY\` or \`label=KEY=VALUE\` on the image config's Labels, \`until=DURATION|TIMESTAMP\` (created before), \`dangling=true\` (index entries without a name). Several filters must all match. \`--keep-tag TAG\` keeps every image some \`*:TAG\` points to (a value with ':' or '/' is a whole reference). \`--all\` selects every image (filters narrow it). With no filter and no --all no image is untagged: only unreferenced content goes.

      stdout is a JSON document: {"kind":"gc-report","untagged":[...],"blobsRemoved":N,"layersRemoved":N,"snapshotsRemoved":N,"tempFilesRemoved":N,"bytesReclaimed":N,"dryRun":bool}.
    `,
    examples: [
      ['Sweep only unreferenced content', '$0'],
      ['Remove the app images of a project except what :latest points to (the guide\'s clean_images)', '$0 --filter label=my-project.purpose=app-image --keep-tag latest'],
      ['Remove untagged images and images created more than a week ago', '$0 --filter until=168h'],
      ['Show what pruning everything would reclaim', '$0 --all --dry-run'],
    ],
  });

  static override explain = `
berth-gc is a mark and sweep over a graph of references. Nodes: index.json
entries of the OCI image layout (image-layout.md), blobs (manifests, indexes,
configs, layers: manifest.md, image-index.md), the extracted layers of the
layer store keyed by chainID (config.md#layer-chainid), snapshots (containerd's
snapshotter model: active, view, committed with a parent) and leases. Roots:
the index entries left after untagging, live leases (files under ROOT/leases,
dead once expired or once their pid is gone), active snapshots, and content
younger than the grace period (a pull writes blobs first and tags last).
Removal goes referrers first — a manifest before its config and layers, a
child snapshot before its parent — and the index.json rewrite (an atomic
rename under its lock) happens before any blob is removed, so a kill -9 at any
instant leaves a store whose every named image is complete. Marking and
sweeping run holding the lease lock and the index lock: a lease is either seen
or taken after the sweep, and no tag lands between the mark and the sweep.
`;

  dryRun = Option.Boolean('--dry-run', false, { description: 'Report what would be removed; remove nothing' });
  filter = Option.Array('--filter', [], { description: 'label=KEY[=VALUE], until=DURATION|TIMESTAMP, dangling=true|false (all must match)' });
  keepTag = Option.Array('--keep-tag', [], { description: 'Keep every image a *:TAG reference points to (repeatable)' });
  all = Option.Boolean('--all', false, { description: 'Select every image (filters narrow the selection)' });
  grace = Option.String('--grace', '10m', { description: 'Never sweep content younger than this (writes in flight); default 10m' });
  tempAge = Option.String('--temp-age', '1h', { description: 'Temp files of writes older than this are stale; default 1h' });

  async perform(): Promise<unknown> {
    const now = Date.now();
    const filters = this.filter.map((f) => parseFilter(f, now));
    for (const k of this.keepTag) if (k === '') throw new BerthUsageError('--keep-tag needs a tag, e.g. --keep-tag latest');
    if (this.keepTag.length > 0 && filters.length === 0 && !this.all) log.warn('--keep-tag has no effect without --filter or --all: no image is untagged, only unreferenced content is swept');
    return runGc({
      root: this.dataRoot,
      dryRun: this.dryRun,
      selection: { filters, keepTags: this.keepTag, all: this.all },
      graceMs: duration('--grace', this.grace),
      tempMaxAgeMs: duration('--temp-age', this.tempAge),
    });
  }
}
