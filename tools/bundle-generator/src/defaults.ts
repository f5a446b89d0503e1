import type { DeviceCgroupRule, Mount } from '@berth/oci-spec';

/**
 * The secure defaults a container engine applies when the user asks for
 * nothing special. Values follow what podman ships (containers.conf and
 * containers/common), so a berth container is as confined as a podman one.
 */

/**
 * podman's default capability set: enough to run a typical service as root
 * inside the container (chown files, bind low ports, switch users), nothing
 * that reaches the host (no SYS_ADMIN, NET_ADMIN, SYS_MODULE, NET_RAW, MKNOD).
 */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** Files under /proc and /sys that leak host state (kernel memory, keys, timers, firmware): hidden. */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/dev/block',
  '/sys/devices/virtual/powercap', '/sys/firmware', '/sys/fs/selinux',
];

/** Kernel tunables a container may read but must not write (they are not namespaced). */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The mounts every Linux container gets (runtime-spec config-linux.md
 * "Default Filesystems" plus what engines add). Order matters: /dev before
 * /dev/pts, /dev/shm and /dev/mqueue, which live in it; /sys before its cgroup
 * mount. sysfs and cgroup are read-only unless --privileged.
 */
export function standardMounts(opts: { privileged: boolean; shmSize?: number }): Mount[] {
  const sysMode = opts.privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${opts.shmSize ?? 65536 * 1024}`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysMode] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', sysMode] },
  ];
}

/**
 * Device cgroup: deny everything, then allow the devices runtime-spec says
 * every container has (null, zero, full, random, urandom, tty, ptmx and the
 * pty slaves). The runtime creates the nodes themselves in the /dev tmpfs.
 */
export function defaultDeviceRules(privileged: boolean): DeviceCgroupRule[] {
  if (privileged) return [{ allow: true, access: 'rwm' }];
  const c = (major: number, minor: number | null): DeviceCgroupRule => ({ allow: true, type: 'c', major, minor, access: 'rwm' });
  return [
    { allow: false, access: 'rwm' },
    c(1, 3), c(1, 5), c(1, 7), c(1, 8), c(1, 9), c(5, 0), c(5, 1), c(5, 2), c(136, null),
  ];
}

/**
 * podman asks for these when it runs as root. They exceed the hard limits of
 * callers without CAP_SYS_RESOURCE, so rlimits.ts caps them (see there).
 */
export const DEFAULT_RLIMITS: Array<{ type: string; value: number }> = [
  { type: 'RLIMIT_NOFILE', value: 1048576 },
  { type: 'RLIMIT_NPROC', value: 4194304 },
];

/** podman's default pids limit: a fork bomb stops at 2048 tasks. */
export const DEFAULT_PIDS_LIMIT = 2048;

/** Where --init puts the init binary inside the container. */
export const INIT_PATH = '/run/berth-init';
export const INIT_CANDIDATES = ['/usr/libexec/podman/catatonit', '/usr/bin/catatonit', '/usr/bin/tini-static', '/usr/bin/tini', '/usr/sbin/docker-init'];
