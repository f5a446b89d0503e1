import { BerthCommand, BerthUsageError, Command, Option, t } from '@berth/cli-kit';
import { formatInspectTable, inspectProcess, requireProcess, resolveTarget } from '@berth/audit';
import { byFrontName } from '../roots.ts';

export class InspectCommand extends BerthCommand {
  static override paths = [['inspect']];

  static override usage = Command.Usage({
    description: 'Show what the kernel knows about a container or process: login uid, credentials, capabilities, seccomp, namespaces, cgroups, LSM label, ancestry',
    details: `
      TARGET is a pid, the name of one of your \`berth run --name\` containers, or a container id (a unique prefix will do, e.g. the first 12 characters). A name is looked up in the berth front's records (the data root's containers/*/container.json); a container id is looked up in berth-runtime's state (ROOT/ID/state.json, default /run/berth/runtime) and in every \`--runtime-root\` given (runc's /run/runc works too: its state.json is read as well); the container's init pid is inspected.

      Everything comes from /proc/PID: loginuid and sessionid (4294967295 = unset), status (Uid/Gid/Groups, CapInh/CapPrm/CapEff/CapBnd/CapAmb decoded to names, NoNewPrivs, Seccomp and Seccomp_filters), uid_map/gid_map, ns/* inodes, cgroup (each v1 hierarchy and the v2 "0::" line, with the limits found in those directories), attr/current (SELinux or AppArmor label) and stat (the parent chain up to pid 1). Capabilities and namespaces are compared with pid 1 ("the host"; berth-audit's own process when pid 1's namespaces cannot be read), or with \`--compare-to PID\`.

      stdout: {"kind":"audit-inspect", ...} as JSON, or a table with \`--format table\`.
    `,
    examples: [
      ['Inspect a container started with berth run --name web1', '$0 inspect web1'],
      ['Inspect a container started by berth-runtime by id prefix', '$0 inspect 4f2a9c1b03de'],
      ['Inspect a runc container by id prefix', '$0 inspect --runtime-root /run/runc 4f2a9c1b03de'],
      ['Inspect your shell, as a table', '$0 inspect $$ --format table'],
    ],
  });

  static override explain = `
A container is a process: the kernel keeps its namespaces (/proc/PID/ns/*,
namespaces(7): same inode = same namespace), its cgroups (/proc/PID/cgroup,
cgroups(7)), its capability sets, no_new_privs and seccomp mode
(/proc/PID/status, capabilities(7), seccomp(2)), its LSM label
(/proc/PID/attr/current) and its audit identity: the login uid and session id
(/proc/PID/loginuid, /proc/PID/sessionid), written once by login and inherited
across fork and exec, which is why a fork/exec engine's container still
carries the user's auid and a daemon's container carries 4294967295 (unset).
inspect reads all of this for one pid (a container id is resolved to its init
pid through the OCI runtime's state.json) and compares it with pid 1.
`;

  target = Option.String({ name: 'CONTAINER|PID' });
  runtimeRoot = Option.Array('--runtime-root', [], { description: 'Another OCI runtime state root to look container ids up in (runc: /run/runc); repeatable' });
  format = Option.String('--format', 'json', { description: 'json (default) or table', validator: t.isEnum(['json', 'table'] as const) });
  compareTo = Option.String('--compare-to', { description: 'Compare capabilities and namespaces with this pid instead of pid 1' });

  async perform(): Promise<unknown> {
    let reference: number | undefined;
    if (this.compareTo !== undefined) {
      if (!/^\d+$/.test(this.compareTo)) throw new BerthUsageError(`--compare-to ${this.compareTo}: expected a pid`);
      reference = Number(this.compareTo);
      requireProcess(reference);
    }
    const named = byFrontName(this.target, this.runtimeRoot, this.dataRoot);
    const target = resolveTarget(named.target, named.roots);
    const doc = inspectProcess(target, { reference });
    if (named.name !== undefined && doc.container) doc.container.name = named.name;
    if (this.format === 'table') {
      this.context.stdout.write(formatInspectTable(doc));
      return undefined;
    }
    return doc;
  }
}
