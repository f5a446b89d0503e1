/**
 * WWW-Authenticate challenges (RFC 7235 section 4.1) as registries send them:
 *   Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull",error="insufficient_scope"
 *   Basic realm="registry"
 * A header may hold several challenges separated by commas, so parameters are
 * read as a small tokenizer rather than split on ",".
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    let current: Challenge | undefined;
    const s = value;
    while (i < s.length) {
      while (i < s.length && (s[i] === ' ' || s[i] === ',' || s[i] === '\t')) i++;
      const tokenStart = i;
      while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i]!)) i++;
      const token = s.slice(tokenStart, i);
      if (token === '') { i++; continue; }
      let j = i;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=') {
        // key=value or key="quoted value" belongs to the current challenge.
        i = j + 1;
        while (i < s.length && s[i] === ' ') i++;
        let val = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i];
            i++;
          }
          i++;
        } else {
          const vs = i;
          while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
          val = s.slice(vs, i);
        }
        if (current) current.params[token.toLowerCase()] = val;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
