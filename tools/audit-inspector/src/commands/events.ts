import { existsSync } from 'node:fs';
import { BerthCommand, BerthUsageError, Command, Option, log, t } from '@berth/cli-kit';
import {
  AuditUnavailableError, ContainerAttributor, DEFAULT_AUDIT_LOG, auditStatus, buildEvent, followKernel, followLogFile, parseSince,
  readLogFile, userName, type AuditEvent, type AuditRecord, type Attribution,
} from '@berth/audit';
import { byFrontName, runtimeRoots } from '../roots.ts';

/** One NDJSON line: the event, who (login user) and where (container) it came from. */
export interface EventLine {
  kind: 'audit-event';
  time: string;
  serial: number;
  key: string | null;
  container: Attribution | null;
  auid: number | null;
  auidUnset: boolean | null;
  user: string | null;
  ses: number | null;
  pid: number | null;
  ppid: number | null;
  uid: number | null;
  euid: number | null;
  comm: string | null;
  exe: string | null;
  syscall: AuditEvent['syscall'];
  cwd: string | null;
  paths: AuditEvent['paths'];
  proctitle: string | null;
  types: string[];
  records: AuditEvent['records'];
}

export class EventsCommand extends BerthCommand {
  static override paths = [['events']];

  static override usage = Command.Usage({
    description: 'Print kernel audit events as NDJSON, each attributed to its container and login user',
    details: `
      Each line is one event: the records sharing a serial (SYSCALL, CWD, PATH, PROCTITLE...) grouped, with the fields people ask about lifted out (key, syscall, pid, ppid, auid and its user name, ses, uid, comm, exe, paths), and \`container\`: the container the process ran in, found by its pid (the container's init), its parent, its pid namespace or its cgroup against the runtime state (berth-runtime's, and every \`--runtime-root\`), or null.

      Sources: with \`--follow\`, live records from the kernel's audit netlink multicast group (AUDIT_NLGRP_READLOG; read-only, does not displace auditd); when that is refused, auditd's log as it grows. Without \`--follow\`, the history in auditd's log (\`--log-file\`, default ${DEFAULT_AUDIT_LOG}); the kernel keeps none. \`--since\` selects events from that time on (ausearch -ts words: recent, today, boot...; ISO 8601; epoch seconds; or 10m ago); with \`--follow\` the log's history since then comes first when the log exists.

      Filters: \`--key KEY\` (the rule's key), \`--container NAME|ID\` (a name given to \`berth run --name\`, an id or an id prefix). \`--count N\` stops after N events, \`--timeout SECONDS\` stops following after that long. While following, a line "following ..." on stderr says the socket is listening.
    `,
    examples: [
      ['The guide\'s experiment, live', '$0 events --follow --key shadow'],
      ['What containers did in the last 10 minutes (auditd running)', '$0 events --since recent'],
      ['Wait for one event from container web1', '$0 events --follow --container web1 --count 1'],
    ],
  });

  static override explain = `
The kernel's audit subsystem emits records for the rules loaded (berth-audit
watch): text like "audit(1700000000.123:4108): arch=c000003e syscall=257 ...
ppid=2712 pid=3727 auid=1000 ... key="shadow"", one netlink message per
record, the record type in nlmsg_type (1300 SYSCALL, 1302 PATH, 1307 CWD,
1327 PROCTITLE, 1320 EOE ends an event). Any process with CAP_AUDIT_READ can
join the NETLINK_AUDIT multicast group AUDIT_NLGRP_READLOG and get a copy of
every record; that is what --follow does. The auid is the login uid the
kernel copied from the process (/proc/PID/loginuid), 4294967295 when no login
set it. The kernel knows no containers: the container is found by comparing
the record's pid and ppid with the init pids in the OCI runtimes' state.json
and, for live processes, their pid namespace and cgroup with the containers'.
`;

  follow = Option.Boolean('-f,--follow', false, { description: 'Keep reading live records from the kernel' });
  since = Option.String('--since', { description: 'Only events from this time: recent, today, boot, ISO 8601, epoch seconds, 10m (ago)' });
  container = Option.String('--container', { description: 'Only events from this container (berth name, id or id prefix)' });
  key = Option.String('-k,--key', { description: 'Only events of rules with this key' });
  runtimeRoot = Option.Array('--runtime-root', [], { description: 'Another OCI runtime state root for attribution (runc: /run/runc); repeatable' });
  source = Option.String('--source', 'auto', { description: 'auto, kernel (netlink) or log (auditd\'s file)', validator: t.isEnum(['auto', 'kernel', 'log'] as const) });
  logFile = Option.String('--log-file', DEFAULT_AUDIT_LOG, { description: `auditd's log (default ${DEFAULT_AUDIT_LOG})` });
  count = Option.String('--count', { description: 'Stop after this many events', validator: t.cascade(t.isNumber(), [t.isInteger(), t.isPositive()]) });
  timeout = Option.String('--timeout', { description: 'Stop following after this many seconds', validator: t.cascade(t.isNumber(), [t.isPositive()]) });

  private printed = 0;

  async perform(): Promise<unknown> {
    let since: number | undefined;
    if (this.since !== undefined) {
      try {
        since = parseSince(this.since);
      } catch (err) {
        throw new BerthUsageError(`--since: ${(err as Error).message}`);
      }
    }
    if (!this.follow && this.source === 'kernel') throw new BerthUsageError('--source kernel needs --follow: the kernel keeps no history, only auditd\'s log does');
    // A berth name (`berth run --name web1`) filters by the id the runtime knows.
    let roots = runtimeRoots(this.runtimeRoot);
    if (this.container !== undefined) {
      const named = byFrontName(this.container, this.runtimeRoot, this.dataRoot);
      this.container = named.target;
      roots = named.roots;
    }
    const attributor = new ContainerAttributor(roots);
    attributor.refresh();

    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const timer = this.timeout !== undefined ? setTimeout(stop, this.timeout * 1000) : undefined;
    // Remember each running container's namespaces and cgroups while it runs,
    // so events from its processes still match after its init is gone.
    const refresher = this.follow ? setInterval(() => attributor.refreshIfStale(500), 500) : undefined;
    try {
      if (!this.follow) {
        for (const records of readLogFile(this.logFile)) if (!this.emit(records, attributor, since, abort)) break;
        return undefined;
      }
      if (since !== undefined && this.source !== 'kernel' && existsSync(this.logFile) && this.source === 'auto') {
        for (const records of readLogFile(this.logFile)) if (!this.emit(records, attributor, since, abort)) return undefined;
      }
      for await (const records of this.liveSource(abort.signal)) {
        if (!this.emit(records, attributor, since, abort)) break;
      }
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
      if (refresher) clearInterval(refresher);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  private async *liveSource(signal: AbortSignal): AsyncGenerator<AuditRecord[]> {
    const opts = { signal, onOverrun: (n: number) => log.warn(`the kernel dropped records for this reader (socket buffer full ${n} time(s))`) };
    if (this.source === 'log') {
      yield* followLogFile(this.logFile, { ...opts, onReady: () => log.info(`following ${this.logFile}`) });
      return;
    }
    let kernel: AsyncGenerator<AuditRecord[]>;
    try {
      kernel = followKernel({ ...opts, onReady: () => this.kernelReady() });
      const first = await kernel.next();
      if (!first.done) yield first.value;
      if (first.done) return;
    } catch (err) {
      if (err instanceof AuditUnavailableError && this.source === 'auto' && existsSync(this.logFile)) {
        log.warn(`${err.message}; reading auditd's log ${this.logFile} instead`);
        yield* followLogFile(this.logFile, { ...opts, onReady: () => log.info(`following ${this.logFile}`) });
        return;
      }
      throw err;
    }
    yield* kernel;
  }

  private kernelReady(): void {
    try {
      const s = auditStatus();
      if (s.enabled === 0) log.warn('audit is disabled (enabled 0): the kernel makes no records until it is enabled (berth-audit watch does, or auditctl -e 1)');
    } catch {
      // AUDIT_GET needs CAP_AUDIT_CONTROL; reading does not. Not knowing is fine.
    }
    log.info('following kernel audit records (netlink AUDIT_NLGRP_READLOG)');
  }

  /** Print one event if it passes the filters; false when --count is reached. */
  private emit(records: AuditRecord[], attributor: ContainerAttributor, since: number | undefined, abort: AbortController): boolean {
    const ev = buildEvent(records);
    if (since !== undefined && Date.parse(ev.time) / 1000 < since) return true;
    if (this.key !== undefined && ev.key !== this.key) return true;
    const container = ev.pid !== null || ev.ppid !== null ? attributor.attribute(ev.pid, ev.ppid) : null;
    if (this.container !== undefined && !(container && (container.id === this.container || container.id.startsWith(this.container)))) return true;
    const line: EventLine = {
      kind: 'audit-event', time: ev.time, serial: ev.serial, key: ev.key, container,
      auid: ev.auid, auidUnset: ev.auidUnset, user: ev.auidUnset ? null : userName(ev.auid), ses: ev.ses,
      pid: ev.pid, ppid: ev.ppid, uid: ev.uid, euid: ev.euid, comm: ev.comm, exe: ev.exe, syscall: ev.syscall,
      cwd: ev.cwd, paths: ev.paths, proctitle: ev.proctitle, types: ev.types, records: ev.records,
    };
    this.context.stdout.write(JSON.stringify(line) + '\n');
    this.printed++;
    if (this.count !== undefined && this.printed >= this.count) {
      abort.abort();
      return false;
    }
    return true;
  }
}
