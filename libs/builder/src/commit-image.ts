import { spawn } from 'node:child_process';
import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BerthError, imageStorePath, isErrno, log } from '@berth/cli-kit';
import { acquireLease, ImageLayout, type Lease } from '@berth/content';
import { chainIds, digestOf } from '@berth/digest';
import { MediaType, type Descriptor, type ImageConfig, type ImageManifest } from '@berth/oci-spec';
import { diffSnapshot, Snapshotter, type ResolvedImage } from '@berth/snapshots';
import { convertLayer } from './build.ts';
import { splitWords } from './containerfile.ts';
import { localReference } from './names.ts';
import type { ImageFormat } from './types.ts';
import { nameImage } from './tag.ts';

/**
 * `podman commit`: a container's changes become one more layer on its image.
 *
 * The container's snapshot is an overlayfs upper directory over the image's
 * committed layers. Its changes are copied (cp -a keeps owners, modes,
 * xattrs, the overlay's whiteout devices and opaque-directory xattrs) into a
 * fresh active snapshot on the same parent, so
 *   - a running container is paused only for the copy, not the compression;
 *   - the mount points the runtime made for the container (an /etc/hosts the
 *     image lacks, /proc, /sys, /dev) can be taken out of the copy without
 *     touching the container's own upper directory;
 * and that snapshot is then diffed into a layer blob by @berth/snapshots'
 * diffSnapshot — the same differ a build's RUN step uses — and committed
 * under the new chainID, so running the new image unpacks nothing.
 * The image is written blobs first, then the config, the manifest, and the
 * name last. One lease names all of them (the config's and the manifest's
 * digests are known before they are written), so berth-gc keeps them until
 * the name does; the layer blob is covered by berth-gc's grace period for
 * the moment between its write and the lease.
 */
export interface CommitOptions {
  /** The storage root (ROOT/images, ROOT/snapshots). */
  dataRoot: string;
  /** The container's active snapshot. */
  snapshot: string;
  /** The image the container was made from, read from the store. */
  base: ResolvedImage;
  /** Where the runtime mounted things in the container (config.json mounts' destinations). */
  mountPoints: string[];
  /** The container's own settings, applied to the image config before --change (podman does the same). */
  container: ContainerSettings;
  /** --change instructions, applied in order. */
  changes: string[];
  /** -m: the history entry's comment. */
  message?: string;
  /** -a: the config's and the history entry's author. */
  author?: string;
  format: ImageFormat;
  /** IMAGE: normalized as podman does (web → localhost/web:latest); none leaves the image unnamed. */
  name?: string;
  /** Called around the copy of the changes: --pause freezes the container there. */
  freeze?: () => Promise<() => Promise<void>>;
}

export interface ContainerSettings {
  /** The process args (entrypoint + cmd, as config.json has them). */
  args: string[];
  env: string[];
  workingDir?: string;
  labels: Record<string, string>;
  /** Container ports, "80/tcp". */
  ports: string[];
}

export interface CommittedImage {
  kind: 'image';
  reference: string | undefined;
  store: string;
  /** The image id: the config digest. */
  id: string;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor & { diffID: string };
}

/** The --change instructions podman's commit takes. */
export const ChangeKeywords = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** Parse every --change before anything is written, so a bad one costs nothing. */
export function parseChanges(changes: string[]): Array<{ keyword: typeof ChangeKeywords[number]; args: string; text: string }> {
  return changes.map((text) => {
    // podman takes `INSTRUCTION VALUE` and `INSTRUCTION=VALUE`.
    const m = /^\s*([A-Za-z]+)(?:[\s=]([\s\S]*))?$/.exec(text);
    const keyword = m?.[1]?.toUpperCase();
    if (!m || !keyword || !(ChangeKeywords as readonly string[]).includes(keyword)) {
      throw new BerthError('E_USAGE', `--change "${text}": expected one of ${ChangeKeywords.join(', ')} followed by its value`, { exitCode: 2 });
    }
    const args = (m[2] ?? '').trim();
    if (args === '' && keyword !== 'CMD' && keyword !== 'ENTRYPOINT') {
      throw new BerthError('E_USAGE', `--change "${text}": ${keyword} needs a value`, { exitCode: 2 });
    }
    return { keyword: keyword as typeof ChangeKeywords[number], args, text };
  });
}

/** CMD/ENTRYPOINT/VOLUME take a JSON array (exec form) or a plain string (shell form). */
function jsonArray(args: string, where: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  let v: unknown;
  try { v = JSON.parse(args); } catch { return undefined; }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new BerthError('E_USAGE', `${where}: the JSON form is an array of strings`, { exitCode: 2 });
  return v as string[];
}

/**
 * ENV and LABEL in --change are one KEY=VALUE, the value being the rest of
 * the text (podman's GetImageConfig: `ENV A=b c` sets A to "b c"); quotes
 * around the key or the value are dropped; no "=" means an empty value.
 */
function keyValue(args: string, where: string): [string, string] {
  const i = args.indexOf('=');
  const unquote = (t: string) => (t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t);
  const key = unquote((i < 0 ? args : args.slice(0, i)).trim());
  if (key === '' || /\s/.test(key)) throw new BerthError('E_USAGE', `${where}: expected KEY=VALUE`, { exitCode: 2 });
  return [key, i < 0 ? '' : unquote(args.slice(i + 1))];
}

/** Apply --change instructions to an image config, as a Containerfile's would. */
export function applyChanges(config: ImageConfig, changes: string[]): void {
  const cfg = (config.config = config.config ?? {});
  for (const { keyword, args, text } of parseChanges(changes)) {
    const where = `--change "${text}"`;
    switch (keyword) {
      case 'CMD':
        cfg.Cmd = jsonArray(args, where) ?? (args === '' ? [] : ['/bin/sh', '-c', args]);
        break;
      case 'ENTRYPOINT':
        cfg.Entrypoint = jsonArray(args, where) ?? (args === '' ? [] : ['/bin/sh', '-c', args]);
        break;
      case 'ENV': {
        const [k, v] = keyValue(args, where);
        const env = (cfg.Env ?? []).filter((e) => !e.startsWith(`${k}=`));
        cfg.Env = [...env, `${k}=${v}`];
        break;
      }
      case 'LABEL': {
        const [k, v] = keyValue(args, where);
        cfg.Labels = { ...(cfg.Labels ?? {}), [k]: v };
        break;
      }
      case 'EXPOSE':
        cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
        for (const p of splitWords(args, where)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new BerthError('E_USAGE', `${where}: ${p} is not PORT[/tcp|udp|sctp]`, { exitCode: 2 });
          cfg.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        break;
      case 'USER':
        cfg.User = args;
        break;
      case 'WORKDIR':
        cfg.WorkingDir = posix.resolve(cfg.WorkingDir || '/', args);
        break;
      case 'VOLUME':
        cfg.Volumes = { ...(cfg.Volumes ?? {}) };
        for (const v of jsonArray(args, where) ?? splitWords(args, where)) {
          if (!v.startsWith('/')) throw new BerthError('E_USAGE', `${where}: volume ${v} is not an absolute path`, { exitCode: 2 });
          cfg.Volumes[v] = {};
        }
        break;
      case 'STOPSIGNAL':
        cfg.StopSignal = args;
        break;
      case 'ONBUILD': {
        const docker = cfg as { OnBuild?: string[] };
        docker.OnBuild = [...(docker.OnBuild ?? []), args];
        break;
      }
    }
  }
}

/**
 * The container's settings over the image's, as podman's commit takes them
 * from the container: its environment, working directory, labels, ports,
 * and its command split back into the image's ENTRYPOINT and CMD.
 */
export function applyContainerSettings(config: ImageConfig, c: ContainerSettings): void {
  const cfg = (config.config = config.config ?? {});
  // The runtime's own variables are not the image's.
  const env = c.env.filter((e) => !/^(container|HOSTNAME)=/.test(e));
  if (env.length > 0) cfg.Env = env;
  if (c.workingDir) cfg.WorkingDir = c.workingDir;
  if (Object.keys(c.labels).length > 0) cfg.Labels = { ...(cfg.Labels ?? {}), ...c.labels };
  if (c.ports.length > 0) {
    cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
    for (const p of c.ports) cfg.ExposedPorts[p] = {};
  }
  const entrypoint = cfg.Entrypoint ?? [];
  if (c.args.length > 0) {
    if (entrypoint.length > 0 && entrypoint.every((a, i) => c.args[i] === a)) {
      cfg.Cmd = c.args.slice(entrypoint.length);
    } else {
      // --entrypoint replaced the image's: the whole command line is the new CMD.
      cfg.Entrypoint = null;
      cfg.Cmd = c.args;
    }
  }
}

export async function commitContainer(opts: CommitOptions): Promise<CommittedImage> {
  // Everything a user typed is checked before any work.
  parseChanges(opts.changes);
  const name = opts.name !== undefined ? localReference(opts.name) : undefined;
  const layout = new ImageLayout(imageStorePath(opts.dataRoot));
  await layout.init();
  const snapshotter = new Snapshotter(opts.dataRoot);
  const container = await snapshotter.stat(opts.snapshot);
  if (container.kind !== 'active') throw new BerthError('E_SNAPSHOT_KIND', `snapshot "${opts.snapshot}" is ${container.kind}: a container's rootfs is an active snapshot`);
  const parent = container.parent;
  const expectedParent = opts.base.diffIds.length ? chainIds(opts.base.diffIds).at(-1) : undefined;
  if (parent !== expectedParent) {
    throw new BerthError('E_COMMIT', `the container's rootfs is on snapshot ${parent ?? '(none)'}, not on its image's top layer ${expectedParent ?? '(none)'}`);
  }
  const key = `commit-${process.pid}-${Date.now().toString(36)}`;
  let lease: Lease | undefined;
  let committed = false;
  await snapshotter.prepare(key, parent, { labels: { 'berth.commit.container': opts.snapshot } });
  try {
    const target = snapshotter.fsDir(await snapshotter.stat(key));
    const thaw = opts.freeze ? await opts.freeze() : undefined;
    try {
      await copyTree(snapshotter.fsDir(container), target);
    } finally {
      await thaw?.();
    }
    const lowers = (await snapshotter.read().then((m) => snapshotter.chain(m, parent))).map((l) => snapshotter.fsDir(l));
    await removeMountStubs(target, lowers, opts.mountPoints);

    const layer = await diffSnapshot(snapshotter, layout, key);
    const layerDesc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    const diffIds = [...opts.base.diffIds, layer.diffID];
    const chainID = chainIds(diffIds).at(-1)!;
    const config: ImageConfig = structuredClone(opts.base.configDoc);
    applyContainerSettings(config, opts.container);
    applyChanges(config, opts.changes);
    const created = new Date().toISOString();
    config.created = created;
    if (opts.author !== undefined) config.author = opts.author;
    config.rootfs = { type: 'layers', diff_ids: diffIds };
    config.history = [...(config.history ?? []), {
      created,
      created_by: opts.container.args.join(' '),
      ...(opts.author !== undefined ? { author: opts.author } : {}),
      ...(opts.message !== undefined ? { comment: opts.message } : {}),
    }];
    const docker = opts.format === 'docker';
    if (!docker) {
      const extra = config.config as { OnBuild?: string[]; Healthcheck?: unknown };
      if (extra.OnBuild !== undefined || extra.Healthcheck !== undefined) {
        log.warn('ONBUILD and HEALTHCHECK are not part of the OCI image format and are left out: commit with --format docker to keep them');
        delete extra.OnBuild;
        delete extra.Healthcheck;
      }
    }
    const layers = [...opts.base.layers, layerDesc].map((l) => convertLayer(l, opts.format));
    const configBytes = Buffer.from(JSON.stringify(config));
    const configMediaType = docker ? MediaType.DockerConfig : MediaType.OciConfig;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: configMediaType, digest: digestOf(configBytes), size: configBytes.length },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    // The lease holds every blob of the image, written or still to be written, until the name points at them.
    lease = await acquireLease(opts.dataRoot, [...layers.map((l) => l.digest), manifest.config.digest, digestOf(manifestBytes)].map((id) => ({ type: 'blob' as const, id })));
    if (await snapshotter.exists(chainID)) await snapshotter.remove(key);
    else await snapshotter.commit(chainID, key, { 'berth.layer.digest': layer.digest, 'berth.layer.diffID': layer.diffID });
    committed = true;
    const configDesc = await layout.writeBlob(configBytes, configMediaType);
    const manifestDesc = await layout.writeBlob(manifestBytes, manifest.mediaType!);
    const { desc } = await nameImage(layout, manifestDesc, config, name !== undefined ? [name] : []);
    return {
      kind: 'image', reference: name, store: layout.root, id: configDesc.digest,
      manifest: desc, config: manifest.config, layer: { ...layers.at(-1)!, diffID: layer.diffID },
    };
  } finally {
    if (!committed) await snapshotter.remove(key).catch((err: unknown) => log.debug(`remove snapshot ${key}: ${String(err)}`));
    await lease?.release().catch(() => {});
  }
}

/**
 * cp -a: owners, modes, timestamps, hardlinks, xattrs (trusted.overlay.opaque
 * included, as root) and the 0/0 character devices overlayfs uses as
 * whiteouts all come across; --reflink=auto shares data where the
 * filesystem can.
 */
function copyTree(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', ['-a', '--reflink=auto', '--', `${from}/.`, `${to}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', (e) => reject(new BerthError('E_COMMIT', `run cp: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new BerthError('E_COMMIT', `copy the container's changes from ${from}: cp -a failed: ${err.trim().slice(0, 400)}`))));
  });
}

/**
 * What the runtime made so it could mount something (a bind target, /proc,
 * /dev) is not the container's work: a mount point the image does not have,
 * still empty in the upper directory, is removed, and so are the parents it
 * made for it. Deepest first, so a parent is empty by the time it is looked at.
 */
async function removeMountStubs(upper: string, lowers: string[], mountPoints: string[]): Promise<void> {
  const candidates = new Set<string>();
  for (const m of mountPoints) {
    const parts = posix.normalize(m).split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
    for (let n = parts.length; n >= 1; n--) candidates.add(parts.slice(0, n).join('/'));
  }
  const inImage = async (rel: string) => {
    for (const l of lowers) if (await lstat(join(l, rel)).catch(() => undefined)) return true;
    return false;
  };
  for (const rel of [...candidates].sort((a, b) => b.split('/').length - a.split('/').length || a.localeCompare(b))) {
    const at = join(upper, rel);
    const st = await lstat(at).catch(() => undefined);
    if (!st || await inImage(rel)) continue;
    if (st.isFile() && st.size === 0) await rm(at);
    else if (st.isDirectory() && (await readdir(at)).length === 0) {
      await rmdir(at).catch((err: unknown) => { if (!isErrno(err, 'ENOTEMPTY')) throw err; });
    }
  }
}
