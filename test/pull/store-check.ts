import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/**
 * What "nothing unverified left in the store" means, checked from outside:
 * no temp files in ingest/, every file in blobs/sha256 hashes to its name,
 * and index.json is what it was before the failed pull.
 */
export function indexText(store: string): string | undefined {
  const p = join(store, 'index.json');
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
}

export function blobNames(store: string): string[] {
  const dir = join(store, 'blobs', 'sha256');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

export function expectStoreClean(store: string, indexBefore: string | undefined): void {
  const ingest = join(store, 'ingest');
  if (existsSync(ingest)) expect(readdirSync(ingest), 'ingest/ holds temp files').toEqual([]);
  for (const name of blobNames(store)) {
    const actual = createHash('sha256').update(readFileSync(join(store, 'blobs', 'sha256', name))).digest('hex');
    expect(actual, `blob ${name} does not match its digest`).toBe(name);
  }
  expect(indexText(store)).toBe(indexBefore);
}
