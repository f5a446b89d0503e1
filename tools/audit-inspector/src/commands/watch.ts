import { resolve } from 'node:path';
import { BerthCommand, BerthError, Command, Option, log } from '@berth/cli-kit';
import { addWatch, auditStatus, listRules, removeWatches, setAuditEnabled } from '@berth/audit';

export class WatchCommand extends BerthCommand {
  static override paths = [['watch']];

  static override usage = Command.Usage({
    description: 'Add an audit watch on a file or directory (auditctl -w PATH -p PERM -k KEY)',
    details: `
      Adds a rule to the kernel's syscall-exit filter list that makes a record for every syscall touching PATH with the given kinds of access (\`--perm\`, letters from rwxa: read, write, execute, attribute change; default rwxa, as auditctl -w). Audit is enabled first when it is off (the kernel makes no records while it is disabled); the document says so with "enabledAudit": true.

      stdout: {"kind":"audit-watch","path":...,"perm":...,"key":...,"added":bool,"enabledAudit":bool}.
    `,
    examples: [
      ['The guide\'s experiment: watch /etc/shadow', '$0 watch /etc/shadow --key shadow'],
      ['Only changes, not reads', '$0 watch /etc/shadow --perm wa --key shadow-write'],
    ],
  });

  static override explain = `
watch sends AUDIT_ADD_RULE over a NETLINK_AUDIT socket, with a struct
audit_rule_data for the exit filter list (AUDIT_FILTER_EXIT), action
AUDIT_ALWAYS, every syscall in the mask, and the fields AUDIT_WATCH (the path),
AUDIT_PERM (r w x a) and AUDIT_FILTERKEY (the key): the rule auditctl -w builds.
The kernel then emits, for each matching syscall, a SYSCALL record (with pid,
ppid, auid, ses, uid, exe, key) and CWD, PATH and PROCTITLE records sharing its
serial. If audit is disabled (AUDIT_GET says enabled=0) it sends AUDIT_SET
enabled=1 first. Needs CAP_AUDIT_CONTROL, in the initial user namespace.
`;

  watchPath = Option.String({ name: 'PATH' });
  key = Option.String('-k,--key', { description: 'Key stamped on the records (ausearch -k KEY, berth-audit events --key KEY)' });
  perm = Option.String('-p,--perm', 'rwxa', { description: 'Access kinds to record: letters from rwxa (default rwxa, as auditctl)' });

  async perform(): Promise<unknown> {
    const path = resolve(this.watchPath);
    const r = addWatch(path, { perm: this.perm, key: this.key ?? null });
    if (r.enabledAudit) log.info('audit was disabled: enabled it (auditctl -e 1); `berth-audit unwatch --disable` turns it off again');
    if (r.existed) log.info(`the same watch on ${path} exists already`);
    return { kind: 'audit-watch', path, perm: r.rule.perm, key: r.rule.key, added: !r.existed, enabledAudit: r.enabledAudit };
  }
}

export class UnwatchCommand extends BerthCommand {
  static override paths = [['unwatch']];

  static override usage = Command.Usage({
    description: 'Remove the audit watches on a path (auditctl -W PATH)',
    details: `
      Removes every watch on PATH (only those with \`--key KEY\` when given). With \`--disable\`, turns audit off afterwards when no rule is left. Exit 1 when there is no such watch.

      stdout: {"kind":"audit-unwatch","path":...,"removed":[{"path","perm","key"}],"disabledAudit":bool}.
    `,
    examples: [['Undo the guide\'s experiment', '$0 unwatch /etc/shadow --key shadow --disable']],
  });

  static override explain = `
unwatch lists the rules (AUDIT_LIST_RULES), picks the watches on PATH (and
KEY), and sends each back with AUDIT_DEL_RULE exactly as the kernel listed it:
the kernel deletes a rule only when every field matches.
`;

  watchPath = Option.String({ name: 'PATH' });
  key = Option.String('-k,--key', { description: 'Remove only the watch with this key' });
  disable = Option.Boolean('--disable', false, { description: 'Turn audit off (auditctl -e 0) when no rule is left' });

  async perform(): Promise<unknown> {
    const path = resolve(this.watchPath);
    const removed = removeWatches(path, { key: this.key ?? null });
    if (removed.length === 0) {
      throw new BerthError('E_NO_WATCH', `no audit watch on ${path}${this.key ? ` with key "${this.key}"` : ''} (berth-audit rules lists them)`);
    }
    let disabledAudit = false;
    if (this.disable && listRules().length === 0 && auditStatus().enabled === 1) {
      setAuditEnabled(0);
      disabledAudit = true;
    }
    return { kind: 'audit-unwatch', path, removed: removed.map((r) => ({ path: r.path, perm: r.perm, key: r.key })), disabledAudit };
  }
}

export class RulesCommand extends BerthCommand {
  static override paths = [['rules']];

  static override usage = Command.Usage({
    description: 'Show the audit status and the rules loaded in the kernel (auditctl -s; auditctl -l)',
    details: `stdout: {"kind":"audit-rules","status":{"enabled","pid","lost","backlog",...},"rules":[{"kind","path","perm","key"}]}. A rule that is not a file watch is listed with kind "other".`,
  });

  static override explain = `
rules sends AUDIT_GET (the struct audit_status: enabled, failure mode, pid of
the registered auditd, rate and backlog limits, records lost) and
AUDIT_LIST_RULES (one struct audit_rule_data per rule, then NLMSG_DONE).
`;

  async perform(): Promise<unknown> {
    const status = auditStatus();
    return { kind: 'audit-rules', status, rules: listRules().map((r) => ({ kind: r.kind, path: r.path || null, perm: r.perm || null, key: r.key })) };
  }
}
