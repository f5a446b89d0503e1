import { BerthUsageError } from '@berth/cli-kit';

/**
 * Which images `berth-gc` untags, decided on plain facts about each
 * index.json entry. The filter words are podman's (`podman images --filter`,
 * `podman image prune --filter`): label=KEY[=VALUE], until=DURATION|TIMESTAMP,
 * dangling=true|false. Several filters must all hold (podman ANDs them).
 */
export type ImageFilter =
  | { kind: 'label'; key: string; value?: string }
  | { kind: 'until'; before: number }
  | { kind: 'dangling'; dangling: boolean };

/** What the selection needs to know about one entry of index.json. */
export interface ImageFacts {
  /** org.opencontainers.image.ref.name, absent for an untagged (dangling) entry */
  ref?: string;
  /** digest of the manifest or index the entry points to (the image ID) */
  digest: string;
  /** config.Labels of the image (of every platform, for an index) */
  labels: Array<Record<string, string>>;
  /** config.created of the image, ms since the epoch (the earliest, for an index) */
  created?: number;
}

export interface Selection {
  filters: ImageFilter[];
  /** tags (or full refs) whose images are kept whatever the filters say */
  keepTags: string[];
  /** --all: every image is a candidate, filters narrow it */
  all: boolean;
  /** image IDs or refs in use (a live lease names them, a container was made from them): never untagged */
  inUse?: ReadonlySet<string>;
}

const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A Go-style duration (`90s`, `10m`, `1h30m`, `2d`), in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * unitMs[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

/** until=: a duration before now, an RFC 3339 / ISO date, or Unix seconds. */
export function parseUntil(text: string, now: number): number {
  const d = parseDuration(text);
  if (d !== undefined) return now - d;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  throw new BerthUsageError(`--filter until=${text}: expected a duration (e.g. 24h, 90m, 1h30m), an RFC 3339 time (2024-01-02T15:04:05Z) or Unix seconds`);
}

/** Parse one `--filter` value. */
export function parseFilter(text: string, now = Date.now()): ImageFilter {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new BerthUsageError(`--filter ${text}: expected KEY=VALUE with KEY one of label, until, dangling`);
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  switch (key) {
    case 'label': {
      if (value === '') throw new BerthUsageError(`--filter ${text}: label= needs a label KEY or KEY=VALUE`);
      const i = value.indexOf('=');
      return i < 0 ? { kind: 'label', key: value } : { kind: 'label', key: value.slice(0, i), value: value.slice(i + 1) };
    }
    case 'until':
      return { kind: 'until', before: parseUntil(value, now) };
    case 'dangling':
      if (value !== 'true' && value !== 'false') throw new BerthUsageError(`--filter ${text}: dangling takes true or false`);
      return { kind: 'dangling', dangling: value === 'true' };
    default:
      throw new BerthUsageError(`--filter ${text}: unknown filter "${key}"; berth-gc knows label, until and dangling`);
  }
}

function filterHolds(f: ImageFilter, img: ImageFacts): boolean {
  switch (f.kind) {
    case 'label':
      return img.labels.some((l) => Object.hasOwn(l, f.key) && (f.value === undefined || l[f.key] === f.value));
    case 'until':
      return img.created !== undefined && img.created < f.before;
    case 'dangling':
      return (img.ref === undefined) === f.dangling;
  }
}

/** The tag of a reference: what follows the last ':' after the last '/' (none for name@digest). */
export function tagOf(ref: string): string | undefined {
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(colon + 1) : undefined;
}

function keepMatches(keep: string, ref: string): boolean {
  // A bare word is a tag (`latest` keeps every `*:latest`); anything with a
  // ':' or '/' is a whole reference.
  return keep.includes(':') || keep.includes('/') ? ref === keep : tagOf(ref) === keep;
}

/**
 * The index.json entries to remove. An image is the manifest digest: when a
 * kept tag points at an image, every name of that image stays, since removing
 * the image is what the filters ask and that image is not removed. With no
 * filter and without --all nothing is selected: GC then only sweeps what no
 * name reaches.
 */
export function selectForUntag(images: readonly ImageFacts[], sel: Selection): ImageFacts[] {
  if (sel.filters.length === 0 && !sel.all) return [];
  const keptIds = new Set<string>();
  for (const img of images) {
    if (img.ref !== undefined && sel.keepTags.some((k) => keepMatches(k, img.ref!))) keptIds.add(img.digest);
    if (sel.inUse && (sel.inUse.has(img.digest) || (img.ref !== undefined && sel.inUse.has(img.ref)))) keptIds.add(img.digest);
  }
  return images.filter((img) => !keptIds.has(img.digest) && sel.filters.every((f) => filterHolds(f, img)));
}
