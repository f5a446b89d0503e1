import { describe, expect, it } from 'vitest';
import { expand, parseContainerfile, parseKeyValues, splitWords } from '../src/containerfile.ts';
import { IgnoreMatcher } from '../src/ignore.ts';
import { localReference, storeCandidates } from '../src/names.ts';

describe('parseContainerfile', () => {
  it('joins continuations, drops comments inside them, and keeps the starting line', () => {
    const p = parseContainerfile([
      '# a comment',
      'ARG BASE=busybox',
      'FROM $BASE',
      '',
      'RUN echo a \\',
      '  # dropped comment',
      '',
      '  && echo b',
      'copy --chown=1:2 a b /dst/',
      'CMD ["sh", "-c", "echo hi"]',
      'ENTRYPOINT echo not json [',
    ].join('\n'));
    expect(p.globalArgs.map((i) => i.text)).toEqual(['ARG BASE=busybox']);
    expect(p.instructions.map((i) => [i.keyword, i.line])).toEqual([['FROM', 3], ['RUN', 5], ['COPY', 9], ['CMD', 10], ['ENTRYPOINT', 11]]);
    expect(p.instructions[1]!.args).toBe('echo a   && echo b');
    expect(p.instructions[2]!.flags).toEqual({ chown: '1:2' });
    expect(p.instructions[2]!.args).toBe('a b /dst/');
    expect(p.instructions[3]!.json).toEqual(['sh', '-c', 'echo hi']);
    expect(p.instructions[4]!.json).toBeUndefined();
  });

  it('honours the escape parser directive', () => {
    const p = parseContainerfile('# escape=`\nFROM scratch\nRUN a `\n b\nCOPY c:\\x\\ /d\n');
    expect(p.escape).toBe('`');
    expect(p.instructions[1]!.args).toBe('a  b');
    expect(p.instructions[2]!.args).toBe('c:\\x\\ /d');
  });

  it('names the file and line of what it refuses', () => {
    expect(() => parseContainerfile('FROM scratch\nRUN true\nFOO bar\n')).toThrow('Containerfile:3: unknown instruction FOO');
    expect(() => parseContainerfile('RUN true\nFROM scratch\n', 'Dockerfile')).toThrow('Dockerfile:1: RUN before the first FROM');
    expect(() => parseContainerfile('# only a comment\n')).toThrow(/no FROM instruction/);
    expect(() => parseContainerfile('FROM scratch\nCOPY --bogus=1 a b\n')).toThrow('Containerfile:2: COPY has no flag --bogus');
    expect(() => parseContainerfile('FROM scratch\nWORKDIR\n')).toThrow('Containerfile:2: WORKDIR needs arguments');
    expect(() => parseContainerfile('FROM scratch\nRUN --security=insecure make\n')).toThrow('Containerfile:2: RUN --security is a BuildKit extension berth does not support');
  });

  it('keeps every --mount of a RUN, in order, apart from its other flags', () => {
    const { instructions } = parseContainerfile('FROM scratch\nRUN --mount=type=cache,target=/c --network=none --mount=type=tmpfs,target=/t make\n');
    const run = instructions.find((i) => i.keyword === 'RUN')!;
    expect(run.mounts).toEqual(['type=cache,target=/c', 'type=tmpfs,target=/t']);
    expect(run.flags).toEqual({ network: 'none' });
    expect(run.args).toBe('make');
  });
});

describe('expand', () => {
  const vars = new Map([['A', 'x'], ['EMPTY', '']]);
  it('substitutes $VAR, ${VAR}, the :- and :+ forms, and keeps escaped dollars', () => {
    expect(expand('$A/${A}/${B:-def}/${EMPTY:-d2}/${A:+alt}/${B:+alt}/\\$A/$', vars, 'f:1')).toBe('x/x/def/d2/alt//$A/$');
  });
  it('refuses a bad substitution with its line', () => {
    expect(() => expand('${A', vars, 'Containerfile:4')).toThrow('Containerfile:4: missing "}"');
    expect(() => expand('${A?x}', vars, 'Containerfile:4')).toThrow('bad substitution');
  });
});

describe('words and key=value pairs', () => {
  it('splits with quotes and escapes', () => {
    expect(splitWords(`a "b c" 'd e' f\\ g`, 'f:1')).toEqual(['a', 'b c', 'd e', 'f g']);
    expect(() => splitWords('"open', 'f:2')).toThrow('f:2: unterminated double quote');
  });
  it('reads ENV/LABEL pairs and the legacy KEY VALUE form', () => {
    expect(parseKeyValues('a=1 b="two words" c=', 'ENV', 'f:1')).toEqual([['a', '1'], ['b', 'two words'], ['c', '']]);
    expect(parseKeyValues('KEY the rest of it', 'ENV', 'f:1')).toEqual([['KEY', 'the rest of it']]);
    expect(() => parseKeyValues('a=1 =2', 'LABEL', 'f:3')).toThrow('f:3: LABEL "=2": expected KEY=VALUE');
  });
});

describe('IgnoreMatcher', () => {
  const m = IgnoreMatcher.parse('# comment\n*.log\n**/*.key\nbuild\n!build/keep.txt\ndocs/*.md\n', '.containerignore');
  it('matches patterns, parents and exceptions; the last match decides', () => {
    expect(m.ignores('a.log')).toBe(true);
    expect(m.ignores('sub/a.log')).toBe(false);
    expect(m.ignores('deep/er/x.key')).toBe(true);
    expect(m.ignores('build/out.o')).toBe(true);
    expect(m.ignores('build/keep.txt')).toBe(false);
    expect(m.ignores('docs/a.md')).toBe(true);
    expect(m.ignores('docs/sub/a.md')).toBe(false);
    expect(m.ignores('src/main.c')).toBe(false);
  });
  it('still walks an excluded directory when an exception may re-include something in it', () => {
    expect(m.skips('build', true)).toBe(false);
    expect(m.skips('build/out.o', false)).toBe(true);
    expect(m.skips('build/keep.txt', false)).toBe(false);
    const plain = IgnoreMatcher.parse('build\n');
    expect(plain.skips('build', true)).toBe(true);
  });
});

describe('image names', () => {
  it('keeps names with a registry, puts short names under localhost/ as podman does', () => {
    expect(localReference('web')).toBe('localhost/web:latest');
    expect(localReference('team/web:1')).toBe('localhost/team/web:1');
    expect(localReference('127.0.0.1:5000/site/web')).toBe('127.0.0.1:5000/site/web:latest');
    expect(localReference('quay.io/x/y:2')).toBe('quay.io/x/y:2');
    expect(storeCandidates('web')).toEqual(['web', 'localhost/web:latest', 'docker.io/library/web:latest', 'web:latest']);
    expect(() => localReference('Bad Name')).toThrow(/invalid image reference/);
  });
});
