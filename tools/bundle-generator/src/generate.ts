import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname as osHostname, release } from 'node:os';
import { join, resolve } from 'node:path';
import { BerthError, BerthUsageError, isErrno, log } from '@berth/cli-kit';
import { ImageLayout, writeFileAtomic } from '@berth/content';
import { validateConfig, validateRuntimeSpec, type Descriptor, type ImageConfig } from '@berth/oci-spec';
import { mountAll, unmountAll, type Mount as SnapshotMount } from '@berth/snapshots';
import { readHostLimits } from './rlimits.ts';
import { mkdirInRoot, readRootFile } from './rootfs-path.ts';
import { isRootless, makeRootless, withRootfsMounted } from './rootless.ts';
import { buildSpec, etcFiles, type BundleOptions, type SpecContext } from './spec.ts';

/**
 * The filesystem side of bundle generation, in the order a failure is easiest
 * to undo: everything is checked first, then the bundle directory is created,
 * the rootfs mounted, the /etc files written, and config.json written last and
 * atomically, so a bundle with a config.json is always complete. On any
 * failure what this call made is unmounted and removed.
 */

/** berth-store's output: what to mount to get the container's rootfs. */
export interface RootfsDocument {
  kind: 'rootfs';
  snapshot?: string;
  root?: string;
  store: string;
  mounts: SnapshotMount[];
  image: { reference?: string; manifest?: Descriptor; config: Descriptor };
}

export type RootfsInput =
  | { from: 'document'; doc: RootfsDocument }
  | { from: 'directory'; path: string; imageConfig: ImageConfig; imageConfigPath: string };

export interface BundleDocument {
  kind: 'bundle';
  id: string;
  bundle: string;
  image: { reference?: string; manifest?: Descriptor; config?: Descriptor; configPath?: string };
  rootfs: RootfsDocument | { path: string };
  annotations: Record<string, string>;
}

export function checkRootfsDocument(v: unknown, source: string): RootfsDocument {
  const d = v as Partial<RootfsDocument>;
  const bad = (why: string): never => { throw new BerthError('E_INPUT', `rootfs document from ${source}: ${why}`); };
  if (d.kind !== 'rootfs') bad(`kind is ${JSON.stringify(d.kind)}, expected "rootfs"`);
  if (typeof d.store !== 'string' || d.store === '') bad('has no "store" (the image layout to read the image config from)');
  if (!Array.isArray(d.mounts) || d.mounts.length === 0) bad('has no "mounts"');
  d.mounts!.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || typeof m.type !== 'string' || typeof m.source !== 'string' || !Array.isArray(m.options)) bad(`mounts[${i}] needs type, source and options`);
  });
  if (typeof d.image !== 'object' || d.image === null || typeof d.image.config?.digest !== 'string') bad('has no image.config descriptor');
  return d as RootfsDocument;
}

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

export function validateId(id: string): string {
  // The id becomes a directory name and a cgroup path component.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new BerthUsageError(`--name ${JSON.stringify(id)}: an id is 1-128 letters, digits, '_', '.', '-', starting with a letter or digit`);
  return id;
}

function hostFacts(): SpecContext['host'] {
  const read = (p: string): string | undefined => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };
  return {
    limits: readHostLimits(),
    arch: process.arch,
    kernel: release(),
    hostname: osHostname(),
    cgroupV2: existsSync('/sys/fs/cgroup/cgroup.controllers'),
    swapAccounting: existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
    lastCap: Number(read('/proc/sys/kernel/cap_last_cap')?.trim() ?? '40'),
  };
}

/**
 * RLIM_INFINITY is 2^64-1, which a double cannot hold: JSON.stringify writes
 * 18446744073709552000, one past uint64 and refused by Go's JSON decoder in
 * runc. Write the exact value instead.
 */
export function serializeSpec(spec: unknown): string {
  return JSON.stringify(spec, null, 2).replace(/\b18446744073709552000\b/g, '18446744073709551615') + '\n';
}

export interface GenerateRequest {
  input: RootfsInput;
  options: BundleOptions;
  id?: string;
  bundleDir?: string;
  dataRoot: string;
}

export async function generateBundle(req: GenerateRequest): Promise<BundleDocument> {
  const id = req.id ?? newContainerId();
  const bundle = resolve(req.bundleDir ?? join(req.dataRoot, 'bundles', id));
  for (const m of req.options.mounts) {
    // A missing source would be created by the runtime as an empty directory: refuse, like podman.
    if (m.type === 'bind' && m.source && !existsSync(m.source)) throw new BerthUsageError(`volume source ${m.source} (for ${m.destination}) does not exist`);
  }
  if (existsSync(bundle) && readdirSync(bundle).length > 0) {
    throw new BerthError('E_BUNDLE', `bundle directory ${bundle} already exists and is not empty: remove it or choose another --name/--bundle-dir`);
  }

  let imageConfig: ImageConfig;
  let imageInfo: BundleDocument['image'];
  if (req.input.from === 'document') {
    const { doc } = req.input;
    imageConfig = validateConfig(await new ImageLayout(doc.store).readJsonBlob(doc.image.config.digest, 'image config'));
    imageInfo = { ...doc.image };
  } else {
    imageConfig = req.input.imageConfig;
    imageInfo = { configPath: req.input.imageConfigPath };
  }

  const rootless = isRootless();
  const created: { dir?: string; mounted?: string; rootfsDir?: string } = {};
  try {
    const existed = existsSync(bundle);
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    if (!existed) created.dir = bundle;
    let rootfsHost: string;
    let rootPath: string;
    if (req.input.from === 'document') {
      rootfsHost = join(bundle, 'rootfs');
      await mkdir(rootfsHost, { mode: 0o755 });
      created.rootfsDir = rootfsHost;
      // Rootless: the runtime mounts the rootfs in the container's namespaces (rootless.ts).
      if (!rootless) {
        created.mounted = rootfsHost;
        await mountAll(req.input.doc.mounts, rootfsHost);
      }
      rootPath = 'rootfs';
    } else {
      rootfsHost = resolve(req.input.path);
      if (!statSync(rootfsHost, { throwIfNoEntry: false })?.isDirectory()) throw new BerthUsageError(`--rootfs ${req.input.path}: not a directory`);
      rootPath = rootfsHost;
    }

    const ctx: SpecContext = {
      id,
      image: imageConfig,
      rootPath,
      rootfsFile: (p) => readRootFile(rootfsHost, p),
      bundleDir: bundle,
      reference: imageInfo.reference,
      manifestDigest: imageInfo.manifest?.digest,
      configDigest: imageInfo.config?.digest,
      host: hostFacts(),
    };
    const rootfsMounts = req.input.from === 'document' ? req.input.doc.mounts : undefined;
    // Everything that reads or writes the rootfs happens here, synchronously:
    // a rootless rootfs is mounted only for this, in a private mount namespace.
    const inRootfs = <T>(use: () => T): T => (rootless && rootfsMounts ? withRootfsMounted(rootfsMounts, rootfsHost, use) : use());
    const { spec, hostname } = inRootfs(() => {
      const built = buildSpec(req.options, ctx);
      if (rootless) makeRootless(built.spec, rootfsMounts, req.options.pod?.user);
      validateRuntimeSpec(built.spec);
      // runc chdirs into cwd after pivot_root; a missing one fails the start, so create it as podman does.
      mkdirInRoot(rootfsHost, built.workdir, { uid: built.spec.process!.user.uid, gid: built.spec.process!.user.gid });
      return built;
    });

    const pod = req.options.pod;
    const hostNetwork = (req.options.network?.mode === 'host' && !pod?.network) || pod?.hostNetwork === true;
    const readHost = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };
    const files = etcFiles(hostname, {
      hostNetwork, hostHosts: readHost('/etc/hosts'), hostResolv: readHost('/etc/resolv.conf'),
      ...(pod?.network && pod.ip ? { podIp: pod.ip } : {}), ...(pod?.dns ? { dns: pod.dns } : {}),
    });
    await writeFile(join(bundle, 'hosts'), files.hosts, { mode: 0o644 });
    await writeFile(join(bundle, 'hostname'), files.hostname, { mode: 0o644 });
    await writeFile(join(bundle, 'resolv.conf'), files.resolvConf, { mode: 0o644 });

    await writeFileAtomic(join(bundle, 'config.json'), serializeSpec(spec));
    log.debug(`bundle ${bundle} written`, { id });
    return {
      kind: 'bundle',
      id,
      bundle,
      image: imageInfo,
      rootfs: req.input.from === 'document' ? req.input.doc : { path: rootfsHost },
      annotations: spec.annotations ?? {},
    };
  } catch (err) {
    // Undo in reverse: the rootfs mount first (rm would otherwise descend into the image's files).
    if (created.mounted) await unmountAll(created.mounted).catch((e: unknown) => log.warn(`cleanup: ${(e as Error).message}`));
    if (created.dir) await rm(created.dir, { recursive: true, force: true }).catch((e: unknown) => log.warn(`cleanup: rm ${created.dir}: ${(e as Error).message}`));
    else if (created.rootfsDir) await rm(created.rootfsDir, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** Read an --image-config FILE: an OCI image config JSON. */
export function readImageConfigFile(path: string): ImageConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BerthUsageError(`--image-config ${path}: no such file`);
    throw new BerthError('E_INPUT', `read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let value: unknown;
  try { value = JSON.parse(text); } catch (err) { throw new BerthUsageError(`--image-config ${path}: not valid JSON: ${(err as Error).message}`); }
  return validateConfig(value, `image config ${path}`);
}
