import type { Descriptor, Platform } from '@berth/oci-spec';

/** Where a build gets a FROM image that is not in the store, and where push sends one. */
export interface RegistryAccess {
  /** --tls-verify=false: plain HTTP and unverified certificates allowed. */
  insecure?: boolean;
  /** --creds USER:PASSWORD */
  creds?: string;
  /** --authfile FILE */
  authfile?: string;
  /** --cert-dir DIR: the registry's CAs and client pair, instead of its certs.d directory */
  certDir?: string;
}

export type ImageFormat = 'oci' | 'docker';

export interface BuildOptions {
  /** The storage root (ROOT/images, ROOT/snapshots). */
  dataRoot: string;
  /** The build context directory. */
  context: string;
  /** -f: the Containerfile (default CONTEXT/Containerfile, else CONTEXT/Dockerfile); `-` is stdin text given in containerfileText. */
  file?: string;
  /** The Containerfile's text, when it does not come from a file. */
  containerfileText?: string;
  /** -t, every name the image gets (normalized as podman does: `web` is localhost/web:latest). */
  tags: string[];
  format: ImageFormat;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** --no-cache: run every step again. */
  noCache: boolean;
  /** --layers=false: no cache lookups or records (podman's default is true). */
  layers: boolean;
  /** The OCI runtime binary for RUN (default berth-runtime, BERTH_RUNTIME). */
  runtime?: string;
  /** RUN's network: host (default, as podman build) or none. */
  network: 'host' | 'none';
  /** FROM images that must be pulled. */
  registry: RegistryAccess;
  /** --pull=always|missing|never (default missing). */
  pull?: 'always' | 'missing' | 'never';
  /** Where RUN's output and the STEP lines go (default process.stderr). */
  output?: NodeJS.WritableStream;
  /** -q: no STEP lines, only RUN's output. */
  quiet?: boolean;
}

/** What berth-build prints: the same shape as berth-pull's image document. */
export interface BuiltImage {
  kind: 'image';
  /** The first -t name, or undefined for an untagged build. */
  reference: string | undefined;
  /** Every name given with -t. */
  tags: string[];
  store: string;
  /** The image id as podman and `berth images` show it: the config digest. */
  id: string;
  manifest: Descriptor;
  config: Descriptor;
  platform: Platform;
  layers: Descriptor[];
}

export interface TagResult {
  kind: 'tag';
  store: string;
  source: string;
  manifest: Descriptor;
  tags: string[];
}

export interface PushOptions {
  dataRoot: string;
  /** The image in the store: a name or an id prefix. */
  source: string;
  /** Where it goes (default: the source name), a reference with or without docker://. */
  destination?: string;
  registry: RegistryAccess;
  /** --format: convert media types on the way (default: as stored). */
  format?: ImageFormat;
  /** --remove-signatures: accepted; berth makes no signatures, so there are none to remove. */
  removeSignatures?: boolean;
  /** Blobs over this size are uploaded in chunks (PATCH); default 32 MiB. */
  chunkSize?: number;
  /** Blobs uploaded at once (default 6, as skopeo). */
  jobs?: number;
  /** --digestfile: write the pushed manifest digest there. */
  digestFile?: string;
  output?: NodeJS.WritableStream;
  quiet?: boolean;
}

export interface PushResult {
  kind: 'push';
  source: string;
  destination: string;
  manifest: Descriptor;
  /** Each blob, and how it got there; `requests` counts the PUT/PATCH requests that carried its bytes. */
  blobs: Array<{ digest: string; size: number; how: 'uploaded' | 'exists' | 'mounted'; requests: number }>;
}
