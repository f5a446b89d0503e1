import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxEntries, writeImage, type LayerEntry } from '../helpers/images.ts';
import { skopeoPush, type TestRegistry } from '../helpers/registry.ts';
import { runTool, runToolAsync, tempDir, type RunResult } from '../helpers/run.ts';

/**
 * The guide's two images, built from busybox: a tiny TCP "database" (busybox
 * nc answering each connection on 3306 with the env it was given) and a web
 * server (busybox httpd) whose CGI page asks the database at $DB_HOST and
 * prints the answer. Pushed to the test's loopback registry.
 */
export const DB_ANSWER = '#!/bin/sh\nprintf "db answers: user=%s\\n" "$DB_USER"\n';
export const WEB_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nprintf "web page; db at %s said: %s\\n" "$DB_HOST" "$(nc "$DB_HOST" 3306 </dev/null)"\n';

export async function pushGuideImages(reg: TestRegistry, layoutDir: string): Promise<{ db: string; web: string; plain: string }> {
  const base = busyboxEntries();
  const db: LayerEntry[] = [
    { path: 'usr/local/', type: 'dir' }, { path: 'usr/local/bin/', type: 'dir' },
    { path: 'usr/local/bin/answer', content: DB_ANSWER, mode: 0o755 },
  ];
  const web: LayerEntry[] = [
    { path: 'var/www/cgi-bin/', type: 'dir' },
    { path: 'var/www/cgi-bin/index.cgi', content: WEB_CGI, mode: 0o755 },
    { path: 'var/www/index.html', content: 'static page\n' },
  ];
  await writeImage(layoutDir, 'db:latest', {
    layers: [base, db], config: { Cmd: ['nc', '-ll', '-p', '3306', '-e', '/usr/local/bin/answer'], ExposedPorts: { '3306/tcp': {} } },
    labels: { 'my-project.purpose': 'db-image' },
  });
  await writeImage(layoutDir, 'web:latest', {
    layers: [base, web], config: { Cmd: ['httpd', '-f', '-p', '80', '-h', '/var/www'], ExposedPorts: { '80/tcp': {} }, StopSignal: 'SIGTERM' },
    labels: { 'my-project.purpose': 'app-image' },
  });
  await writeImage(layoutDir, 'plain:latest', { layers: [base] });
  const refs = { db: `${reg.host}/guide/db:latest`, web: `${reg.host}/guide/web:latest`, plain: `${reg.host}/library/busybox:latest` };
  skopeoPush(layoutDir, 'db:latest', refs.db);
  skopeoPush(layoutDir, 'web:latest', refs.web);
  skopeoPush(layoutDir, 'plain:latest', refs.plain);
  return refs;
}

/** A berth with its own data root and run root, so suites never meet (and never touch /var/lib/berth or /run/berth). */
export class Berth {
  readonly dir = tempDir('berth-engine-');
  readonly root = join(this.dir.path, 'root');
  readonly runRoot = join(this.dir.path, 'run');
  constructor(readonly runtime?: string) {}

  args(args: string[]): string[] {
    return ['--root', this.root, '--runroot', this.runRoot, ...(this.runtime ? ['--runtime', this.runtime] : []), ...args];
  }

  run(...args: string[]): RunResult {
    return runTool('berth', this.args(args), { timeoutMs: 90_000 });
  }

  runAsync(...args: string[]): Promise<RunResult> {
    return runToolAsync('berth', this.args(args), { timeoutMs: 90_000 });
  }

  /** Like run, but a failure throws with berth's stderr in the message. */
  ok(...args: string[]): string {
    const r = this.run(...args);
    if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Remove every container and pod this berth made, then the temp dir. */
  async cleanup(): Promise<void> {
    this.run('rm', '-f', '-a');
    for (const id of this.run('pod', 'list', '-q', '--no-trunc').stdout.split('\n').filter(Boolean)) this.run('pod', 'rm', '-f', id);
    // Monitors of this root still alive (a failed test): by pid, only ours.
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.root)) process.kill(Number(pid), 'SIGKILL');
      } catch { /* gone */ }
    }
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(this.dir.path));
    for (const m of mounts.sort((a, b) => b.length - a.length)) runUmount(m);
    rmSync(this.dir.path, { recursive: true, force: true });
  }
}

function runUmount(path: string): void {
  try { execFileSync('umount', ['-l', path], { stdio: 'ignore' }); } catch { /* not mounted */ }
}

export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(async (r) => ({ status: r.status, body: await r.text() }));
}
