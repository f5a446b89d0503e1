import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { BerthError } from './errors.ts';
import { log } from './log.ts';
import { defaultDataRoot, defaultRunRoot, makePrivateRoot } from './paths.ts';

/**
 * Rootless berth: an ordinary user's subordinate id range (subuid(5),
 * subgid(5)) and the user namespace that maps it, as podman does.
 *
 * Inside the namespace the caller is root (uid 0 maps to the user's own uid)
 * and ids 1..N map to the range, so an image's uid 1000 lands on disk as
 * range start + 999. The map is written by the setuid helpers newuidmap and
 * newgidmap (Debian's uidmap), which check /etc/subuid and /etc/subgid; an
 * unprivileged process may only map its own id without them.
 *
 * Node cannot create a user namespace for itself: the kernel refuses
 * unshare(CLONE_NEWUSER) from a threaded process. So the tool re-executes
 * itself under util-linux `unshare --map-root-user --map-users=...` (which calls
 * the helpers) — the same re-exec podman does before it touches its store.
 */

export interface SubordinateRange {
  /** first host id of the range */
  start: number;
  count: number;
}

/** The user's first range in an /etc/subuid-style file, matched by name or uid. */
export function subordinateRange(file: string, user: string, uid: number): SubordinateRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who === undefined || start === undefined || count === undefined) continue;
    if (who !== user && who !== String(uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && s > 0 && c > 0) return { start: s, count: c };
  }
  return undefined;
}

export interface UserNamespacePlan {
  uids: SubordinateRange;
  gids: SubordinateRange;
}

const IN_USERNS = 'BERTH_IN_USERNS';

/** True in the process that re-executed itself into the user's namespace. */
export function inBerthUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[IN_USERNS] === '1';
}

/**
 * What a rootless berth needs before it can map the user's range, with the
 * message the guide gives for each missing piece. Returns undefined for root,
 * and for a user without a range: like podman, berth then warns and goes on
 * with the user's own id only (image owners are not applied).
 */
export function rootlessPlan(): UserNamespacePlan | undefined {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return undefined;
  const gid = process.getgid?.() ?? 0;
  const name = userInfo().username;
  const uids = subordinateRange('/etc/subuid', name, uid);
  const gids = subordinateRange('/etc/subgid', name, gid);
  const add = `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name}`;
  const missing = !uids ? '/etc/subuid' : !gids ? '/etc/subgid' : undefined;
  if (missing) {
    log.warn(`no entry for ${name} in ${missing}: image file owners cannot be mapped into a subordinate range and are not applied; add one with: ${add}`);
    return undefined;
  }
  for (const helper of ['/usr/bin/newuidmap', '/usr/bin/newgidmap']) {
    let mode: number;
    try {
      mode = statSync(helper).mode;
    } catch {
      throw new BerthError('E_ROOTLESS', `${helper} is missing: install Debian's uidmap package (apt-get install uidmap)`);
    }
    if ((mode & 0o4000) === 0) throw new BerthError('E_ROOTLESS', `${helper} is not setuid root, so it cannot write the id maps: chmod u+s ${helper} (or reinstall uidmap)`);
  }
  try {
    const max = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
    if (max === 0) throw new BerthError('E_ROOTLESS', 'user namespaces are disabled (user.max_user_namespaces = 0): sudo sysctl -w user.max_user_namespaces=15000');
  } catch (err) {
    if (err instanceof BerthError) throw err;
  }
  return { uids: uids!, gids: gids! };
}

/**
 * Run this same command again inside the user's namespace and exit with its
 * status. The data and run roots are resolved first and handed down, because
 * inside the namespace the process is uid 0 and would otherwise pick root's
 * /var/lib/berth.
 */
export function reexecInUserNamespace(plan: UserNamespacePlan): never {
  try {
    accessSync('/usr/bin/unshare', constants.X_OK);
  } catch {
    throw new BerthError('E_ROOTLESS', '/usr/bin/unshare is missing: install Debian\'s util-linux');
  }
  // Root in the namespace is the user; ids 1..count are the range.
  const count = Math.min(plan.uids.count, plan.gids.count);
  const args = [
    '--map-root-user',
    `--map-users=${plan.uids.start},1,${count}`,
    `--map-groups=${plan.gids.start},1,${count}`,
    '--setgroups', 'allow',
    '--', process.execPath, ...process.execArgv, ...process.argv.slice(1),
  ];
  const dataRoot = defaultDataRoot();
  if (!process.env.BERTH_ROOT && !process.argv.includes('--root')) makePrivateRoot(dataRoot);
  const env = { ...process.env, [IN_USERNS]: '1', BERTH_ROOT: dataRoot, BERTH_RUN_ROOT: defaultRunRoot() };
  const r = spawnSync('/usr/bin/unshare', args, { stdio: 'inherit', env });
  if (r.error) throw new BerthError('E_ROOTLESS', `unshare: ${r.error.message}`);
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status ?? 1);
}
