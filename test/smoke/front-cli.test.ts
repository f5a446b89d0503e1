import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool, tempDir } from '../helpers/run.ts';

// The berth front's own command line, before any verb runs: the overview,
// group help, podman's long forms, and podman's words for a verb it lacks.
// berth loads only the command module of the verb typed (command-table.ts),
// so these pin that every path still reaches its command.
describe('berth front command line', () => {
  const dir = tempDir('berth-front-cli-');
  afterAll(() => dir.cleanup());
  const berth = (...args: string[]) => runTool('berth', ['--root', join(dir.path, 'root'), '--runroot', join(dir.path, 'run'), ...args]);

  it('prints the overview of every verb, also after global flags', () => {
    const plain = runTool('berth', ['--help']);
    expect(plain.code).toBe(0);
    for (const verb of ['run', 'ps', 'pod create', 'volume create', 'network create', 'history', 'diff', 'export', 'import', 'pause', 'rename', 'version']) {
      expect(plain.stdout).toMatch(new RegExp(`^  berth ${verb} `, 'm'));
    }
    const withGlobals = berth('--help');
    expect(withGlobals.code).toBe(0);
    expect(withGlobals.stdout).toBe(plain.stdout);
    expect(berth('--version').stdout).toMatch(/^berth version \d+\.\d+\.\d+\n$/);
  });

  it('lists a group\'s verbs for `berth pod --help` and `berth volume --help`', () => {
    const pod = berth('pod', '--help');
    expect(pod.code).toBe(0);
    const verbs = pod.stdout.split('\n').filter((l) => l.startsWith('  berth ')).map((l) => l.trim().split(/\s{2,}/)[0]);
    expect(verbs.sort()).toEqual(['berth pod create', 'berth pod exists', 'berth pod inspect', 'berth pod list', 'berth pod rm', 'berth pod start', 'berth pod stop']);
    expect(berth('volume', '--help').stdout).toMatch(/^ {2}berth volume prune /m);
  });

  it('takes podman\'s long forms: container ls is ps, image ls is images', () => {
    const ls = berth('container', 'ls', '-a');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split(/\s{2,}/)[0]).toBe('CONTAINER ID');
    expect(berth('container', 'list', '-a').stdout).toBe(ls.stdout);
    expect(berth('image', 'ls').stdout).toBe(berth('images').stdout);
    expect(berth('volume', 'list').code).toBe(0);
  });

  it('names an unknown verb as podman does, exit 125', () => {
    for (const args of [['frob'], ['pod', 'frob'], ['frob', '--help']]) {
      const r = berth(...args);
      expect(r.code).toBe(125);
      expect(r.stderr).toBe(`Error: unrecognized command \`berth ${args.filter((a) => a !== '--help').join(' ')}\`\nTry 'berth --help' for more information\n`);
      expect(r.stdout).toBe('');
    }
  });
});
