/**
 * podman's command line has two shapes clipanion does not parse by itself:
 * global flags before the verb (`berth --root R run ...`), and a command
 * after the image whose own flags belong to it (`berth run busybox ls -l`).
 * This rewrites argv into clipanion's shape: the verb first, the global flags
 * after it, and a `--` between the image and its command.
 */

/** Flags that take no value, per verb family; anything else starting with - takes one unless written FLAG=VALUE. */
const BOOLEAN_FLAGS: Record<string, Set<string>> = {
  run: new Set(['-d', '--detach', '-i', '--interactive', '-t', '--tty', '--rm', '--read-only', '--privileged', '--init', '--debug', '--explain', '-h', '--help', '-q', '--quiet', '--tls-verify']),
  exec: new Set(['-d', '--detach', '-i', '--interactive', '-t', '--tty', '--privileged', '--debug', '--explain', '-h', '--help']),
};
BOOLEAN_FLAGS.create = BOOLEAN_FLAGS.run!;

const GLOBAL_WITH_VALUE = new Set(['--root', '--runroot', '--runtime', '--log-format', '--log-level']);
const GLOBAL_BOOLEAN = new Set(['--debug']);
/** `container X` verbs that have no short form (`berth exists` is not one). */
const CONTAINER_ONLY = new Set(['cleanup', 'storage', 'exists']);
/** `container X` verbs whose short form has another name (`container ls` is `ps`). */
const CONTAINER_ALIASES: Record<string, string> = { list: 'ps', ls: 'ps' };
const TWO_WORD = new Set(['pod', 'image', 'container', 'system', 'volume', 'network']);

function isBooleanFlag(arg: string, booleans: Set<string>): boolean {
  if (arg.includes('=')) return true;
  if (booleans.has(arg)) return true;
  // -it, -dit: every letter a boolean short flag.
  if (/^-[a-zA-Z]{2,}$/.test(arg)) return [...arg.slice(1)].every((c) => booleans.has(`-${c}`));
  return false;
}

export function rewriteArgv(argv: string[]): string[] {
  const { path, globals, args } = splitArgv(argv);
  return [...path, ...globals, ...args];
}

/** argv as verb path, the global flags typed before it, and the verb's own arguments. */
export function splitArgv(argv: string[]): { path: string[]; globals: string[]; args: string[] } {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const a = argv[i]!;
    const name = a.split('=')[0]!;
    if (GLOBAL_WITH_VALUE.has(name)) {
      if (a.includes('=')) { globals.push(a); i++; } else { globals.push(a, argv[i + 1] ?? ''); i += 2; }
    } else if (GLOBAL_BOOLEAN.has(a)) {
      globals.push(a); i++;
    } else {
      // --help, --version and unknown flags: leave them to clipanion.
      break;
    }
  }
  const rest = argv.slice(i);
  if (rest.length === 0 || rest[0]!.startsWith('-')) return { path: [], globals, args: rest };
  let pathLen = 1;
  if (TWO_WORD.has(rest[0]!) && rest.length > 1 && !rest[1]!.startsWith('-')) pathLen = 2;
  // `container run` / `container rm` are podman's long forms of the short verbs.
  let path = rest.slice(0, pathLen);
  if (path[0] === 'container' && path[1] !== undefined && !CONTAINER_ONLY.has(path[1])) path = [CONTAINER_ALIASES[path[1]] ?? path[1]];
  let args = rest.slice(pathLen);
  const verb = path.length === 1 ? path[0]! : path.join(' ');
  const booleans = BOOLEAN_FLAGS[verb];
  if (booleans) args = splitAtImage(args, booleans);
  return { path, globals, args };
}

/** Put `--` after the first positional (the image, or the container for exec) unless the user already did. */
function splitAtImage(args: string[], booleans: Set<string>): string[] {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args;
    if (a.startsWith('-') && a !== '-') {
      if (!isBooleanFlag(a, booleans)) i++;
      continue;
    }
    // `berth run IMAGE -- CMD` already separates them (podman drops that --).
    if (args[i + 1] === '--') return args;
    return [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return args;
}
