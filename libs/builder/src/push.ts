import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BerthError, Progress, formatBytes, imageStorePath, log } from '@berth/cli-kit';
import { ImageLayout, withFileLock, writeFileAtomic } from '@berth/content';
import { digestOf, shortId } from '@berth/digest';
import { MediaType, formatReference, manifestKind, parseReference, validateManifest, type ImageManifest } from '@berth/oci-spec';
import { convertLayer, readImage } from './build.ts';
import { findImage } from './names.ts';
import type { PushOptions, PushResult } from './types.ts';

/**
 * `podman push IMAGE [DEST]`: the distribution spec's push workflow over an
 * image in the store. Layers and the config go first, each skipped when the
 * registry has it (HEAD), mounted from another repository of the same
 * registry when a name in the store says the layer came from there, else
 * uploaded; the manifest goes last, so the registry never names an image
 * whose blobs are not all there.
 */
export async function pushImage(opts: PushOptions): Promise<PushResult> {
  const out = opts.output ?? process.stderr;
  const say = (line: string) => { if (!opts.quiet) out.write(`${line}\n`); };
  const layout = new ImageLayout(imageStorePath(opts.dataRoot));
  const hit = await findImage(layout, opts.source);
  const destText = (opts.destination ?? hit.ref ?? '').replace(/^docker:\/\//, '');
  if (destText === '') throw new BerthError('E_USAGE', `image ${opts.source} has no name: give a destination (berth push ${opts.source} REGISTRY/NAME:TAG)`, { exitCode: 2 });
  const transport = /^([a-z][a-z0-9-]*):(?!\d)/.exec(destText);
  if (transport && !destText.slice(0, transport.index + transport[0].length).includes('/')) {
    throw new BerthError('E_USAGE', `destination ${destText}: berth pushes to registries only (docker://), not ${transport[1]}:`, { exitCode: 2 });
  }
  const dest = parseReference(destText);
  const image = await readImage(layout, hit.descriptor, hit.ref ?? opts.source);
  let manifest: ImageManifest = image.manifestDoc;
  let manifestMediaType = image.manifest.mediaType;
  let manifestBytes = await layout.readBlob(image.manifest.digest);
  // --format converts media types on the way: the blobs stay the same bytes.
  const wantDocker = opts.format === 'docker';
  const isDocker = manifestMediaType === MediaType.DockerManifest;
  if (opts.format !== undefined && wantDocker !== isDocker) {
    manifest = {
      schemaVersion: 2,
      mediaType: wantDocker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: wantDocker ? MediaType.DockerConfig : MediaType.OciConfig, digest: manifest.config.digest, size: manifest.config.size },
      layers: manifest.layers.map((l) => convertLayer(l, wantDocker ? 'docker' : 'oci')),
    };
    manifestMediaType = manifest.mediaType!;
    manifestBytes = Buffer.from(JSON.stringify(manifest));
  }
  if (opts.removeSignatures) log.debug('--remove-signatures: berth stores no signatures, nothing to remove');
  const locations = new BlobLocations(opts.dataRoot);
  const sources = await mountSources(layout, dest.registry, dest.repository, await locations.read());

  const { PushClient, findCredentials, parseCredsFlag } = await import('@berth/registry');
  const r = opts.registry;
  const credentials = r.creds !== undefined ? parseCredsFlag(r.creds) : await findCredentials(dest.registry, dest.repository, { authfile: r.authfile });
  const client = new PushClient({ registry: dest.registry, insecure: r.insecure, certDir: r.certDir, credentials });
  const destName = formatReference(dest);
  const result: PushResult = { kind: 'push', source: hit.ref ?? hit.descriptor.digest, destination: destName, manifest: { mediaType: manifestMediaType, digest: digestOf(manifestBytes), size: manifestBytes.length }, blobs: [] };
  try {
    await client.ping();
    say('Getting image source signatures');
    const progress = opts.quiet ? undefined : new Progress();
    // Layers go up several at once (as skopeo does, 6 by default), the
    // config with them; only the manifest waits for all of them.
    const blobs = [...manifest.layers, manifest.config];
    for (const b of blobs) {
      if (!(await layout.hasBlob(b.digest, b.size))) throw new BerthError('E_BLOB_UNKNOWN', `blob ${b.digest} of ${opts.source} is missing from the store ${layout.root}`);
    }
    const outcomes: PushResult['blobs'] = new Array(blobs.length);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < blobs.length && !failed) {
        const i = next++;
        const b = blobs[i]!;
        const label = `${b === manifest.config ? 'config' : 'blob'} ${shortId(b.digest)}`;
        progress?.start(b.digest, `Copying ${label}`, b.size);
        try {
          const { outcome: how, requests } = await client.pushBlob(dest.repository, { digest: b.digest, size: b.size, path: layout.blobPath(b.digest) }, {
            from: sources.get(b.digest), chunkSize: opts.chunkSize, onProgress: (n) => progress?.update(b.digest, n),
          });
          progress?.finish(b.digest, how === 'exists' ? 'skipped: already exists' : how === 'mounted' ? `mounted from ${sources.get(b.digest)}` : `done ${formatBytes(b.size)}`);
          outcomes[i] = { digest: b.digest, size: b.size, how, requests };
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.min(opts.jobs ?? 6, blobs.length) }, worker));
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    result.blobs.push(...outcomes);
    say('Writing manifest to image destination');
    const reference = dest.tag ?? dest.digest!;
    if (dest.digest && dest.digest !== result.manifest.digest) {
      throw new BerthError('E_DIGEST_MISMATCH', `destination ${destName} names digest ${dest.digest}, but the manifest is ${result.manifest.digest}`);
    }
    const reported = await client.putManifest(dest.repository, reference, manifestBytes, manifestMediaType);
    if (reported && reported !== result.manifest.digest) log.warn(`the registry reports manifest digest ${reported}, berth computed ${result.manifest.digest}`);
  } finally {
    await client.close();
  }
  await locations.record(dest.registry, dest.repository, result.blobs.map((b) => b.digest)).catch((err) => log.debug(`record blob locations: ${String(err)}`));
  if (opts.digestFile) await writeFile(opts.digestFile, result.manifest.digest);
  return result;
}

/**
 * Which repository of the destination registry each blob could be mounted
 * from: an earlier push put it there (ROOT/builder/blob-locations.json, like
 * containers/image's blob info cache), or another name in the store on
 * that registry says its manifest's blobs are there.
 */
async function mountSources(layout: ImageLayout, registry: string, repository: string, known: LocationMap): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [digest, repos] of Object.entries(known[registry] ?? {})) {
    const other = repos.find((r) => r !== repository);
    if (other) out.set(digest, other);
  }
  for (const entry of await layout.list()) {
    if (!entry.ref || manifestKind(entry.descriptor.mediaType) !== 'manifest') continue;
    let ref;
    try { ref = parseReference(entry.ref); } catch { continue; }
    if (ref.registry !== registry || ref.repository === repository) continue;
    try {
      const m = validateManifest(await layout.readJsonBlob(entry.descriptor.digest, 'manifest'));
      for (const l of [...m.layers, m.config]) if (!out.has(l.digest)) out.set(l.digest, ref.repository);
    } catch {
      // A name whose manifest is unreadable offers nothing to mount.
    }
  }
  return out;
}

/** registry -> blob digest -> repositories that received it from a push of ours. */
type LocationMap = Record<string, Record<string, string[]>>;

class BlobLocations {
  private readonly path: string;
  constructor(dataRoot: string) { this.path = join(dataRoot, 'builder', 'blob-locations.json'); }

  async read(): Promise<LocationMap> {
    try {
      const doc: unknown = JSON.parse(await readFile(this.path, 'utf8'));
      return typeof doc === 'object' && doc !== null ? (doc as LocationMap) : {};
    } catch {
      // Missing or unreadable: it is only a hint, and a mount is only an optimization.
      return {};
    }
  }

  async record(registry: string, repository: string, digests: string[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await withFileLock(`${this.path}.lock`, async () => {
      const map = await this.read();
      const reg = (map[registry] ??= {});
      for (const d of digests) {
        const repos = (reg[d] ??= []);
        if (!repos.includes(repository)) repos.push(repository);
        // Bounded: the newest few repositories are enough to find a mount source.
        if (repos.length > 8) repos.shift();
      }
      await writeFileAtomic(this.path, JSON.stringify(map));
    });
  }
}
