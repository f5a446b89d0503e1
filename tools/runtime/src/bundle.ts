/**
 * Read and check a bundle's config.json before anything is created: the
 * shared validator (field names in every message) plus what this runtime
 * itself needs (a rootfs that exists, a process, a mount namespace).
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { validateResources } from '@berth/cgroups';
import { validateRuntimeSpec, type RuntimeSpec } from '@berth/oci-spec';

export interface Bundle { dir: string; spec: RuntimeSpec; rootfs: string }

function fail(field: string, what: string): never {
  throw new BerthError('E_CONFIG', `config.json: ${field}: ${what}`);
}

export function loadBundle(bundleDir: string): Bundle {
  const dir = resolve(bundleDir);
  const file = `${dir}/config.json`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('E_CONFIG', `open ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BerthError('E_CONFIG', `${file}: not JSON: ${(err as Error).message}`);
  }
  let spec: RuntimeSpec;
  try {
    spec = validateRuntimeSpec(raw);
  } catch (err) {
    throw new BerthError('E_CONFIG', `config.json: ${(err as Error).message}`);
  }
  if (!spec.root?.path) fail('root.path', 'is required');
  if (!spec.process) fail('process', 'is required to create a container');
  if (!spec.process.args || spec.process.args.length === 0) fail('process.args', 'must name the program to run');
  if (!isAbsolute(spec.process.cwd)) fail('process.cwd', `"${spec.process.cwd}" is not an absolute path`);
  const namespaces = spec.linux?.namespaces ?? [];
  const seen = new Set<string>();
  for (const [i, n] of namespaces.entries()) {
    if (seen.has(n.type)) fail(`linux.namespaces[${i}].type`, `namespace "${n.type}" is listed twice`);
    seen.add(n.type);
    if (n.path !== undefined && !isAbsolute(n.path)) fail(`linux.namespaces[${i}].path`, `"${n.path}" is not an absolute path`);
  }
  if (!seen.has('mount')) fail('linux.namespaces', 'a "mount" namespace is required (the container\'s rootfs lives in it)');
  if (seen.has('user') && !namespaces.find((n) => n.type === 'user')?.path) {
    if (!spec.linux?.uidMappings?.length) fail('linux.uidMappings', 'is required with a new user namespace');
    if (!spec.linux?.gidMappings?.length) fail('linux.gidMappings', 'is required with a new user namespace');
  }
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (!isAbsolute(m.destination)) fail(`mounts[${i}].destination`, `"${m.destination}" is not an absolute path`);
  }
  if (spec.linux?.resources) {
    try {
      validateResources(spec.linux.resources);
    } catch (err) {
      throw new BerthError('E_CONFIG', `config.json: linux.resources: ${(err as Error).message}`);
    }
  }
  const rootfs = resolve(dir, spec.root.path);
  try {
    if (!statSync(rootfs).isDirectory()) fail('root.path', `${rootfs} is not a directory`);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    fail('root.path', `${rootfs}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return { dir, spec, rootfs };
}
