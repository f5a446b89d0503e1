import type { DeviceCgroupRule } from '@berth/oci-spec';

/**
 * The device rules every container gets on top of linux.resources.devices, as
 * runc and crun add them: mknod of any node (creating is harmless, opening is
 * what the other rules decide), and read/write of the devices every process
 * expects: /dev/null, zero, full, random, urandom, tty, console, ptmx and
 * the pts slaves, and /dev/net/tun. The runtime appends them after a leading
 * deny-all; this lib writes whatever list it is given.
 */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceCgroupRule[] = [
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];
