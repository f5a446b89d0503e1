import { Command, Option } from '@berth/cli-kit';
import { EngineError } from '@berth/engine';
import { EngineCommand } from '../base.ts';
import { isTemplate, renderTemplate } from '../format.ts';
import type { OciRuntimeInfo } from '../info-host.ts';

/** The host readers load only when version or info runs, not with every berth start. */
const host = () => import('../info-host.ts');

/** --format: json, or a Go template over the document (podman's `{{.Host.Kernel}}`-style paths match case-insensitively). */
function checkFormat(format: string | undefined): void {
  if (format !== undefined && format !== 'json' && !isTemplate(format)) {
    throw new EngineError('E_USAGE', `--format ${format}: berth supports json and Go templates such as {{.Host.Kernel}}`);
  }
}

/** The runtime this invocation would use; one that cannot be found is reported with an empty path, not an error. */
async function runtimeInfoOf(cmd: EngineCommand): Promise<OciRuntimeInfo> {
  let path: string;
  try {
    path = cmd.runtime().path;
  } catch {
    return { name: cmd.env.runtime, path: '', version: '' };
  }
  return (await host()).ociRuntimeInfo(path);
}

/** berth's own version block: `version`'s Client and `info`'s version. */
async function clientVersion(): Promise<Record<string, unknown>> {
  const { berthBuild, goArch } = await host();
  const build = berthBuild();
  return {
    APIVersion: build.version, Version: build.version, NodeVersion: process.version, GitCommit: build.gitCommit,
    BuiltTime: build.builtTime, Built: build.built, OsArch: `linux/${goArch()}`, Os: 'linux',
  };
}

/**
 * A document as podman's `info` prints it without --format: YAML, keys in
 * the document's order, multi-line strings as literal blocks.
 */
export function toYaml(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  const scalar = (v: unknown): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'string') return v === '' || /[:#{}[\],&*!|>'"%@`]|^\s|\s$|^(true|false|null|\d[\d.]*)$/.test(v) ? JSON.stringify(v) : v;
    return String(v);
  };
  const lines: string[] = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === 'object') lines.push(`${pad}- ${toYaml(item, indent + 2).trimStart()}`);
      else lines.push(`${pad}- ${scalar(item)}`);
    }
    return lines.join('\n');
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = /^[A-Za-z0-9_.-]+$/.test(k) ? k : JSON.stringify(k);
    if (v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)) {
      lines.push(`${pad}${key}:`, toYaml(v, indent + 2));
    } else if (v !== null && typeof v === 'object') {
      lines.push(`${pad}${key}: ${Array.isArray(v) ? '[]' : '{}'}`);
    } else if (typeof v === 'string' && v.includes('\n')) {
      lines.push(`${pad}${key}: |-`, ...v.split('\n').map((l) => `${pad}  ${l}`));
    } else {
      lines.push(`${pad}${key}: ${scalar(v)}`);
    }
  }
  return lines.join('\n');
}

/**
 * `berth version`: berth's own version and build, the Node it runs on, and
 * the OCI runtime this invocation would use with that runtime's own
 * `--version` words (podman version has no runtime line; `podman info`
 * does, and a bug report wants both).
 */
export class VersionCommand extends EngineCommand {
  static override paths = [['version']];
  static override explain = `
cat tools/berth/package.json .git/HEAD          # berth's version, the checkout's commit
node --version
RUNTIME --version                               # berth-runtime, runc or crun
`;
  static override usage = Command.Usage({
    description: 'Show the berth version, its build and the OCI runtime version',
    examples: [['As JSON', '$0 version --format json'], ['One field', '$0 version --format "{{.Client.Version}}"']],
  });
  format = Option.String('-f,--format', { description: 'json, or a Go template such as {{.Client.Version}}' });

  async perform(): Promise<number | undefined> {
    checkFormat(this.format);
    const runtime = await runtimeInfoOf(this);
    const client = await clientVersion();
    const doc = { Client: { ...client, OCIRuntime: runtime } };
    if (this.format === 'json') { this.out(JSON.stringify(doc)); return undefined; }
    if (this.format !== undefined) { this.out(renderTemplate(this.format, doc)); return undefined; }
    const rows: Array<[string, string]> = [
      ['Client:', 'berth'], ['Version:', String(client.Version)], ['API Version:', String(client.APIVersion)], ['Node Version:', process.version],
      ['Git Commit:', String(client.GitCommit)], ['Built:', String(client.BuiltTime)], ['OS/Arch:', String(client.OsArch)],
      ['OCI Runtime:', `${runtime.name} (${runtime.path})`],
      ...runtime.version.split('\n').map((l, i): [string, string] => [i === 0 ? 'Runtime Version:' : '', l]),
    ];
    this.out(rows.map(([k, v]) => `${k.padEnd(17)} ${v}`.trimEnd()).join('\n'));
    return undefined;
  }
}

/**
 * `berth info`: the host (kernel, distribution, CPUs, memory, cgroups, the
 * OCI runtime and conmon with their versions, security), the store (roots,
 * driver, image and container counts) and registries.conf's search list,
 * under podman's key names. YAML by default, as podman prints it.
 */
export class InfoCommand extends EngineCommand {
  static override paths = [['info'], ['system', 'info']];
  static override explain = `
uname -r; nproc; cat /proc/meminfo /etc/os-release      # host
ls /sys/fs/cgroup /sys/fs/cgroup/unified                 # cgroup v1, hybrid or v2
RUNTIME --version; conmon --version
ls ROOT/containers; cat ROOT/images/index.json           # store counts
cat /etc/containers/registries.conf                      # search registries
`;
  static override usage = Command.Usage({
    description: 'Show the host, store and registries berth uses (podman info)',
    examples: [['As JSON', '$0 info --format json'], ['One field', '$0 info --format "{{.Host.Kernel}}"']],
  });
  format = Option.String('-f,--format', { description: 'json, or a Go template such as {{.Store.GraphRoot}}' });

  async perform(): Promise<number | undefined> {
    checkFormat(this.format);
    const { hostInfo, storeInfo, registriesInfo } = await host();
    const [hostDoc, store, registries, version] = await Promise.all([
      hostInfo({ rootless: this.env.rootless !== undefined, runtime: runtimeInfoOf(this) }),
      storeInfo(this.env),
      registriesInfo(),
      clientVersion(),
    ]);
    const doc = { host: hostDoc, store, registries, version };
    if (this.format === 'json') { this.out(JSON.stringify(doc, null, 2)); return undefined; }
    if (this.format !== undefined) { this.out(renderTemplate(this.format, doc)); return undefined; }
    this.out(toYaml(doc));
    return undefined;
  }
}
