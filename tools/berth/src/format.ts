/** podman's human forms: "2 minutes ago", "Up 5 seconds", sizes in kB/MB (SI, as podman prints them). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  const d = Math.round(s / 86400);
  if (d < 14) return `${d} days`;
  if (d < 60) return `${Math.round(d / 7)} weeks`;
  if (d < 730) return `${Math.round(d / 30)} months`;
  return `${Math.round(d / 365)} years`;
}

export function ago(iso: string | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : `${humanDuration(Date.now() - t)} ago`;
}

export function humanSize(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** Columns padded like podman's tabwriter (at least two spaces between). */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n') + '\n';
}

/**
 * podman's tabwriter for its newer tables (stats, volume ls, network ls):
 * every column at least 12 wide, two spaces after its longest cell, the
 * last column unpadded. `table` above is the older, tighter one (ps, images).
 */
export function tabwriter(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(12, ...rows.map((r) => (r[i] ?? '').length + 2)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd()).join('\n') + '\n';
}

/** podman's prune prompt: QUESTION on stderr, yes only for y or yes on stdin (an empty or closed stdin is no). */
export async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline');
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin });
  try {
    const line = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y(es)?$/i.test(line.trim());
  } finally {
    rl.close();
  }
}

export function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 3) + '...' : s;
}

/**
 * The part of podman's Go templates that scripts use: `{{.Field}}` and
 * `{{.Field.Sub}}` placeholders in literal text (`\t` and `\n` as escapes).
 * Field names match case-insensitively, so `{{.ID}}` finds `Id`; arrays are
 * joined with commas; a missing field prints `<no value>`, as Go does.
 */
export function isTemplate(format: string): boolean {
  return /\{\{\s*\.[A-Za-z0-9_.]*\s*\}\}/.test(format);
}

export function renderTemplate(format: string, obj: unknown): string {
  const text = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return text.replace(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, path: string) => {
    let v: unknown = obj;
    for (const key of path === '' ? [] : path.split('.')) {
      if (v === null || typeof v !== 'object') { v = undefined; break; }
      const rec = v as Record<string, unknown>;
      const hit = key in rec ? key : Object.keys(rec).find((k) => k.toLowerCase() === key.toLowerCase());
      v = hit === undefined ? undefined : rec[hit];
    }
    if (v === undefined) return '<no value>';
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(',');
    return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  });
}
