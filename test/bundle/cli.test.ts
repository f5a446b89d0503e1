import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { imageStorePath } from '@berth/cli-kit';
import { mountPoints, unmountAll } from '@berth/snapshots';
import { writeBusyboxImage } from '../helpers/images.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { bundleTool, busyboxConfig, makeBusyboxRootfs, readSpec, runBundle, uniqueId, writeConfig } from './fixtures.ts';

/**
 * berth-bundle as a user meets it: the rootfs document from berth-store on
 * stdin or in a file (an overlay mount over a busybox rootfs, the image in
 * ROOT/images), the default bundle directory, and every kind of bad input
 * failing with a clear message, the right exit code and nothing left behind.
 */

let tmp: { path: string; cleanup: () => void };
let dataRoot: string;
let lower: string;
let imageConfigFile: string;
let rootfsDoc: Record<string, unknown>;
let docCount = 0;

beforeAll(async () => {
  tmp = tempDir('berth-bundle-cli-');
  dataRoot = join(tmp.path, 'root');
  const image = await writeBusyboxImage(imageStorePath(dataRoot), 'busybox:latest', {
    config: { Cmd: ['sh', '-c', 'echo default command'], StopSignal: 'SIGQUIT', ExposedPorts: { '8080/tcp': {} } },
    labels: { 'com.example.role': 'test' },
  });
  lower = await makeBusyboxRootfs(join(tmp.path, 'lower'));
  imageConfigFile = writeConfig(tmp.path, 'config.json', busyboxConfig());
  rootfsDoc = {
    kind: 'rootfs',
    snapshot: 'c1',
    root: dataRoot,
    store: imageStorePath(dataRoot),
    image: { reference: 'busybox:latest', manifest: image.manifest, config: image.config },
  };
}, 60_000);

afterAll(async () => {
  if (tmp) {
    // A failed assertion may leave a rootfs mounted: unmount before removing.
    for (const p of (await mountPoints()).filter((m) => m.startsWith(tmp.path + '/'))) await unmountAll(p).catch(() => {});
    tmp.cleanup();
  }
});

/** A fresh overlay snapshot (the shape berth-store prints) over the busybox rootfs. */
function overlayDoc(): Record<string, unknown> {
  const dir = join(tmp.path, 'snap', String(docCount++));
  mkdirSync(join(dir, 'upper'), { recursive: true });
  mkdirSync(join(dir, 'work'));
  return { ...rootfsDoc, mounts: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${dir}/upper`, `workdir=${dir}/work`] }] };
}

async function mountsUnder(dir: string): Promise<string[]> {
  return (await mountPoints()).filter((m) => m === dir || m.startsWith(dir + '/'));
}

describe('rootfs document input', () => {
  test('from stdin: mounts the snapshot on ROOT/bundles/ID/rootfs, runs under runc, keeps image facts as annotations', async () => {
    const id = uniqueId('doc');
    const r = bundleTool(['--root', dataRoot, '--name', id, '-'], JSON.stringify(overlayDoc()));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const bundle = join(dataRoot, 'bundles', id);
    try {
      expect(r.json).toMatchObject({ kind: 'bundle', id, bundle, image: { reference: 'busybox:latest' }, rootfs: { kind: 'rootfs', snapshot: 'c1' } });
      expect(r.json.annotations).toMatchObject({
        'org.opencontainers.image.stopSignal': 'SIGQUIT',
        'org.opencontainers.image.exposedPorts': '8080/tcp',
        'org.opencontainers.image.ref.name': 'busybox:latest',
        'com.example.role': 'test',
      });
      const spec = readSpec(bundle);
      expect(spec.root).toEqual({ path: 'rootfs', readonly: false });
      expect(spec.process!.args).toEqual(['sh', '-c', 'echo default command']);
      expect(await mountsUnder(join(bundle, 'rootfs'))).toEqual([join(bundle, 'rootfs')]);
      for (const f of ['hosts', 'hostname', 'resolv.conf']) expect(existsSync(join(bundle, f))).toBe(true);
      expect(readFileSync(join(bundle, 'hostname'), 'utf8')).toBe(`${id.slice(0, 12)}\n`);
      const state = join(tmp.path, 'state');
      mkdirSync(state, { recursive: true });
      const out = runBundle('runc', bundle, id, state);
      expect(out.stdout).toBe('default command\n');
      expect(out.code).toBe(0);
    } finally {
      await unmountAll(join(bundle, 'rootfs'));
    }
  });

  test('from a file, with a command after --', async () => {
    const id = uniqueId('docfile');
    const docPath = join(tmp.path, `${id}.json`);
    writeFileSync(docPath, JSON.stringify(overlayDoc()));
    const bundle = join(tmp.path, 'b', id);
    const r = bundleTool(['--root', dataRoot, '--name', id, '--bundle-dir', bundle, docPath, '--', 'ls', '-l', '/']);
    try {
      expect(r.code).toBe(0);
      expect(readSpec(bundle).process!.args).toEqual(['ls', '-l', '/']);
    } finally {
      await unmountAll(join(bundle, 'rootfs'));
    }
  });

  test('a failure after mounting unmounts and removes everything it made', async () => {
    const id = uniqueId('fail');
    const r = bundleTool(['--root', dataRoot, '--name', id, '-u', 'ghost', '-'], JSON.stringify(overlayDoc()));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('unable to find user ghost: no matching entries in passwd file');
    const bundle = join(dataRoot, 'bundles', id);
    expect(existsSync(bundle)).toBe(false);
    expect(await mountsUnder(bundle)).toEqual([]);
  });

  test('a document of another kind or without mounts is refused', () => {
    const wrongKind = bundleTool(['--root', dataRoot, '-'], JSON.stringify({ kind: 'image', reference: 'x' }));
    expect(wrongKind.code).toBe(1);
    expect(wrongKind.stderr).toContain('is of kind "image", expected "rootfs"');
    const noMounts = bundleTool(['--root', dataRoot, '-'], JSON.stringify({ ...rootfsDoc, mounts: [] }));
    expect(noMounts.code).toBe(1);
    expect(noMounts.stderr).toContain('has no "mounts"');
  });
});

describe('swapping the stages', () => {
  test('berth-store prepare | berth-bundle - | runc run', async () => {
    const key = uniqueId('pipe');
    const prepared = runTool('berth-store', ['--root', dataRoot, 'prepare', key, '--image', 'busybox:latest']);
    expect(prepared.code).toBe(0);
    const bundle = join(dataRoot, 'bundles', key);
    try {
      // No --root: the bundle goes under the data root the rootfs document names.
      const r = bundleTool(['--name', key, '-', '--', 'sh', '-c', 'echo hi from $(hostname)'], prepared.stdout);
      expect(r.json?.bundle).toBe(bundle);
      expect(r.code).toBe(0);
      readSpec(bundle);
      const state = join(tmp.path, 'state');
      mkdirSync(state, { recursive: true });
      const out = runBundle('runc', bundle, key, state);
      expect(out.stdout).toBe(`hi from ${key.slice(0, 12)}\n`);
    } finally {
      await unmountAll(join(bundle, 'rootfs'));
      runTool('berth-store', ['--root', dataRoot, 'remove', key]);
    }
  });

  test('umoci unpack instead of berth-store: --rootfs and --image-config from the same image', () => {
    const unpacked = join(tmp.path, 'umoci');
    execFileSync('umoci', ['unpack', '--image', `${imageStorePath(dataRoot)}:busybox:latest`, unpacked], { stdio: 'pipe' });
    const configBlob = join(imageStorePath(dataRoot), 'blobs', 'sha256', (rootfsDoc.image as { config: { digest: string } }).config.digest.slice('sha256:'.length));
    const id = uniqueId('umoci');
    const bundle = join(tmp.path, 'umoci-bundle');
    const r = bundleTool(['--rootfs', join(unpacked, 'rootfs'), '--image-config', configBlob, '--bundle-dir', bundle, '--name', id]);
    expect(r.code).toBe(0);
    expect(r.json.rootfs).toEqual({ path: join(unpacked, 'rootfs') });
    expect(readSpec(bundle).root!.path).toBe(join(unpacked, 'rootfs'));
    const state = join(tmp.path, 'state');
    mkdirSync(state, { recursive: true });
    expect(runBundle('runc', bundle, id, state).stdout).toBe('default command\n');
  });
});

describe('bad options: exit 2, the flag and the accepted form named, nothing written', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['memory', ['--memory', 'lots'], /--memory "lots": is not a size/],
    ['volume source missing', ['-v', '/nonexistent-berth-src:/data'], /volume source \/nonexistent-berth-src \(for \/data\) does not exist/],
    ['named volume', ['-v', 'vol:/data'], /named volumes are not supported/],
    ['ulimit above the hard limit', ['--ulimit', 'nofile=999999999:999999999'], /--ulimit nofile=999999999:999999999: the hard limit is above the caller's hard limit/],
    ['network', ['--network', 'bridge'], /--network "bridge": unknown network mode/],
    ['capability', ['--cap-add', 'FLY'], /--cap-add "FLY": unknown capability/],
    ['security option', ['--security-opt', 'seccomp'], /--security-opt "seccomp": seccomp needs a value/],
    ['sysctl', ['--sysctl', 'vm.swappiness=0'], /--sysctl "vm.swappiness=0": is not namespaced/],
    ['workdir', ['-w', 'relative'], /-w\/--workdir "relative": the working directory must be an absolute path/],
    ['mount', ['--mount', 'type=volume,target=/v'], /--mount .*unsupported mount type "volume"/],
    ['pod file', ['--pod', '/nonexistent-pod.json'], /--pod \/nonexistent-pod.json: no such file/],
  ];
  test.each(cases)('%s', (_name, flags, message) => {
    const id = uniqueId('bad');
    const bundle = join(tmp.path, 'bad', id);
    const r = bundleTool(['--rootfs', lower, '--image-config', imageConfigFile, '--bundle-dir', bundle, ...flags, '--', 'true']);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(existsSync(bundle)).toBe(false);
  });

  test('no rootfs argument, and --image-config without --rootfs', () => {
    expect(bundleTool([]).stderr).toMatch(/missing ROOTFS_JSON argument/);
    expect(bundleTool(['--rootfs', lower]).stderr).toMatch(/--rootfs needs --image-config FILE/);
    expect(bundleTool(['--rootfs', lower]).code).toBe(2);
    expect(bundleTool(['--rootfs', lower, '--image-config', imageConfigFile, '-', '--', 'true']).stderr).toMatch(/--rootfs DIR replaces the ROOTFS_JSON argument/);
  });

  test('an existing non-empty bundle directory is not overwritten', () => {
    const bundle = join(tmp.path, 'occupied');
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'keep'), 'mine');
    const r = bundleTool(['--rootfs', lower, '--image-config', imageConfigFile, '--bundle-dir', bundle, '--', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`bundle directory ${bundle} already exists and is not empty`);
    expect(readdirSync(bundle)).toEqual(['keep']);
  });

  test('--pod joins the namespaces a pod document names', () => {
    const pod = join(tmp.path, 'pod.json');
    writeFileSync(pod, JSON.stringify({ kind: 'pod', namespaces: { network: '/proc/self/ns/net', ipc: '/proc/self/ns/ipc' } }));
    const bundle = join(tmp.path, 'podded');
    const r = bundleTool(['--rootfs', lower, '--image-config', imageConfigFile, '--bundle-dir', bundle, '--pod', pod, '--', 'true']);
    expect(r.code).toBe(0);
    expect(readSpec(bundle).linux!.namespaces).toEqual(expect.arrayContaining([
      { type: 'network', path: '/proc/self/ns/net' }, { type: 'ipc', path: '/proc/self/ns/ipc' },
    ]));
  });

  test('--explain says what it does in spec terms', () => {
    const r = bundleTool(['--explain']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/runtime-spec bundle/);
  });
});
