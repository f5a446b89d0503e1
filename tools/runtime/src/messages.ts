/**
 * What the runtime (main process) and the init stage tell each other over the
 * sync socket: one JSON document per line. The numbered sync points are the
 * same in main-process.ts and init-process.ts.
 *
 *   sync 1. init -> main   Hello(pid)     (node is up inside the new user/pid namespaces; pid is its host pid)
 *   sync 2. main -> init   Setup          (id maps written, cgroup joined; here is what to build)
 *   sync 3. init -> main   RootfsReady    (mounts done, before pivot_root: createRuntime hooks run now)
 *   sync 4. main -> init   Continue
 *   sync 5. init -> main   InitReady      (all set up, waiting at the exec fifo)  | ExecFailed(reason)
 */
import type { Process, RuntimeSpec } from '@berth/oci-spec';

export interface SetupMessage {
  type: 'Setup';
  mode: 'create' | 'exec';
  id: string;
  spec: RuntimeSpec;
  /** exec: the process to run (create uses spec.process). */
  process?: Process;
  rootfs: string;
  bundle: string;
  /** create: the gate start opens. */
  fifo?: string;
  /** Namespace fds the init joins itself (fd number by namespace type). */
  joinFds: Record<string, number>;
  /** Namespaces the init creates itself (all but user and pid, which exist before node starts). */
  unshare: string[];
  preserveFds: number;
  consoleSocket?: string;
  /** Extra environment (LISTEN_FDS, NOTIFY_SOCKET=/run/notify/notify.sock) for the container process. */
  extraEnv: string[];
  noPivot: boolean;
}

export type InitMessage =
  | { type: 'Hello'; pid: number }
  | { type: 'RootfsReady' }
  | { type: 'InitReady' }
  | { type: 'ExecFailed'; reason: string };

export type MainMessage = SetupMessage | { type: 'Continue' };

/** Split a stream of newline-terminated JSON documents. */
export class LineReader<T> {
  private buffer = '';
  private queue: T[] = [];
  private waiters: Array<{ resolve: (m: T | undefined) => void }> = [];
  private closed = false;

  push(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() === '') continue;
      const msg = JSON.parse(line) as T;
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.resolve(undefined);
  }

  /** The next message, or undefined when the other side closed. */
  next(): Promise<T | undefined> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push({ resolve }));
  }
}
