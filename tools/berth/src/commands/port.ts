import { Command, Option } from '@berth/cli-kit';
import { mustFindRecord } from '@berth/engine';
import { EngineCommand } from '../base.ts';

/** "8080:80/tcp" or "127.0.0.1:8080:80/tcp" as podman port prints it: "80/tcp -> 0.0.0.0:8080". */
export function portLine(p: string): { container: string; text: string } {
  const m = /^(?:(.+):)?(\d+):(\d+)(?:\/(\w+))?$/.exec(p);
  if (!m) return { container: p, text: p };
  const container = `${m[3]}/${m[4] ?? 'tcp'}`;
  return { container, text: `${container} -> ${m[1] || '0.0.0.0'}:${m[2]}` };
}

export function portColumn(p: string): string {
  const m = /^(?:(.+):)?(\d+):(\d+)(?:\/(\w+))?$/.exec(p);
  return m ? `${m[1] || '0.0.0.0'}:${m[2]}->${m[3]}/${m[4] ?? 'tcp'}` : p;
}

export class PortCommand extends EngineCommand {
  static override paths = [['port']];
  static override explain = `
berth-pod ports POD      # the pod's portmap entries (a container with -p has a pod of its own)
`;
  static override usage = Command.Usage({ description: 'List a container\'s published ports (its pod\'s, when in a pod)' });
  container = Option.String({ name: 'CONTAINER' });
  privatePort = Option.String({ name: 'PORT', required: false });
  async perform(): Promise<number | undefined> {
    const rec = mustFindRecord(this.env, this.container);
    for (const p of rec.ports.map(portLine)) {
      if (this.privatePort !== undefined) {
        const want = this.privatePort.includes('/') ? this.privatePort : `${this.privatePort}/tcp`;
        if (p.container === want) this.out(p.text.split(' -> ')[1]!);
      } else {
        this.out(p.text);
      }
    }
    return undefined;
  }
}
