import { readFileSync } from 'node:fs';

/** The host's network interfaces, as /proc/net/dev names them. */
export function hostInterfaces(): string[] {
  return interfacesIn(readFileSync('/proc/net/dev', 'utf8'));
}

/** Interface names in /proc/net/dev text (a container's, or the host's). */
export function interfacesIn(procNetDev: string): string[] {
  return procNetDev.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter((n) => n !== '').sort();
}

/**
 * Run `look` (which makes a container read /proc/net/dev in the host's
 * network namespace) and return the interfaces the host had both before and
 * after it. Suites running beside this one add and remove pod veths; an
 * interface present at both ends was there when the container looked.
 */
export function stableHostInterfaces<T>(look: () => T): { result: T; interfaces: string[] } {
  const before = hostInterfaces();
  const result = look();
  const after = new Set(hostInterfaces());
  return { result, interfaces: before.filter((i) => after.has(i)) };
}
