import { describe, expect, it } from 'vitest';
import { candidateNames, imageFilter, parseLogText, signalNumber, splitRef, type ImageSummary } from '@berth/engine';
import { rewriteArgv } from '../../tools/berth/src/argv.ts';
import { renderTemplate } from '../../tools/berth/src/format.ts';
import { parseRestart } from '../../tools/berth/src/commands/create.ts';
import { commandModules } from '../../tools/berth/src/command-table.ts';

// The pure parts of berth, pinned without root: podman's command-line shapes,
// the k8s-file log format conmon writes, and the small formats users script against.
describe('berth command line', () => {
  it('moves global flags after the verb and puts -- between the image and its command', () => {
    expect(rewriteArgv(['--root', '/r', '--runtime=runc', 'run', '-it', '--rm', '-e', 'A=1', 'busybox', 'ls', '-l'])).toEqual(
      ['run', '--root', '/r', '--runtime=runc', '-it', '--rm', '-e', 'A=1', 'busybox', '--', 'ls', '-l']);
    expect(rewriteArgv(['exec', '-it', 'web', 'sh', '-c', 'echo -n'])).toEqual(['exec', '-it', 'web', '--', 'sh', '-c', 'echo -n']);
    expect(rewriteArgv(['--debug', 'pod', 'create', '--name', 'p'])).toEqual(['pod', 'create', '--debug', '--name', 'p']);
    expect(rewriteArgv(['container', 'rm', '-f', 'x'])).toEqual(['rm', '-f', 'x']);
    expect(rewriteArgv(['container', 'ls', '-a'])).toEqual(['ps', '-a']);
    expect(rewriteArgv(['run', '--name', 'x', 'img', '--', '-weird'])).toEqual(['run', '--name', 'x', 'img', '--', '-weird']);
  });

  it('parses restart policies as podman spells them', () => {
    expect(parseRestart('always')).toEqual({ name: 'always' });
    expect(parseRestart('on-failure:3')).toEqual({ name: 'on-failure', maxRetries: 3 });
    expect(parseRestart('on-failure')).toEqual({ name: 'on-failure', maxRetries: 0 });
    expect(() => parseRestart('sometimes')).toThrow(/invalid restart policy/);
  });

  it('reads signals by name, SIG-less name and number', () => {
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('kill')).toBe(9);
    expect(signalNumber('10')).toBe(10);
    expect(() => signalNumber('SIGNOPE')).toThrow(/invalid signal/);
  });
});

describe('the command table (berth loads only the module of the verb typed)', () => {
  it('lists, for every module, exactly the verbs its classes answer, and no verb twice', async () => {
    const seen = new Map<string, number>();
    for (const [i, m] of commandModules.entries()) {
      const classes = await m.load();
      // What argv.ts leaves of each path: `container X` is folded to `X` unless X has no short form.
      const answered = new Set(classes.flatMap((c) => (c.paths ?? []).map((p) => rewriteArgv([...p]).slice(0, p.length).join(' ') || p.join(' '))));
      expect([...answered].sort(), `module ${i} (${m.verbs.join(', ')})`).toEqual([...new Set(m.verbs)].sort());
      for (const v of m.verbs) {
        expect(seen.has(v), `verb "${v}" in two modules`).toBe(false);
        seen.set(v, i);
      }
    }
  });
});

describe('k8s-file logs', () => {
  it('joins partial lines per stream and keeps carriage returns of a terminal', () => {
    const text = [
      '2026-01-01T00:00:00.1Z stdout P hel',
      '2026-01-01T00:00:00.2Z stderr F oops',
      '2026-01-01T00:00:00.3Z stdout F lo',
      '2026-01-01T00:00:00.4Z stdout F tty line\r',
      'garbage',
    ].join('\n');
    expect(parseLogText(text)).toEqual([
      { time: '2026-01-01T00:00:00.2Z', stream: 'stderr', text: 'oops' },
      { time: '2026-01-01T00:00:00.1Z', stream: 'stdout', text: 'hello' },
      { time: '2026-01-01T00:00:00.4Z', stream: 'stdout', text: 'tty line\r' },
    ]);
  });
});

describe('images and templates', () => {
  const img = (names: string[], labels: Record<string, string>): ImageSummary => ({
    id: 'ab'.repeat(32), manifest: { mediaType: 'x', digest: `sha256:${'cd'.repeat(32)}`, size: 1 }, names, size: 1, labels, config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, layers: [],
  });

  it('filters by label as the guide\'s clean_images target does', () => {
    const f = imageFilter('label=my-project.purpose=app-image');
    expect(f(img(['a:1'], { 'my-project.purpose': 'app-image' }))).toBe(true);
    expect(f(img(['a:1'], { 'my-project.purpose': 'db' }))).toBe(false);
    expect(imageFilter('label=my-project.purpose')(img([], { 'my-project.purpose': '' }))).toBe(true);
    expect(imageFilter('dangling=true')(img([], {}))).toBe(true);
    expect(() => imageFilter('colour=red')).toThrow(/unknown key/);
  });

  it('names images as podman lists them and finds short names', () => {
    expect(splitRef('127.0.0.1:5000/guide/web:latest')).toEqual({ repository: '127.0.0.1:5000/guide/web', tag: 'latest' });
    expect(splitRef(undefined)).toEqual({ repository: '<none>', tag: '<none>' });
    expect(candidateNames('web')).toEqual(expect.arrayContaining(['web', 'docker.io/library/web:latest', 'localhost/web:latest']));
  });

  it('renders the Go template fields scripts use', () => {
    expect(renderTemplate('{{.ID}}\\t{{.Names}} {{.State.Pid}} {{.Nope}}', { Id: 'x', ID: 'abc', Names: ['n1', 'n2'], State: { Pid: 7 } })).toBe('abc\tn1,n2 7 <no value>');
  });
});
