import { BerthError } from '@berth/cli-kit';
import { parseDigest } from '@berth/digest';
import { configMediaTypes, indexMediaTypes, manifestMediaTypes, schema1MediaTypes } from './media-types.ts';

/**
 * Types and validators for the OCI image spec documents (descriptor.md,
 * manifest.md, image-index.md, config.md). Validation is strict where a wrong
 * value could hurt (digests become paths, sizes bound downloads) and lenient
 * where the spec says to ignore unknown fields.
 */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
}

export const RefNameAnnotation = 'org.opencontainers.image.ref.name';

function fail(what: string, msg: string): never {
  throw new BerthError('E_MANIFEST', `${what}: ${msg}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validateDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) fail(what, 'descriptor is not an object');
  if (typeof v.mediaType !== 'string' || v.mediaType === '') fail(what, 'descriptor has no mediaType');
  if (typeof v.digest !== 'string') fail(what, 'descriptor has no digest');
  try { parseDigest(v.digest); } catch (err) { fail(what, (err as Error).message); }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) fail(what, `descriptor ${v.digest} has an invalid size ${JSON.stringify(v.size)}`);
  if (v.annotations !== undefined && !isObject(v.annotations)) fail(what, 'annotations is not an object');
  if (v.platform !== undefined) {
    if (!isObject(v.platform) || typeof v.platform.os !== 'string' || typeof v.platform.architecture !== 'string') fail(what, 'platform needs os and architecture');
  }
  return v as unknown as Descriptor;
}

/** Parse JSON bytes, naming the document when they are not JSON (an HTML error page, say). */
export function parseJsonDocument(bytes: Uint8Array | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const head = text.trimStart().slice(0, 40).replace(/\s+/g, ' ');
    const hint = head.startsWith('<') ? ' (got HTML, not JSON)' : '';
    throw new BerthError('E_MANIFEST', `${what} is not valid JSON${hint}: ${(err as Error).message}`);
  }
}

export function validateManifest(v: unknown, what = 'manifest'): ImageManifest {
  if (!isObject(v)) fail(what, 'not a JSON object');
  if (v.schemaVersion !== 2) fail(what, `schemaVersion ${JSON.stringify(v.schemaVersion)} is not supported (want 2)`);
  if (v.mediaType !== undefined && typeof v.mediaType === 'string' && !manifestMediaTypes.includes(v.mediaType)) fail(what, `mediaType ${v.mediaType} is not an image manifest`);
  const config = validateDescriptor(v.config, `${what} config`);
  if (!configMediaTypes.includes(config.mediaType) && v.artifactType === undefined) {
    // Artifacts carry other config types; an image must carry an image config.
    fail(what, `config mediaType ${config.mediaType} is not an image config`);
  }
  if (!Array.isArray(v.layers)) fail(what, 'layers is not an array');
  v.layers.forEach((l, i) => validateDescriptor(l, `${what} layer ${i}`));
  return v as unknown as ImageManifest;
}

export function validateIndex(v: unknown, what = 'index'): ImageIndex {
  if (!isObject(v)) fail(what, 'not a JSON object');
  if (v.schemaVersion !== 2) fail(what, `schemaVersion ${JSON.stringify(v.schemaVersion)} is not supported (want 2)`);
  if (!Array.isArray(v.manifests)) fail(what, 'manifests is not an array');
  v.manifests.forEach((m, i) => validateDescriptor(m, `${what} entry ${i}`));
  return v as unknown as ImageIndex;
}

export function validateConfig(v: unknown, what = 'image config'): ImageConfig {
  if (!isObject(v)) fail(what, 'not a JSON object');
  if (typeof v.architecture !== 'string' || typeof v.os !== 'string') fail(what, 'needs architecture and os');
  if (!isObject(v.rootfs) || v.rootfs.type !== 'layers' || !Array.isArray(v.rootfs.diff_ids)) fail(what, 'rootfs must be {type:"layers", diff_ids:[...]}');
  for (const d of v.rootfs.diff_ids) {
    if (typeof d !== 'string') fail(what, 'diff_ids holds a non-string');
    try { parseDigest(d, 'diffID'); } catch (err) { fail(what, (err as Error).message); }
  }
  if (v.config !== undefined && v.config !== null && !isObject(v.config)) fail(what, 'config is not an object');
  return v as unknown as ImageConfig;
}

/** What kind of document a media type names, for pulls and reads. */
export function manifestKind(mediaType: string | undefined): 'index' | 'manifest' | 'schema1' | 'unknown' {
  if (mediaType === undefined) return 'unknown';
  if (indexMediaTypes.includes(mediaType)) return 'index';
  if (manifestMediaTypes.includes(mediaType)) return 'manifest';
  if (schema1MediaTypes.includes(mediaType)) return 'schema1';
  return 'unknown';
}

/** The platform this process runs on, in OCI/Go words (amd64, arm64, ...). */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const p: Platform = { os: process.platform === 'linux' ? 'linux' : process.platform, architecture: archMap[process.arch] ?? process.arch };
  if (process.arch === 'arm64') p.variant = 'v8';
  return p;
}

export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new BerthError('E_USAGE', `invalid platform "${s}": expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8`, { exitCode: 2 });
  }
  return parts.length === 3 ? { os: parts[0]!, architecture: parts[1]!, variant: parts[2]! } : { os: parts[0]!, architecture: parts[1]! };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Does an index entry's platform satisfy the wanted one? arm64 without a variant matches v8. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  const hv = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  return hv === want.variant;
}
