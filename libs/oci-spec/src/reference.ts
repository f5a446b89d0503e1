import { BerthError } from '@berth/cli-kit';
import { parseDigest } from '@berth/digest';

/**
 * Image references as podman, skopeo and docker read them (the grammar of
 * github.com/distribution/reference, which containers/image uses):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 *   domain    := host [ ":" port ]           (a first component with "." or ":", or "localhost")
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *
 * Normalization fills in what a user leaves out: no domain means docker.io,
 * a single docker.io path component lives under library/, and a reference
 * with neither tag nor digest means :latest. So `busybox` is
 * `docker.io/library/busybox:latest`.
 */
export interface ImageReference {
  /** The registry host, with the port when one was given: docker.io, 127.0.0.1:5000 */
  registry: string;
  /** The repository path inside the registry: library/busybox */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DefaultRegistry = 'docker.io';
export const DefaultTag = 'latest';

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const hostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/;
const maxNameLength = 255;

function invalid(input: string, why: string): never {
  throw new BerthError('E_REFERENCE', `invalid image reference "${input}": ${why}`, { exitCode: 2 });
}

/** Parse and normalize a reference; throws E_REFERENCE (exit 2) naming what is wrong. */
export function parseReference(input: string): ImageReference {
  if (input === '') invalid(input, 'it is empty');
  if (/\s/.test(input)) invalid(input, 'it contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    invalid(input, 'give the reference without a transport or scheme (busybox, host:port/name:tag), not a URL');
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (err) {
      invalid(input, (err as Error).message);
    }
  }

  // A tag is the part after the last ":" that follows the last "/": a ":"
  // before a "/" is the registry's port (127.0.0.1:5000/busybox).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) invalid(input, `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest === '') invalid(input, 'it has no repository name');

  let registry = DefaultRegistry;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // The first component is a registry when it looks like a host: it has a
    // dot or a port, is "localhost", or has capitals (repository names may not).
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!hostPattern.test(first)) invalid(input, `registry "${first}" is not a valid host[:port]`);
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io') registry = DefaultRegistry;
  if (registry === DefaultRegistry && !repository.includes('/')) repository = `library/${repository}`;

  if (repository === '') invalid(input, 'it has no repository name');
  for (const part of repository.split('/')) {
    if (part !== part.toLowerCase()) invalid(input, `repository name "${repository}" must be lowercase`);
    if (!pathComponent.test(part)) {
      invalid(input, `repository component "${part}" must be lowercase letters and digits, separated by ".", "_", "__" or "-"`);
    }
  }
  if (registry.length + 1 + repository.length > maxNameLength) invalid(input, `the name is longer than ${maxNameLength} characters`);

  if (tag === undefined && digest === undefined) tag = DefaultTag;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The repository with its registry: docker.io/library/busybox */
export function referenceName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The full normalized form: docker.io/library/busybox:latest, host/name@sha256:..., host/name:tag@sha256:... */
export function formatReference(ref: ImageReference): string {
  return `${referenceName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Parse and print back: the name berth records in index.json for what the user typed. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/**
 * The name podman and buildah give an image that is built, committed, tagged,
 * saved or loaded under a name the user typed: a name
 * without a registry is a local one, `web` is `localhost/web:latest`
 * (containers/common's short-name rules keep locally built images under
 * localhost/ so they never look like Docker Hub images); a name with a
 * registry is kept, with :latest when it has no tag.
 */
export function localReference(input: string): string {
  const ref = parseReference(input);
  const first = input.split('/')[0]!;
  const hasRegistry = input.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  if (hasRegistry) return formatReference(ref);
  const path = ref.registry === 'docker.io' && ref.repository.startsWith('library/') && !input.startsWith('library/') ? ref.repository.slice(8) : ref.repository;
  return formatReference({ ...ref, registry: 'localhost', repository: path });
}
