import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { BerthError, imageStorePath, isErrno, log } from '@berth/cli-kit';
import { ImageLayout, acquireLease, withFileLock, type Lease } from '@berth/content';
import { chainIds, shortId } from '@berth/digest';
import {
  MediaType, formatPlatform, hostPlatform, manifestKind, validateConfig, validateIndex, validateManifest,
  type Descriptor, type ImageConfig, type ImageManifest, type Mount,
} from '@berth/oci-spec';
import { Snapshotter, diffSnapshot, isMountPoint, mountAll, unmountAll, unpackImage, type ResolvedImage } from '@berth/snapshots';
import { BuildCache } from './cache.ts';
import {
  expand, parseContainerfile, parseError, parseKeyValues, splitWords, type Instruction,
} from './containerfile.ts';
import { contentDigest, copySources, isArchive, mkdirInRoot, resolveSources, type Owner, type Source } from './copy.ts';
import { IgnoreMatcher } from './ignore.ts';
import { localReference, storeCandidates } from './names.ts';
import { resolveInRoot } from './paths.ts';
import { RunMountPoints, findRuntime, runContainer } from './run.ts';
import { parseRunMount, type RunMount } from './run-mounts.ts';
import type { BuildOptions, BuiltImage, ImageFormat } from './types.ts';
import { resolveUser } from './user.ts';
import { nameImage } from './tag.ts';

/**
 * A build is a chain of image states, one per instruction, in the order the
 * Containerfile gives them. FROM starts a state from an image (or scratch);
 * metadata instructions change only the config; RUN, COPY and ADD add a
 * layer made on an overlayfs snapshot. The image is written only after every
 * step succeeded, blobs first, the manifest next and index.json's names
 * last, so a failed build never leaves a tagged half-image.
 */
type History = NonNullable<ImageConfig['history']>[number];

interface State {
  /** Stage name (FROM ... AS name) or index. */
  name: string;
  config: ImageConfig;
  layers: Descriptor[];
  diffIds: string[];
  history: History[];
  /** The cache key of the steps so far. */
  key: string;
  args: Map<string, string>;
  shell: string[];
  /** Was every step so far a cache hit (or metadata)? */
  cached: boolean;
  /** Did this stage set CMD? (ENTRYPOINT resets only an inherited CMD.) */
  cmdSet: boolean;
}

/** A RUN --mount with what its cache key and preparation need. */
interface ResolvedRunMount {
  mount: RunMount;
  key: string;
  /** A context bind: what the context shows at the source. */
  sources?: Source[];
  /** A bind from= an earlier stage or an image. */
  stage?: State;
}

const DefaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Build args every Dockerfile may use without declaring them (Dockerfile reference, "Predefined ARGs"). */
const predefinedArgs = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  return new Builder(opts).build();
}

class Builder {
  private readonly out: NodeJS.WritableStream;
  private readonly layout: ImageLayout;
  private readonly snapshotter: Snapshotter;
  private readonly cache: BuildCache;
  private readonly context: string;
  private ignore!: IgnoreMatcher;
  private fileName = 'Containerfile';
  private runtime: string | undefined;
  private stepNo = 0;
  private stepCount = 0;
  private readonly stages: State[] = [];
  private readonly workRoot: string;
  private lease: Lease | undefined;
  private readonly usedBlobs = new Set<string>();
  private readonly abort = new AbortController();

  constructor(private readonly opts: BuildOptions) {
    this.out = opts.output ?? process.stderr;
    this.layout = new ImageLayout(imageStorePath(opts.dataRoot));
    this.snapshotter = new Snapshotter(opts.dataRoot);
    this.cache = new BuildCache(opts.dataRoot);
    this.context = resolve(opts.context);
    this.workRoot = join(opts.dataRoot, 'builder', 'work');
  }

  private say(line: string): void {
    if (!this.opts.quiet) this.out.write(`${line}\n`);
  }

  async build(): Promise<BuiltImage> {
    // Names are checked first: a bad -t fails before any step runs.
    const tags = this.opts.tags.map((t) => localReference(t));
    try {
      const st = await lstat(this.context);
      if (!st.isDirectory()) throw new BerthError('E_CONTEXT', `build context ${this.context} is not a directory`);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('E_CONTEXT', `build context ${this.context} does not exist`);
      throw err;
    }
    const text = await this.readContainerfile();
    const parsed = parseContainerfile(text, this.fileName);
    this.ignore = await IgnoreMatcher.load(this.context);
    await this.layout.init();
    await this.snapshotter.init();
    this.stepCount = parsed.instructions.length;

    // Global ARGs (before the first FROM) are visible to FROM lines only.
    const globalArgs = new Map<string, string>();
    for (const ins of parsed.globalArgs) this.declareArg(ins, globalArgs, globalArgs, parsed.escape);

    // Ctrl-C or TERM: stop the running step, then let the finally blocks
    // unmount and remove its snapshot (Node's default would exit at once
    // and leave an overlay mounted).
    const onSignal = (signal: NodeJS.Signals) => this.abort.abort(new BerthError('E_INTERRUPTED', `build interrupted by ${signal}; no image was tagged`, { exitCode: 130 }));
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      let state: State | undefined;
      for (const ins of parsed.instructions) {
        if (this.abort.signal.aborted) throw this.abort.signal.reason;
        this.stepNo++;
        if (ins.keyword === 'FROM') {
          if (state) this.stages.push(state);
          state = await this.from(ins, globalArgs, parsed.escape);
          continue;
        }
        this.say(`STEP ${this.stepNo}/${this.stepCount}: ${ins.text}`);
        state = await this.step(state!, ins, globalArgs, parsed.escape);
      }
      return await this.commit(state!, tags);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await this.lease?.release().catch(() => {});
    }
  }

  private async readContainerfile(): Promise<string> {
    if (this.opts.containerfileText !== undefined) return this.opts.containerfileText;
    const candidates = this.opts.file !== undefined
      ? [resolve(this.opts.file)]
      : [join(resolve(this.opts.context), 'Containerfile'), join(resolve(this.opts.context), 'Dockerfile')];
    for (const p of candidates) {
      try {
        const text = await readFile(p, 'utf8');
        this.fileName = posix.basename(p);
        return text;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw new BerthError('E_CONTAINERFILE', `read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    throw new BerthError('E_CONTAINERFILE', this.opts.file !== undefined
      ? `no Containerfile at ${candidates[0]}`
      : `no Containerfile or Dockerfile in ${resolve(this.opts.context)}: pass -f FILE`);
  }

  /** ARG NAME[=default]: the --build-arg value wins over the default. */
  private declareArg(ins: Instruction, into: Map<string, string>, vars: ReadonlyMap<string, string>, escape: string): void {
    const words = splitWords(ins.args, ins.where, escape);
    for (const w of words) {
      const i = w.indexOf('=');
      const name = i < 0 ? w : w.slice(0, i);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw parseError(ins.where, `ARG "${name}" is not a valid name`);
      const given = this.opts.buildArgs[name];
      if (given !== undefined) into.set(name, given);
      else if (i >= 0) into.set(name, expand(w.slice(i + 1), vars, ins.where, escape));
      else if (vars.has(name)) into.set(name, vars.get(name)!);
    }
  }

  private vars(state: State): Map<string, string> {
    const m = new Map(state.args);
    for (const e of state.config.config?.Env ?? []) {
      const i = e.indexOf('=');
      if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
    }
    return m;
  }

  // ---------------------------------------------------------------- FROM

  private async from(ins: Instruction, globalArgs: Map<string, string>, escape: string): Promise<State> {
    const words = splitWords(expand(ins.args, globalArgs, ins.where, escape), ins.where, escape);
    let name = String(this.stages.length);
    if (words.length === 3 && words[1]!.toUpperCase() === 'AS') name = words[2]!.toLowerCase();
    else if (words.length !== 1) throw parseError(ins.where, `FROM takes IMAGE [AS NAME], not "${ins.args}"`);
    const image = words[0]!;
    this.say(`STEP ${this.stepNo}/${this.stepCount}: FROM ${image}${name !== String(this.stages.length) ? ` AS ${name}` : ''}`);
    const args = new Map<string, string>();
    const base = { name, args, shell: ['/bin/sh', '-c'], cached: true, cmdSet: false };
    if (image === 'scratch') {
      const p = hostPlatform();
      return {
        ...base,
        config: { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
        layers: [], diffIds: [], history: [], key: BuildCache.key('scratch'),
      };
    }
    const stage = this.stages.find((s) => s.name === image.toLowerCase());
    if (stage) return { ...structuredClone(stage), ...base, key: BuildCache.key(stage.key, 'stage') };
    const resolved = await this.baseImage(image, ins);
    const config = structuredClone(resolved.configDoc);
    config.config = config.config ?? {};
    for (const l of resolved.layers) this.usedBlobs.add(l.digest);
    return {
      ...base,
      config,
      layers: resolved.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      diffIds: [...resolved.diffIds],
      history: [...(config.history ?? [])],
      key: BuildCache.key(`FROM ${resolved.manifest.digest}`),
    };
  }

  /** The FROM image: from the store, or pulled (as berth-pull does) when it is not there or --pull=always. */
  private async baseImage(image: string, ins: Instruction): Promise<ResolvedImage> {
    const pull = this.opts.pull ?? 'missing';
    let hit: { ref: string | undefined; descriptor: Descriptor } | undefined;
    if (pull !== 'always') hit = await this.layout.resolve(image, storeCandidates(image)).catch(() => undefined);
    if (!hit) {
      if (pull === 'never') throw new BerthError('E_NO_IMAGE', `${ins.keyword === 'FROM' ? `${ins.where}: FROM ${image}: the image` : `image ${image}`} is not in the store ${this.layout.root} and --pull=never`);
      const { parseReference } = await import('@berth/oci-spec');
      const { pullByName } = await import('@berth/puller/resolve');
      const reference = parseReference(image);
      const r = this.opts.registry;
      this.say(`Trying to pull ${reference.registry}/${reference.repository}${reference.tag ? `:${reference.tag}` : ''}...`);
      const doc = await pullByName(image, {
        store: this.layout.root, platform: hostPlatform(), platformExplicit: false,
        tlsVerify: r.insecure === undefined ? undefined : !r.insecure, creds: r.creds, authfile: r.authfile, certDir: r.certDir,
      });
      hit = { ref: doc.reference, descriptor: doc.manifest };
    }
    return readImage(this.layout, hit.descriptor, hit.ref ?? image);
  }

  // ---------------------------------------------------------------- steps

  private async step(state: State, ins: Instruction, globalArgs: Map<string, string>, escape: string): Promise<State> {
    const s: State = { ...state, config: structuredClone(state.config), history: [...state.history], args: new Map(state.args) };
    const cfg = (s.config.config = s.config.config ?? {});
    const vars = this.vars(s);
    const x = (text: string) => expand(text, vars, ins.where, escape);
    let createdBy = `/bin/sh -c #(nop) ${ins.keyword} ${ins.args}`;
    switch (ins.keyword) {
      case 'ENV': {
        const env = [...(cfg.Env ?? [])];
        for (const [k, v] of parseKeyValues(x(ins.args), 'ENV', ins.where, escape)) {
          const i = env.findIndex((e) => e.startsWith(`${k}=`));
          if (i >= 0) env[i] = `${k}=${v}`; else env.push(`${k}=${v}`);
        }
        cfg.Env = env;
        createdBy = `/bin/sh -c #(nop) ENV ${x(ins.args)}`;
        break;
      }
      case 'ARG':
        this.declareArg(ins, s.args, new Map([...globalArgs, ...vars]), escape);
        createdBy = `/bin/sh -c #(nop) ARG ${ins.args}`;
        break;
      case 'LABEL':
        cfg.Labels = { ...(cfg.Labels ?? {}) };
        for (const [k, v] of parseKeyValues(x(ins.args), 'LABEL', ins.where, escape)) cfg.Labels[k] = v;
        createdBy = `/bin/sh -c #(nop) LABEL ${x(ins.args)}`;
        break;
      case 'MAINTAINER':
        s.config.author = x(ins.args);
        break;
      case 'WORKDIR': {
        const dir = x(ins.args);
        cfg.WorkingDir = posix.resolve(cfg.WorkingDir || '/', dir);
        createdBy = `/bin/sh -c #(nop) WORKDIR ${cfg.WorkingDir}`;
        break;
      }
      case 'USER':
        cfg.User = x(ins.args);
        break;
      case 'EXPOSE': {
        cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
        for (const p of splitWords(x(ins.args), ins.where, escape)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw parseError(ins.where, `EXPOSE ${p}: expected PORT[/tcp|udp|sctp]`);
          cfg.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        break;
      }
      case 'CMD':
        cfg.Cmd = ins.json ?? (ins.args === '' ? [] : [...s.shell, ins.args]);
        s.cmdSet = true;
        createdBy = `/bin/sh -c #(nop) CMD ${JSON.stringify(cfg.Cmd)}`;
        break;
      case 'ENTRYPOINT':
        cfg.Entrypoint = ins.json ?? (ins.args === '' ? [] : [...s.shell, ins.args]);
        // An ENTRYPOINT set by this build drops the CMD inherited from the base
        // (Dockerfile reference: "If CMD is defined from the base image,
        // setting ENTRYPOINT will reset CMD to an empty value").
        if (!s.cmdSet) cfg.Cmd = null;
        createdBy = `/bin/sh -c #(nop) ENTRYPOINT ${JSON.stringify(cfg.Entrypoint)}`;
        break;
      case 'VOLUME': {
        cfg.Volumes = { ...(cfg.Volumes ?? {}) };
        const list = ins.json ?? splitWords(x(ins.args), ins.where, escape);
        for (const v of list) cfg.Volumes[x(v)] = {};
        break;
      }
      case 'STOPSIGNAL':
        cfg.StopSignal = x(ins.args);
        break;
      case 'SHELL':
        if (!ins.json || ins.json.length === 0) throw parseError(ins.where, 'SHELL takes a JSON array, e.g. SHELL ["/bin/sh", "-c"]');
        s.shell = ins.json;
        break;
      case 'HEALTHCHECK':
        (cfg as DockerConfigFields).Healthcheck = healthcheck(ins, x);
        break;
      case 'ONBUILD':
        (cfg as DockerConfigFields).OnBuild = [...((cfg as DockerConfigFields).OnBuild ?? []), ins.args];
        break;
      case 'RUN':
        return this.run(s, ins, x);
      case 'COPY':
      case 'ADD':
        return this.copy(s, ins, x, escape);
      case 'FROM':
        break;
    }
    // Metadata steps: a history entry without a layer. Its timestamp comes
    // from the cache when this exact chain ran before, so the config (and
    // the image id) of an unchanged rebuild is the same.
    s.key = BuildCache.key(s.key, ins.keyword === 'ARG' ? `${ins.text}\n${JSON.stringify([...s.args])}` : createdBy);
    const created = await this.created(s.key);
    s.history.push({ created, created_by: createdBy, empty_layer: true });
    return s;
  }

  private async created(key: string): Promise<string> {
    if (!this.opts.noCache && this.opts.layers) {
      const hit = await this.cache.get(key);
      if (hit) return hit.created;
    }
    const created = new Date().toISOString();
    if (this.opts.layers) await this.cache.put(key, { created });
    return created;
  }

  /** The environment RUN sees: the image's Env, the declared ARGs that Env does not set, and PATH. */
  private runEnv(s: State): string[] {
    const env = [...(s.config.config?.Env ?? [])];
    for (const [k, v] of s.args) if (!env.some((e) => e.startsWith(`${k}=`))) env.push(`${k}=${v}`);
    for (const k of predefinedArgs) {
      const v = this.opts.buildArgs[k];
      if (v !== undefined && !env.some((e) => e.startsWith(`${k}=`))) env.push(`${k}=${v}`);
    }
    if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DefaultPath);
    return env;
  }

  private async run(s: State, ins: Instruction, x: (t: string) => string): Promise<State> {
    const args = ins.json ?? [...s.shell, ins.args];
    if (args.length === 0) throw parseError(ins.where, 'RUN needs a command');
    const network = ins.flags.network ?? this.opts.network;
    if (network !== 'host' && network !== 'none' && network !== 'default') throw parseError(ins.where, `RUN --network=${network}: host, none or default`);
    const env = this.runEnv(s);
    const cwd = s.config.config?.WorkingDir || '/';
    const user = s.config.config?.User || '0';
    const createdBy = ins.json ? JSON.stringify(args) : `/bin/sh -c ${ins.args}`;
    const runMounts = await this.resolveRunMounts(ins, x, cwd);
    const key = BuildCache.key(s.key, 'RUN', JSON.stringify(args), JSON.stringify(env), cwd, user, network, ...runMounts.map((m) => m.key));
    return this.layerStep(s, key, createdBy, ins, async (rootfs, bundleDir, snapshotId) => {
      const runtime = (this.runtime ??= findRuntime(this.opts.runtime));
      await mkdirInRoot(rootfs, cwd);
      const who = await resolveUser(rootfs, user, ins.where);
      const hostFiles: Array<{ source: string; destination: string }> = [];
      if (network !== 'none') {
        for (const f of ['/etc/resolv.conf', '/etc/hosts']) {
          const inRoot = await lstat(join(rootfs, f)).catch(() => undefined);
          const onHost = await lstat(f).catch(() => undefined);
          if (inRoot?.isFile() && onHost?.isFile()) hostFiles.push({ source: f, destination: f });
        }
      }
      if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${who.home}`);
      const prepared = await this.prepareRunMounts(runMounts, rootfs, snapshotId, ins);
      try {
        const status = await this.withCacheLocks(runMounts, () => runContainer({
          id: `berth-build-${snapshotId}`,
          bundle: bundleDir,
          rootfs,
          args,
          env,
          cwd,
          uid: who.uid,
          gid: who.gid,
          additionalGids: who.additionalGids,
          network: network === 'none' ? 'none' : 'host',
          hostname: osHostname(),
          runtime,
          stateRoot: join(this.opts.dataRoot, 'builder', 'runtime'),
          output: this.out,
          signal: this.abort.signal,
          mounts: prepared.mounts,
        }, hostFiles));
        if (this.abort.signal.aborted) throw this.abort.signal.reason;
        if (status !== 0) {
          throw new BerthError('E_RUN_FAILED', `${ins.where}: building at STEP "${ins.text}": the command exited with status ${status}; no image was tagged`, { exitCode: 1 });
        }
      } finally {
        await prepared.release();
      }
      return prepared.stubs;
    });
  }

  /**
   * The step's `--mount`s, parsed, each with what its cache key needs: a
   * context bind is keyed by the content it shows (as a COPY of it would
   * be), a stage or image bind by that stage's chain, a cache or tmpfs by
   * its options only (a cache's content must not break the build cache).
   */
  private async resolveRunMounts(ins: Instruction, x: (t: string) => string, cwd: string): Promise<ResolvedRunMount[]> {
    const out: ResolvedRunMount[] = [];
    for (const spec of ins.mounts ?? []) {
      const mount = parseRunMount(x(spec), cwd, ins.where);
      if (mount.type !== 'bind') {
        out.push({ mount, key: JSON.stringify(mount) });
      } else if (mount.from !== undefined) {
        const stage = await this.stageOrImage(mount.from, ins, `RUN --mount=from=${mount.from}`);
        out.push({ mount, stage, key: `${JSON.stringify(mount)}\0${stage.key}` });
      } else {
        const sources = await resolveSources(this.context, [mount.source], this.ignore, 'RUN --mount', ins.where);
        out.push({ mount, sources, key: `${JSON.stringify(mount)}\0${await contentDigest(sources, this.ignore)}` });
      }
    }
    return out;
  }

  /**
   * Turn the step's mounts into runtime-spec mounts. A context bind is a
   * copy of what the context shows (so .containerignore holds and `rw`
   * writes go nowhere); a stage bind is a view snapshot of that stage
   * (read-only unless rw); a cache is a directory under the data root. The
   * mount points the runtime will make for them are returned as `stubs`,
   * so the layer does not keep them.
   */
  private async prepareRunMounts(runMounts: ResolvedRunMount[], rootfs: string, stepId: string, ins: Instruction): Promise<{ mounts: Mount[]; stubs: string[]; release: () => Promise<void> }> {
    const mounts: Mount[] = [];
    const stubs: string[] = [];
    const releases: Array<() => Promise<void>> = [];
    const release = async () => {
      for (const r of releases.reverse()) await r().catch((err) => log.debug(`RUN --mount cleanup: ${String(err)}`));
    };
    try {
      for (const [i, entry] of runMounts.entries()) {
        const m = entry.mount;
        // The destination as the container resolves it (symlinks inside the rootfs).
        const destination = '/' + relative(rootfs, await resolveInRoot(rootfs, m.target));
        // Every directory on the way that the image does not have yet is one the runtime will make.
        const parts = destination.split('/').filter(Boolean);
        for (let depth = 1; depth <= parts.length; depth++) {
          const p = '/' + parts.slice(0, depth).join('/');
          if (!(await lstat(join(rootfs, p)).catch(() => undefined))) stubs.push(p);
        }
        if (m.type === 'tmpfs') {
          mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])] });
        } else if (m.type === 'cache') {
          const dir = this.cacheMountDir(m.id);
          if (!(await lstat(dir).catch(() => undefined))) {
            await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
            const tmp = `${dir}.${stepId}.tmp`;
            await mkdir(tmp, { mode: m.mode });
            await chmod(tmp, m.mode);
            await chown(tmp, m.uid, m.gid);
            await rename(tmp, dir).catch(async (err) => {
              await rm(tmp, { recursive: true, force: true });
              if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err;
            });
          }
          mounts.push({ destination, type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw', 'nosuid', 'nodev'] });
        } else if (entry.stage) {
          const view = await this.stageView(entry.stage, !m.readwrite, ins);
          releases.push(view.release);
          const source = await resolveInRoot(view.dir, m.source);
          if (!(await lstat(source).catch(() => undefined))) throw parseError(ins.where, `RUN --mount=from=${m.from}: ${m.source}: no such file in that ${this.stages.some((st) => st === entry.stage) ? 'stage' : 'image'}`);
          mounts.push({ destination, type: 'bind', source, options: ['rbind', m.readwrite ? 'rw' : 'ro', 'nosuid', 'nodev'] });
        } else {
          const copy = join(this.workRoot, `mount-${stepId}-${i}`);
          await mkdir(copy, { recursive: true, mode: 0o700 });
          releases.push(() => rm(copy, { recursive: true, force: true }));
          const sources = entry.sources!;
          const single = sources.length === 1 && !sources[0]!.isDir;
          await copySources(copy, sources, single ? '/' : '/src/', undefined, undefined, this.ignore, ins.where);
          const source = single ? join(copy, posix.basename(sources[0]!.rel)) : join(copy, 'src');
          mounts.push({ destination, type: 'bind', source, options: ['rbind', m.readwrite ? 'rw' : 'ro', 'nosuid', 'nodev'] });
        }
      }
    } catch (err) {
      await release();
      throw err;
    }
    return { mounts, stubs, release };
  }

  /** A cache mount's directory, named by a hash of its id (an id may hold any character). */
  private cacheMountDir(id: string): string {
    return join(this.opts.dataRoot, 'builder', 'cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
  }

  /** Hold the lock of every `sharing=locked` cache for the step: one writer at a time, across builds. */
  private async withCacheLocks<T>(runMounts: ResolvedRunMount[], fn: () => Promise<T>): Promise<T> {
    const locked = runMounts.map((r) => r.mount).filter((m): m is Extract<RunMount, { type: 'cache' }> => m.type === 'cache' && m.sharing === 'locked');
    const hold = async (i: number): Promise<T> => {
      if (i === locked.length) return fn();
      const lock = `${this.cacheMountDir(locked[i]!.id)}.lock`;
      return withFileLock(lock, () => hold(i + 1), { timeoutMs: 10 * 60_000 });
    };
    return hold(0);
  }

  private async copy(s: State, ins: Instruction, x: (t: string) => string, escape: string): Promise<State> {
    const words = (ins.json ?? splitWords(ins.args, ins.where, escape)).map(x);
    if (words.length < 2) throw parseError(ins.where, `${ins.keyword} needs SOURCE... DEST`);
    const dest0 = words[words.length - 1]!;
    const cwd = s.config.config?.WorkingDir || '/';
    const dest = dest0.startsWith('/') ? dest0 : posix.join(cwd, dest0) + (dest0.endsWith('/') || dest0 === '.' ? '/' : '');
    const specs = words.slice(0, -1);
    const chown = ins.flags.chown !== undefined ? x(ins.flags.chown) : undefined;
    const chmodFlag = ins.flags.chmod;
    if (chmodFlag !== undefined && !/^[0-7]{3,4}$/.test(chmodFlag)) throw parseError(ins.where, `${ins.keyword} --chmod=${chmodFlag}: expected an octal mode like 0755`);
    const mode = chmodFlag !== undefined ? parseInt(chmodFlag, 8) : undefined;

    // COPY --from=NAME copies out of an earlier stage's filesystem, or out of
    // an image (from the store, or pulled) when no stage has that name.
    const fromStage = ins.flags.from !== undefined ? await this.stageOrImage(x(ins.flags.from), ins, `COPY --from=${x(ins.flags.from)}`) : undefined;
    const urls = specs.filter((p) => /^https?:\/\//.test(p));
    if (urls.length > 0 && ins.keyword === 'COPY') throw parseError(ins.where, `COPY cannot fetch URLs (${urls[0]}): use ADD`);
    const localSpecs = specs.filter((p) => !/^https?:\/\//.test(p));
    const sources = fromStage ? [] : await resolveSources(this.context, localSpecs, this.ignore, ins.keyword, ins.where);
    const digest = fromStage ? `stage:${fromStage.key}` : await contentDigest(sources, this.ignore);
    // History names the content as Docker does: file:HEX for one file, dir:HEX otherwise.
    const what = fromStage ? `--from=${fromStage.name} ${localSpecs.join(' ')}` : `${sources.length === 1 && !sources[0]!.isDir ? 'file' : 'dir'}:${digest.slice(7)}`;
    const createdBy = `/bin/sh -c #(nop) ${ins.keyword} ${what} in ${dest} `;
    const key = BuildCache.key(s.key, ins.keyword, JSON.stringify(specs), dest, chown ?? '', chmodFlag ?? '', digest, urls.join(' '));
    return this.layerStep(s, key, createdBy, ins, async (rootfs) => {
      const owner: Owner | undefined = chown !== undefined ? await resolveUser(rootfs, chown, ins.where) : undefined;
      if (fromStage) {
        await this.copyFromStage(fromStage, localSpecs, rootfs, dest, owner, mode, ins);
        return;
      }
      if (ins.keyword === 'ADD') {
        const plain = [];
        for (const src of sources) {
          if (!src.isDir && await isArchive(src.path)) {
            const target = await mkdirInRoot(rootfs, dest, owner);
            await untar(src.path, target, ins);
          } else plain.push(src);
        }
        if (plain.length > 0) await copySources(rootfs, plain, dest, owner, mode, this.ignore, ins.where);
        for (const url of urls) await fetchInto(url, rootfs, dest, owner, ins);
        return;
      }
      await copySources(rootfs, sources, dest, owner, mode, this.ignore, ins.where);
    });
  }

  /** `--from=NAME`: an earlier stage by name, else an image (from the store, or pulled) as a stage of its own. */
  private async stageOrImage(want: string, ins: Instruction, what: string): Promise<State> {
    const stage = this.stages.find((st) => st.name === want.toLowerCase());
    if (stage) return stage;
    const image = await this.baseImage(want, ins).catch((err: Error) => {
      const stages = this.stages.map((st) => st.name).join(', ') || 'none';
      throw new BerthError('E_CONTAINERFILE', `${ins.where}: ${what}: no earlier stage has that name (stages: ${stages}), and as an image: ${err.message}`);
    });
    for (const l of image.layers) this.usedBlobs.add(l.digest);
    return {
      name: want, config: image.configDoc, layers: image.layers, diffIds: image.diffIds, history: [], key: BuildCache.key(`FROM ${image.manifest.digest}`),
      args: new Map(), shell: [], cached: true, cmdSet: false,
    };
  }

  /**
   * A stage's filesystem, mounted on a snapshot of its top layer: read-only,
   * or writable with the writes going to the view's own upper directory,
   * which `release` throws away with the view.
   */
  private async stageView(stage: State, readonly: boolean, ins: Instruction): Promise<{ dir: string; release: () => Promise<void> }> {
    const viewKey = `build-view-${randomBytes(6).toString('hex')}`;
    const dir = join(this.workRoot, viewKey);
    await this.ensureSnapshots(stage);
    const parent = stage.diffIds.length ? chainIds(stage.diffIds).at(-1) : undefined;
    if (!parent) throw parseError(ins.where, `--from=${stage.name}: that stage has no layers`);
    const mounts = await this.snapshotter.prepare(viewKey, parent, { readonly });
    const release = async () => {
      await unmountAll(dir).catch(() => {});
      await this.snapshotter.remove(viewKey).catch(() => {});
      if (!(await isMountPoint(dir).catch(() => true))) await rm(dir, { recursive: true, force: true }).catch(() => {});
    };
    try {
      await mkdir(dir, { recursive: true });
      await mountAll(mounts, dir);
    } catch (err) {
      await release();
      throw err;
    }
    return { dir, release };
  }

  private async copyFromStage(stage: State, specs: string[], rootfs: string, dest: string, owner: Owner | undefined, mode: number | undefined, ins: Instruction): Promise<void> {
    const view = await this.stageView(stage, true, ins);
    try {
      const none = IgnoreMatcher.parse('');
      const sources = [];
      for (const spec of specs) {
        const p = await resolveInRoot(view.dir, spec);
        const st = await lstat(p).catch(() => undefined);
        if (!st) throw parseError(ins.where, `COPY --from=${stage.name} ${spec}: no such file in that stage`);
        sources.push({ spec, path: p, rel: '', isDir: st.isDirectory() });
      }
      await copySources(rootfs, sources, dest, owner, mode, none, ins.where);
    } finally {
      await view.release();
    }
  }

  /** Every layer of the state is a committed snapshot named by its chainID (unpacked when a cache hit left it missing). */
  private async ensureSnapshots(s: State): Promise<void> {
    if (s.layers.length === 0) return;
    const image: ResolvedImage = {
      reference: undefined, store: this.layout.root, manifest: s.layers[0]!, config: s.layers[0]!, layers: s.layers, diffIds: s.diffIds,
      manifestDoc: { schemaVersion: 2, config: s.layers[0]!, layers: s.layers } as ImageManifest, configDoc: s.config,
    };
    await unpackImage(this.snapshotter, this.layout, image);
  }

  /**
   * A step that makes a layer: from the cache when this exact chain ran
   * before and its blob is still in the store; else prepare an active
   * snapshot on the state's top layer, mount it, let `work` change the tree,
   * unmount, and turn the snapshot's upper directory into a layer blob
   * (diff). The snapshot is then committed under the new chainID, so the
   * next step builds on it without unpacking anything.
   */
  private async layerStep(s: State, key: string, createdBy: string, ins: Instruction,
    work: (rootfs: string, bundleDir: string, id: string) => Promise<void | string[]>): Promise<State> {
    const next: State = { ...s, key, layers: [...s.layers], diffIds: [...s.diffIds], history: [...s.history] };
    if (!this.opts.noCache && this.opts.layers && s.cached) {
      const hit = await this.cache.get(key);
      if (hit?.layer && hit.diffId && await this.layout.hasBlob(hit.layer.digest, hit.layer.size)) {
        this.say(`--> Using cache ${key.slice(7)}`);
        next.layers.push(hit.layer);
        next.diffIds.push(hit.diffId);
        next.history.push({ created: hit.created, created_by: createdBy });
        this.usedBlobs.add(hit.layer.digest);
        await this.holdBlobs();
        return next;
      }
    }
    next.cached = false;
    await this.ensureSnapshots(s);
    const id = randomBytes(8).toString('hex');
    const snapshotKey = `build-${id}`;
    const dir = join(this.workRoot, snapshotKey);
    const rootfs = join(dir, 'rootfs');
    const bundle = join(dir, 'bundle');
    const parent = s.diffIds.length ? chainIds(s.diffIds).at(-1) : undefined;
    const mounts = await this.snapshotter.prepare(snapshotKey, parent, { labels: { 'berth.build.step': ins.where } });
    let committed = false;
    try {
      await mkdir(rootfs, { recursive: true });
      await mkdir(bundle, { recursive: true });
      // Which mount points the image has before the step: the runtime creates
      // the missing ones in the upper directory, and they are removed again
      // so the layer holds only what the step itself did.
      const present = new Set<string>();
      let stubs: string[] = [];
      await mountAll(mounts, rootfs);
      try {
        for (const p of RunMountPoints) if (await lstat(join(rootfs, p)).catch(() => undefined)) present.add(p);
        stubs = (await work(rootfs, bundle, id)) ?? [];
        if (this.abort.signal.aborted) throw this.abort.signal.reason;
      } finally {
        await unmountAll(rootfs);
      }
      if (ins.keyword === 'RUN') {
        const upper = this.snapshotter.fsDir(await this.snapshotter.stat(snapshotKey));
        for (const p of RunMountPoints) if (!present.has(p)) await rm(join(upper, p), { recursive: true, force: true });
        // The RUN --mount points the runtime made: deepest first, and only
        // while empty, so whatever the step itself wrote there stays.
        // A file bind's mount point is an empty file.
        for (const stub of [...new Set(stubs)].sort((a, b) => b.length - a.length)) {
          const at = join(upper, stub);
          const st = await lstat(at).catch(() => undefined);
          if (st?.isFile() && st.size === 0) await rm(at);
          else if (st?.isDirectory()) {
            await rmdir(at).catch((err: unknown) => {
              if (!isErrno(err, 'ENOTEMPTY')) throw err;
            });
          }
        }
      }
      const layer = await diffSnapshot(this.snapshotter, this.layout, snapshotKey);
      const desc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
      this.usedBlobs.add(desc.digest);
      await this.holdBlobs();
      next.layers.push(desc);
      next.diffIds.push(layer.diffID);
      const chainID = chainIds(next.diffIds).at(-1)!;
      if (await this.snapshotter.exists(chainID)) {
        await this.snapshotter.remove(snapshotKey);
      } else {
        await this.snapshotter.commit(chainID, snapshotKey, { 'berth.layer.digest': desc.digest, 'berth.layer.diffID': layer.diffID });
      }
      committed = true;
      const created = new Date().toISOString();
      next.history.push({ created, created_by: createdBy });
      if (this.opts.layers) await this.cache.put(key, { created, layer: desc, diffId: layer.diffID });
      this.say(`--> ${shortId(layer.digest)}`);
      return next;
    } finally {
      if (!committed) await this.snapshotter.remove(snapshotKey).catch((err) => log.debug(`remove snapshot ${snapshotKey}: ${String(err)}`));
      // Never recurse into a rootfs that is still mounted: that would delete
      // through the mount into the snapshot's directories.
      if (await isMountPoint(rootfs).catch(() => true)) log.warn(`${rootfs} is still mounted; left in place`);
      else await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** A lease on the blobs this build uses, so berth-gc keeps them until the image names them. */
  private async holdBlobs(): Promise<void> {
    const resources = [...this.usedBlobs].map((id) => ({ type: 'blob' as const, id }));
    const old = this.lease;
    this.lease = await acquireLease(this.opts.dataRoot, resources);
    await old?.release().catch(() => {});
  }

  // ---------------------------------------------------------------- commit

  private async commit(s: State, tags: string[]): Promise<BuiltImage> {
    const format: ImageFormat = this.opts.format;
    const config: ImageConfig = structuredClone(s.config);
    config.config = config.config ?? {};
    // Healthcheck and OnBuild exist only in Docker's config format; podman
    // drops them from OCI images with a warning, and so does berth.
    const docker = config.config as DockerConfigFields;
    if (format === 'oci' && (docker.Healthcheck !== undefined || docker.OnBuild !== undefined)) {
      log.warn('HEALTHCHECK and ONBUILD are not part of the OCI image format and are left out: build with --format docker to keep them');
      delete docker.Healthcheck;
      delete docker.OnBuild;
    }
    if (Object.keys(this.opts.labels).length > 0) config.config.Labels = { ...(config.config.Labels ?? {}), ...this.opts.labels };
    config.rootfs = { type: 'layers', diff_ids: s.diffIds };
    config.history = s.history;
    config.created = config.history.at(-1)?.created ?? config.created ?? new Date().toISOString();
    const layers = s.layers.map((l) => convertLayer(l, format));
    const configDesc = await this.layout.writeBlob(JSON.stringify(config), format === 'docker' ? MediaType.DockerConfig : MediaType.OciConfig);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: configDesc.mediaType, digest: configDesc.digest, size: configDesc.size },
      layers,
    };
    const manifestDesc = await this.layout.writeBlob(JSON.stringify(manifest), manifest.mediaType!);
    // Blobs are all in; only now do names point at the manifest.
    if (tags.length === 0) this.say('COMMIT');
    const { desc, platform } = await nameImage(this.layout, manifestDesc, config, tags, (t) => this.say(`COMMIT ${t}`));
    this.say(`--> ${shortId(manifest.config.digest)}`);
    for (const t of tags) this.say(`Successfully tagged ${t}`);
    log.debug(`built ${desc.digest} (${formatPlatform(platform)}), ${layers.length} layer(s)`);
    return {
      kind: 'image',
      reference: tags[0],
      tags,
      store: this.layout.root,
      id: manifest.config.digest,
      manifest: tags[0] ? { ...desc, annotations: { 'org.opencontainers.image.ref.name': tags[0] } } : desc,
      config: manifest.config,
      platform,
      layers,
    };
  }
}

/** Fields of Docker's image config (image-spec's config has no place for them). */
interface DockerConfigFields {
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  OnBuild?: string[];
}

/**
 * HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N] CMD command | NONE,
 * as Docker stores it: Test is ["NONE"], ["CMD", args...] or ["CMD-SHELL", "line"]; durations in nanoseconds.
 */
function healthcheck(ins: Instruction, x: (t: string) => string): NonNullable<DockerConfigFields['Healthcheck']> {
  const args = ins.args.trim();
  if (/^none$/i.test(args)) return { Test: ['NONE'] };
  const m = /^cmd\s+(.*)$/is.exec(args);
  if (!m) throw parseError(ins.where, 'HEALTHCHECK takes CMD command or NONE');
  const rest = m[1]!.trim();
  let json: unknown;
  try { json = rest.startsWith('[') ? JSON.parse(rest) : undefined; } catch { json = undefined; }
  const test = Array.isArray(json) && json.every((v) => typeof v === 'string') ? ['CMD', ...(json as string[])] : ['CMD-SHELL', rest];
  const out: NonNullable<DockerConfigFields['Healthcheck']> = { Test: test };
  const durations: Array<[string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval']> = [['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval']];
  for (const [flag, field] of durations) {
    if (ins.flags[flag] !== undefined) out[field] = goDuration(x(ins.flags[flag]!), `${ins.where}: HEALTHCHECK --${flag}`);
  }
  if (ins.flags.retries !== undefined) {
    const n = Number(ins.flags.retries);
    if (!Number.isInteger(n) || n < 0) throw parseError(ins.where, `HEALTHCHECK --retries=${ins.flags.retries}: expected a whole number`);
    out.Retries = n;
  }
  return out;
}

/** A Go duration (30s, 1m30s, 500ms) in nanoseconds, as Docker's config stores it. */
function goDuration(text: string, what: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== text.length || text === '') throw new BerthError('E_CONTAINERFILE', `${what}=${text}: expected a duration like 30s or 1m30s`);
  return Math.round(total);
}

/** The same layer bytes under the other format's media type (gzip tar is gzip tar in both). */
export function convertLayer(l: Descriptor, format: ImageFormat): Descriptor {
  const gzip = l.mediaType === MediaType.OciLayerGzip || l.mediaType === MediaType.DockerLayerGzip;
  if (format === 'docker') {
    if (gzip) return { mediaType: MediaType.DockerLayerGzip, digest: l.digest, size: l.size };
    if (l.mediaType === MediaType.DockerLayerForeignGzip) return { ...l };
    throw new BerthError('E_FORMAT', `layer ${l.digest} is ${l.mediaType}, which has no Docker schema2 media type: build with --format oci`);
  }
  if (gzip) return { mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.size };
  if (l.mediaType === MediaType.DockerLayerForeignGzip) return { ...l, mediaType: MediaType.OciLayerNondistributableGzip };
  return { mediaType: l.mediaType, digest: l.digest, size: l.size };
}

/** An image in the store (a manifest, or an index resolved to this platform), read and checked. */
export async function readImage(layout: ImageLayout, desc: Descriptor, name: string): Promise<ResolvedImage> {
  let d = desc;
  if (manifestKind(d.mediaType) === 'index') {
    const index = validateIndex(await layout.readJsonBlob(d.digest, 'index'), `index ${d.digest}`);
    const want = hostPlatform();
    const pick = index.manifests.find((m) => manifestKind(m.mediaType) === 'manifest' && (!m.platform || (m.platform.os === want.os && m.platform.architecture === want.architecture)));
    if (!pick) throw new BerthError('E_PLATFORM', `image ${name} has no manifest for ${formatPlatform(want)}`);
    d = pick;
  }
  const manifestDoc = validateManifest(await layout.readJsonBlob(d.digest, 'manifest'), `manifest ${d.digest}`);
  const configDoc = validateConfig(await layout.readJsonBlob(manifestDoc.config.digest, 'config'), `config ${manifestDoc.config.digest}`);
  if (configDoc.rootfs.diff_ids.length !== manifestDoc.layers.length) {
    throw new BerthError('E_MANIFEST', `image ${name}: the manifest has ${manifestDoc.layers.length} layers but the config ${configDoc.rootfs.diff_ids.length} diff_ids`);
  }
  return { reference: name, store: layout.root, manifest: d, config: manifestDoc.config, layers: manifestDoc.layers, diffIds: configDoc.rootfs.diff_ids, manifestDoc, configDoc };
}

/** ADD of a local archive: unpacked with tar(1), which knows gzip, bzip2, xz and zstd. */
async function untar(archive: string, target: string, ins: Instruction): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn('tar', ['-x', '--same-owner', '-p', '-f', archive, '-C', target], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', (e) => reject(new BerthError('E_ADD', `${ins.where}: run tar: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new BerthError('E_ADD', `${ins.where}: ADD ${archive}: tar failed: ${err.trim()}`))));
  });
}

/** ADD URL: the file lands at DEST (or DEST/NAME for a directory), mode 0600 as Docker makes it. */
async function fetchInto(url: string, rootfs: string, dest: string, owner: Owner | undefined, ins: Instruction): Promise<void> {
  const res = await fetch(url).catch((err: Error) => { throw new BerthError('E_ADD', `${ins.where}: ADD ${url}: ${err.message}`); });
  if (!res.ok) throw new BerthError('E_ADD', `${ins.where}: ADD ${url}: the server answered ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const name = posix.basename(new URL(url).pathname) || 'index.html';
  const target = dest.endsWith('/') ? posix.join(await mkdirInRoot(rootfs, dest, owner), name) : join(await mkdirInRoot(rootfs, posix.dirname(dest)), posix.basename(dest));
  await writeFile(target, bytes, { mode: 0o600 });
  const { chown } = await import('node:fs/promises');
  await chown(target, owner?.uid ?? 0, owner?.gid ?? 0);
}

