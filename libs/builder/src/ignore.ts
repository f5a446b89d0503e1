import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '@berth/cli-kit';

/**
 * `.containerignore` / `.dockerignore` (containerignore(5)): one pattern a
 * line, `#` comments, Go filepath.Match syntax (`*`, `?`, `[...]`) plus `**`
 * for any number of directories, a leading `!` re-includes. The last
 * matching pattern decides. A pattern that matches a directory excludes
 * everything below it. Paths are relative to the context, with `/`.
 */
export interface IgnoreRule { pattern: string; negate: boolean; re: RegExp }

export class IgnoreMatcher {
  constructor(readonly rules: IgnoreRule[], readonly source: string | undefined) {}

  static parse(text: string, source?: string): IgnoreMatcher {
    const rules: IgnoreRule[] = [];
    for (const raw of text.split(/\r?\n/)) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const negate = line.startsWith('!');
      if (negate) line = line.slice(1).trim();
      line = cleanPath(line);
      if (line === '') continue;
      rules.push({ pattern: line, negate, re: globToRegExp(line) });
    }
    return new IgnoreMatcher(rules, source);
  }

  /** Read CONTEXT/.containerignore, else CONTEXT/.dockerignore; none means nothing is ignored. */
  static async load(context: string): Promise<IgnoreMatcher> {
    for (const name of ['.containerignore', '.dockerignore']) {
      try {
        return IgnoreMatcher.parse(await readFile(join(context, name), 'utf8'), name);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return new IgnoreMatcher([], undefined);
  }

  /** Is this context-relative path excluded? A path is excluded when it or a parent directory matches. */
  ignores(relPath: string): boolean {
    if (this.rules.length === 0) return false;
    const parts = cleanPath(relPath).split('/');
    let excluded = false;
    for (const rule of this.rules) {
      // Match the path itself and each of its parents: "dir" excludes dir/x.
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) {
          excluded = !rule.negate;
          break;
        }
      }
    }
    return excluded;
  }

  /**
   * Must a walk skip this entry? An excluded directory is still walked when
   * a `!` pattern may re-include something below it (`build` then
   * `!build/keep.txt`); its excluded files are skipped one by one.
   */
  skips(relPath: string, isDir: boolean): boolean {
    if (!this.ignores(relPath)) return false;
    return !(isDir && this.rules.some((r) => r.negate));
  }
}

function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') { out.pop(); continue; }
    out.push(part);
  }
  return out.join('/');
}

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` everything.
        i++;
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close < 0) { re += '\\['; continue; }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith('^')) body = '!' + body.slice(1);
      re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
      i = close;
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else re += c.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
