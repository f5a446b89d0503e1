import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '@berth/cli-kit';
import { writeFileAtomic } from '@berth/content';
import { digestOf } from '@berth/digest';
import type { Descriptor } from '@berth/oci-spec';

/**
 * The build cache: ROOT/builder/cache/<key>.json, one file per step. A key
 * is the hash of the previous step's key and this step's instruction (with
 * its expanded arguments, the environment it runs with, and for COPY/ADD the
 * digest of the copied content), so a key names one exact history: change a
 * step and every later key changes too. An entry keeps the step's layer and
 * its history timestamp; reusing the timestamp makes an unchanged rebuild
 * produce the same config, hence the same image id, as podman's cache does.
 */
export interface CacheEntry {
  created: string;
  layer?: Descriptor;
  diffId?: string;
}

export class BuildCache {
  readonly dir: string;
  constructor(dataRoot: string) { this.dir = join(dataRoot, 'builder', 'cache'); }

  static key(parent: string, ...parts: string[]): string {
    return digestOf([parent, ...parts].join('\n'));
  }

  private path(key: string): string { return join(this.dir, `${key.replace(':', '-')}.json`); }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      const doc = JSON.parse(await readFile(this.path(key), 'utf8')) as CacheEntry;
      return typeof doc.created === 'string' ? doc : undefined;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  async put(key: string, entry: CacheEntry): Promise<void> {
    await writeFileAtomic(this.path(key), JSON.stringify(entry));
  }
}
