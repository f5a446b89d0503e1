import { BerthUsageError } from './errors.ts';

/**
 * `--tls-verify`, `--tls-verify=true|false`, as podman and skopeo take it:
 * true or false when given, undefined when not, so that registries.conf's
 * `insecure` decides (containers-registries.conf(5)). One parser for every
 * tool that talks to a registry.
 */
export function tlsVerifyFlag(value: string | boolean | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new BerthUsageError(`--tls-verify takes true or false, not "${String(value)}"`);
}
