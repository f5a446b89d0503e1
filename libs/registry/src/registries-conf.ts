import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { BerthError } from '@berth/cli-kit';
import { formatReference, parseReference, type ImageReference } from '@berth/oci-spec';

/**
 * registries.conf, as podman, skopeo and buildah read it
 * (containers-registries.conf(5), version 2; drop-ins from
 * containers-registries.conf.d(5)). What berth takes from it:
 *
 * - `unqualified-search-registries` and `[aliases]` turn a short name
 *   (`busybox`) into fully qualified ones; `short-name-mode` says what to do
 *   when several registries could serve it;
 * - `[[registry]]` tables, chosen by the longest `prefix` of the image name:
 *   `blocked` refuses the pull, `insecure` allows plain HTTP and unverified
 *   TLS, `location` rewrites where the image really lives, and `[[registry.mirror]]`
 *   entries are tried first, in order (`mirror-by-digest-only`,
 *   `pull-from-mirror`).
 *
 * The name a user gave (after alias and search resolution) stays the image's
 * name in the store; mirrors and locations only change where bytes come from.
 */

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  /** all (default), digest-only or tag-only. */
  pullFromMirror: 'all' | 'digest-only' | 'tag-only';
}

export interface RegistryEntry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
  /** The file that defined it, for messages. */
  file: string;
}

export interface RegistriesConf {
  /** The files read, in order (later ones override). */
  files: string[];
  unqualifiedSearchRegistries: string[];
  shortNameMode: ShortNameMode;
  aliases: Map<string, { value: string; file: string }>;
  registries: RegistryEntry[];
}

/** Where bytes of one image can come from, in the order to try. */
export interface PullSource {
  registry: string;
  repository: string;
  insecure: boolean;
  /** mirror, location (a rewritten primary) or primary. */
  kind: 'mirror' | 'location' | 'primary';
}

/** One name to try, with its sources: a short name can give several. */
export interface PullCandidate {
  reference: ImageReference;
  sources: PullSource[];
  /** How the name was found: as given, alias (file), search registry. */
  resolvedBy: string;
}

const emptyConf = (): RegistriesConf => ({ files: [], unqualifiedSearchRegistries: [], shortNameMode: 'permissive', aliases: new Map(), registries: [] });

/**
 * The main file and its drop-ins: an explicit path (--registries-conf, or
 * CONTAINERS_REGISTRIES_CONF as podman honours it) is read alone; otherwise
 * the user's $XDG_CONFIG_HOME/containers/registries.conf when it exists,
 * else /etc/containers/registries.conf, then the *.conf drop-ins of
 * /etc/containers/registries.conf.d and the user's registries.conf.d in
 * name order. A missing default file is an empty configuration.
 */
export function registriesConfFiles(opts: { path?: string; env?: NodeJS.ProcessEnv; systemDir?: string } = {}): string[] {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? (env.CONTAINERS_REGISTRIES_CONF || undefined);
  if (explicit !== undefined) {
    if (!existsSync(explicit)) throw new BerthError('E_REGISTRIES_CONF', `registries.conf ${explicit}: no such file`);
    return [explicit];
  }
  const systemDir = opts.systemDir ?? '/etc/containers';
  const userDir = join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'containers');
  const main = [join(userDir, 'registries.conf'), join(systemDir, 'registries.conf')].find((f) => existsSync(f));
  const dropIns = (dir: string): string[] => {
    try {
      return readdirSync(dir).filter((n) => n.endsWith('.conf')).sort().map((n) => join(dir, n));
    } catch {
      return [];
    }
  };
  return [...(main ? [main] : []), ...dropIns(join(systemDir, 'registries.conf.d')), ...dropIns(join(userDir, 'registries.conf.d'))];
}

export function loadRegistriesConf(opts: { path?: string; env?: NodeJS.ProcessEnv; systemDir?: string } = {}): RegistriesConf {
  const conf = emptyConf();
  for (const file of registriesConfFiles(opts)) mergeFile(conf, file, readFileSync(file, 'utf8'));
  return conf;
}

/** Parse one file's text into the configuration so far (exported for tests of the format). */
export function mergeFile(conf: RegistriesConf, file: string, text: string): void {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new BerthError('E_REGISTRIES_CONF', `registries.conf ${file}: not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const bad = (what: string): never => { throw new BerthError('E_REGISTRIES_CONF', `registries.conf ${file}: ${what}`); };
  const str = (v: unknown, what: string): string => (typeof v === 'string' ? v : bad(`${what} must be a string`));
  const bool = (v: unknown, what: string): boolean => (v === undefined ? false : typeof v === 'boolean' ? v : bad(`${what} must be true or false`));
  conf.files.push(file);
  if (doc.registries !== undefined && doc.registry === undefined && typeof doc.registries === 'object') {
    bad('is in the deprecated version 1 format ([registries.search] ...); berth reads version 2 (unqualified-search-registries, [[registry]])');
  }
  if (doc['unqualified-search-registries'] !== undefined) {
    const list = doc['unqualified-search-registries'];
    if (!Array.isArray(list)) bad('unqualified-search-registries must be an array of host[:port]');
    conf.unqualifiedSearchRegistries = (list as unknown[]).map((r, i) => {
      const host = str(r, `unqualified-search-registries[${i}]`);
      if (host.includes('/')) bad(`unqualified-search-registries[${i}] "${host}" must be a host[:port], without a path`);
      return host;
    });
  }
  if (doc['short-name-mode'] !== undefined) {
    const mode = str(doc['short-name-mode'], 'short-name-mode');
    if (mode === '') conf.shortNameMode = 'permissive';
    else if (mode === 'enforcing' || mode === 'permissive' || mode === 'disabled') conf.shortNameMode = mode;
    else bad(`short-name-mode "${mode}" must be enforcing, permissive or disabled`);
  }
  if (doc.aliases !== undefined) {
    if (typeof doc.aliases !== 'object' || doc.aliases === null || Array.isArray(doc.aliases)) bad('[aliases] must be a table of "short-name" = "registry/repository"');
    for (const [name, value] of Object.entries(doc.aliases as Record<string, unknown>)) {
      const v = str(value, `alias "${name}"`);
      if (!isShortName(name) || /[:@]/.test(name)) bad(`alias "${name}": the name must be a short name without a registry, tag or digest`);
      // An empty value erases an alias an earlier file made.
      if (v === '') {
        conf.aliases.delete(name);
        continue;
      }
      if (isShortName(v) || /@/.test(v) || /:[^/]*$/.test(v.slice(v.indexOf('/')))) bad(`alias "${name}" = "${v}": the value must be a fully qualified name (registry/repository) without a tag or digest`);
      conf.aliases.set(name, { value: v, file });
    }
  }
  if (doc.registry !== undefined) {
    if (!Array.isArray(doc.registry)) bad('registry must be an array of tables ([[registry]])');
    (doc.registry as unknown[]).forEach((raw, i) => {
      const r = raw as Record<string, unknown>;
      const where = `[[registry]] #${i + 1}`;
      const location = r.location === undefined ? '' : str(r.location, `${where} location`);
      const prefix = r.prefix === undefined ? location : str(r.prefix, `${where} prefix`);
      if (prefix === '') bad(`${where} has neither prefix nor location`);
      const blocked = bool(r.blocked, `${where} blocked`);
      if (location === '' && !blocked && r.prefix !== undefined && !prefix.startsWith('*.')) bad(`${where} prefix "${prefix}" has no location`);
      if (prefix.startsWith('*.') && r.location !== undefined && location !== '') bad(`${where}: a wildcard prefix "${prefix}" cannot have a location`);
      const mirrors = r.mirror === undefined ? [] : Array.isArray(r.mirror) ? r.mirror as Record<string, unknown>[] : bad(`${where} mirror must be an array of tables ([[registry.mirror]])`);
      const entry: RegistryEntry = {
        prefix, location: location || prefix, blocked, file,
        insecure: bool(r.insecure, `${where} insecure`),
        mirrorByDigestOnly: bool(r['mirror-by-digest-only'], `${where} mirror-by-digest-only`),
        mirrors: mirrors.map((m, j) => {
          const mode = m['pull-from-mirror'] === undefined || m['pull-from-mirror'] === '' ? 'all' : str(m['pull-from-mirror'], `${where} mirror #${j + 1} pull-from-mirror`);
          if (mode !== 'all' && mode !== 'digest-only' && mode !== 'tag-only') bad(`${where} mirror #${j + 1} pull-from-mirror "${mode}" must be all, digest-only or tag-only`);
          return { location: str(m.location, `${where} mirror #${j + 1} location`), insecure: bool(m.insecure, `${where} mirror #${j + 1} insecure`), pullFromMirror: mode as MirrorEntry['pullFromMirror'] };
        }),
      };
      // A drop-in's table for a prefix replaces the earlier one (containers-registries.conf.d(5)).
      const at = conf.registries.findIndex((e) => e.prefix === prefix);
      if (at >= 0) conf.registries[at] = entry;
      else conf.registries.push(entry);
    });
  }
}

/** A name whose first component is not a registry host: `busybox`, `library/busybox`, `app:v1`. */
export function isShortName(input: string): boolean {
  const slash = input.indexOf('/');
  if (slash < 0) return true;
  const first = input.slice(0, slash);
  return !(first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
}

/** Does `name` (host/repo[:tag][@digest]) start with `prefix` and continue with a separator? */
function prefixMatches(prefix: string, name: string): boolean {
  if (prefix.startsWith('*.')) {
    const host = name.slice(0, name.indexOf('/') < 0 ? name.length : name.indexOf('/'));
    return host.endsWith(prefix.slice(1)) && host.length > prefix.length - 1;
  }
  if (!name.startsWith(prefix)) return false;
  const next = name.charAt(prefix.length);
  return next === '' || next === '/' || next === ':' || next === '@';
}

/** The [[registry]] table for a name: the longest matching prefix (a wildcard counts as its length). */
export function registryFor(conf: RegistriesConf, ref: ImageReference): RegistryEntry | undefined {
  const name = formatReference(ref);
  let best: RegistryEntry | undefined;
  for (const e of conf.registries) {
    if (!prefixMatches(e.prefix, name)) continue;
    if (!best || e.prefix.length > best.prefix.length) best = e;
  }
  return best;
}

/** Rewrite `name`'s leading `prefix` to `location`, and split it back into registry and repository. */
function rewrite(ref: ImageReference, prefix: string, location: string): { registry: string; repository: string } {
  const repoName = `${ref.registry}/${ref.repository}`;
  const rewritten = prefix.startsWith('*.') ? repoName : location + repoName.slice(prefix.length);
  const slash = rewritten.indexOf('/');
  if (slash < 0) throw new BerthError('E_REGISTRIES_CONF', `registries.conf: "${prefix}" -> "${location}" leaves "${rewritten}" without a repository`);
  return { registry: rewritten.slice(0, slash), repository: rewritten.slice(slash + 1) };
}

/**
 * Where to pull one fully qualified name from: its mirrors (the ones allowed
 * for a tag or a digest reference), then its location. `tlsVerify` from the
 * command line wins over every `insecure` (false: all may be plain HTTP;
 * true: none).
 */
export function pullSources(conf: RegistriesConf, ref: ImageReference, tlsVerify?: boolean): PullSource[] {
  const entry = registryFor(conf, ref);
  const insecure = (fromConf: boolean) => (tlsVerify === undefined ? fromConf : !tlsVerify);
  if (!entry) return [{ registry: ref.registry, repository: ref.repository, insecure: insecure(false), kind: 'primary' }];
  if (entry.blocked) {
    throw new BerthError('E_BLOCKED', `pulling ${formatReference(ref)} is blocked by ${entry.file} ([[registry]] prefix "${entry.prefix}", blocked = true)`);
  }
  const byDigest = ref.digest !== undefined;
  const sources: PullSource[] = [];
  if (!entry.mirrorByDigestOnly || byDigest) {
    for (const m of entry.mirrors) {
      if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
      if (m.pullFromMirror === 'tag-only' && byDigest) continue;
      sources.push({ ...rewrite(ref, entry.prefix, m.location), insecure: insecure(m.insecure), kind: 'mirror' });
    }
  }
  const primary = rewrite(ref, entry.prefix, entry.location);
  const moved = primary.registry !== ref.registry || primary.repository !== ref.repository;
  sources.push({ ...primary, insecure: insecure(entry.insecure), kind: moved ? 'location' : 'primary' });
  return sources;
}

/**
 * What to pull for what the user typed. A fully qualified name is itself; a
 * short name goes through [aliases] (its tag or digest kept), then
 * unqualified-search-registries (in order, podman's way: `enforcing` refuses
 * to guess between several without a terminal to ask, and berth never asks,
 * so it refuses; `permissive` and `disabled` try each). With no search
 * registries and no alias, berth keeps docker's default, docker.io.
 */
export function resolvePullCandidates(conf: RegistriesConf, input: string, tlsVerify?: boolean): PullCandidate[] {
  if (!isShortName(input)) {
    const reference = parseReference(input);
    return [{ reference, sources: pullSources(conf, reference, tlsVerify), resolvedBy: 'as given' }];
  }
  // Validate the short name itself first, so a malformed one is a usage error whatever the config says.
  parseReference(input);
  const at = input.indexOf('@');
  const nameAndTag = at >= 0 ? input.slice(0, at) : input;
  const colon = nameAndTag.lastIndexOf(':');
  const bare = colon > nameAndTag.lastIndexOf('/') ? nameAndTag.slice(0, colon) : nameAndTag;
  const suffix = input.slice(bare.length);
  const alias = conf.aliases.get(bare);
  if (alias) {
    const reference = parseReference(alias.value + suffix);
    return [{ reference, sources: pullSources(conf, reference, tlsVerify), resolvedBy: `alias "${bare}" in ${alias.file}` }];
  }
  const search = conf.unqualifiedSearchRegistries;
  if (search.length === 0) {
    const reference = parseReference(input);
    return [{ reference, sources: pullSources(conf, reference, tlsVerify), resolvedBy: 'docker.io, the default for a short name (no unqualified-search-registries)' }];
  }
  if (search.length > 1 && conf.shortNameMode === 'enforcing') {
    throw new BerthError('E_SHORT_NAME', `short name "${input}" is ambiguous: short-name-mode is enforcing and ${search.length} unqualified-search-registries could serve it (${search.join(', ')}); give a fully qualified name such as ${search[0]}/${input}, or add an alias in [aliases] (${conf.files.join(', ')})`);
  }
  return search.map((host) => {
    const reference = parseReference(`${host}/${input}`);
    return { reference, sources: pullSources(conf, reference, tlsVerify), resolvedBy: `unqualified-search-registries (${host})` };
  });
}
