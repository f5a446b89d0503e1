import { join } from 'node:path';
import { writeBusyboxImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';

/** What the build suites start from: a temp dir, a store root in it, and a busybox image skopeo pushed to a real loopback registry. */
export interface BuildWorld {
  registry: TestRegistry;
  work: { path: string; cleanup: () => void };
  root: string;
  /** The pushed busybox, for FROM lines. */
  base: string;
  stop: () => Promise<void>;
}

export async function startBuildWorld(prefix: string): Promise<BuildWorld> {
  const work = tempDir(prefix);
  const registry = await startRegistry();
  const seed = join(work.path, 'seed');
  await writeBusyboxImage(seed, 'busybox:latest');
  const base = `${registry.host}/library/busybox:latest`;
  skopeoPush(seed, 'busybox:latest', base);
  return {
    registry, work, root: join(work.path, 'root'), base,
    stop: async () => {
      await registry.stop();
      work.cleanup();
    },
  };
}
