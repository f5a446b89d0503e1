import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';

/**
 * Content digests as the OCI image spec defines them (descriptor.md#digests):
 * `algorithm:encoded`, where sha256 has 64 and sha512 128 lowercase hex chars.
 * Every blob berth keeps is addressed and verified by its digest.
 */
export type Digest = `${string}:${string}`;

const encodedLength: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest { algorithm: 'sha256' | 'sha512'; encoded: string }

export function parseDigest(value: string, what = 'digest'): ParsedDigest {
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(value);
  if (!m) throw new BerthError('E_DIGEST', `invalid ${what} "${value}": expected algorithm:hex, e.g. sha256:<64 hex>`);
  const algorithm = m[1]!;
  const encoded = m[2]!;
  const len = encodedLength[algorithm];
  if (len === undefined) throw new BerthError('E_DIGEST', `unsupported ${what} algorithm "${algorithm}" in ${value}: berth knows sha256 and sha512`);
  if (encoded.length !== len || !/^[a-f0-9]+$/.test(encoded)) {
    throw new BerthError('E_DIGEST', `invalid ${what} "${value}": ${algorithm} needs ${len} lowercase hex characters`);
  }
  return { algorithm: algorithm as 'sha256' | 'sha512', encoded };
}

export function isDigest(value: string): boolean {
  try { parseDigest(value); return true; } catch { return false; }
}

/** The path of a blob inside an OCI image layout: blobs/<alg>/<encoded>. */
export function blobRelPath(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return join('blobs', algorithm, encoded);
}

/** Hashes bytes as they pass, so a stream is verified while it is written. */
export class Digester {
  readonly algorithm: 'sha256' | 'sha512';
  private hash: Hash;
  size = 0;
  constructor(algorithm: 'sha256' | 'sha512' = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** The short form users see: the first 12 hex characters. */
export function shortId(digest: string): string {
  const i = digest.indexOf(':');
  return (i >= 0 ? digest.slice(i + 1) : digest).slice(0, 12);
}

/**
 * chainID per the image spec (config.md#layer-chainid): ChainID(L0) = DiffID(L0),
 * ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: readonly string[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    parseDigest(d, 'diffID');
    out.push(out.length === 0 ? (d as Digest) : digestOf(`${out[out.length - 1]} ${d}`));
  }
  return out;
}
