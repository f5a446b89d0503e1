import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binaries, binPath, tempDir } from '../helpers/run.ts';

// Each bin/NAME.js is a launcher read by sh when run by path and by Node when
// run as `node bin/NAME.js` (libs/cli-kit/README.md, "Launchers"). Users and
// engines reach it all three ways: by path, through a symlink on their PATH
// (node_modules/.bin, /usr/local/bin), and through node.
describe('every binary starts the same by path, through a symlink, and under node', () => {
  const dir = tempDir('berth-launchers-');
  afterAll(() => dir.cleanup());

  it.each(binaries)('%s --version', (name) => {
    const link = join(dir.path, name);
    symlinkSync(binPath(name), link);
    const ways = [
      spawnSync(binPath(name), ['--version'], { encoding: 'utf8', timeout: 30_000 }),
      spawnSync(link, ['--version'], { encoding: 'utf8', timeout: 30_000, cwd: dir.path }),
      spawnSync('sh', ['-c', `PATH="${dir.path}:$PATH" ${name} --version`], { encoding: 'utf8', timeout: 30_000 }),
      spawnSync(process.execPath, [binPath(name), '--version'], { encoding: 'utf8', timeout: 30_000 }),
    ];
    for (const r of ways) {
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/\d+\.\d+\.\d+/);
      expect(r.stdout).toBe(ways[0]!.stdout);
    }
  });

  it('berth-runtime --version answers in runc\'s shape: the version line, then the runtime spec it implements', () => {
    const r = spawnSync(binPath('berth-runtime'), ['--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout).toMatch(/^berth-runtime version \d+\.\d+\.\d+\nspec: 1\.\d+\.\d+\n$/);
    expect(spawnSync('runc', ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^runc version .*\n(.*\n)*spec: 1\.\d+\.\d+/);
  });
});
