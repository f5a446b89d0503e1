/**
 * A runtime-spec seccomp profile (config-linux.md#seccomp) checked and turned
 * into the numbers libseccomp takes. Pure: no library is loaded here, so the
 * checks run anywhere and say exactly which field was wrong.
 */
import { constants } from 'node:os';
import { BerthError } from '@berth/cli-kit';
import type { Seccomp, SeccompArg, SeccompSyscall } from '@berth/oci-spec';

/** The kernel's SECCOMP_RET_* values as seccomp.h spells them (SCMP_ACT_*). */
const ACT_KILL_PROCESS = 0x80000000;
const ACT_KILL_THREAD = 0x00000000;
const ACT_TRAP = 0x00030000;
const ACT_ERRNO = 0x00050000;
const ACT_TRACE = 0x7ff00000;
const ACT_NOTIFY = 0x7fc00000;
const ACT_LOG = 0x7ffc0000;
const ACT_ALLOW = 0x7fff0000;

/** Every action the runtime spec names. SCMP_ACT_KILL is the old name of KILL_THREAD. */
export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
] as const;

/** enum scmp_compare from seccomp.h. */
export const SECCOMP_OPERATORS: Record<string, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

/** The spec's SCMP_ARCH_* names; libseccomp's own name is the lower-cased suffix. */
export const SECCOMP_ARCHITECTURES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64',
] as const;

/**
 * enum scmp_filter_attr values berth sets. CTL_NNP is cleared so that loading a
 * filter does not switch on no_new_privs behind the spec's back: whether the
 * container gets NNP is process.noNewPrivileges' decision, as with runc.
 */
export const ATTR_CTL_NNP = 3;
export const ATTR_CTL_TSYNC = 4;
export const ATTR_CTL_LOG = 6;
export const ATTR_CTL_SSB = 7;

/** The spec's flags and the filter attribute each one sets. */
export const SECCOMP_FLAGS: Record<string, number | null> = {
  SECCOMP_FILTER_FLAG_TSYNC: ATTR_CTL_TSYNC,
  SECCOMP_FILTER_FLAG_LOG: ATTR_CTL_LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: ATTR_CTL_SSB,
  // Needs libseccomp 2.6 (SCMP_FLTATR_CTL_WAITKILL); 2.5 cannot express it.
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: null,
};

/** The kernel refuses an errno above MAX_ERRNO; SECCOMP_RET_DATA has room for 16 bits. */
const MAX_ERRNO = 4095;
const EPERM = constants.errno.EPERM;
const UINT64_MAX = (1n << 64n) - 1n;

/** One seccomp_rule_add_array call. */
export interface RulePlan {
  syscall: string;
  action: number;
  actionName: string;
  args: Array<{ arg: number; op: number; datum_a: bigint; datum_b: bigint }>;
}

/** Everything libseccomp needs, in the order it is applied. */
export interface FilterPlan {
  defaultAction: number;
  defaultActionName: string;
  /** libseccomp's arch names (x86_64, x86, x32, aarch64...). */
  architectures: string[];
  /** [attribute, value] pairs for seccomp_attr_set, TSYNC always among them. */
  attributes: Array<[number, number]>;
  rules: RulePlan[];
  /** True when some rule (not the default) hands syscalls to a notify listener. */
  usesNotify: boolean;
}

function fail(message: string): never {
  throw new BerthError('E_SECCOMP', `seccomp: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function namesOf(call: { names?: unknown }): string {
  return Array.isArray(call.names) ? `[${call.names.join(', ')}]` : '[]';
}

/** The 32-bit action value for an action name and its errnoRet. */
export function actionValue(action: string, errnoRet: number | undefined, where: string): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return ACT_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return ACT_KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return ACT_TRAP;
    // ERRNO and TRACE carry their number in SECCOMP_RET_DATA; EPERM when the
    // spec gives none, as runc does.
    case 'SCMP_ACT_ERRNO': return (ACT_ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (ACT_TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_NOTIFY': return ACT_NOTIFY;
    case 'SCMP_ACT_LOG': return ACT_LOG;
    case 'SCMP_ACT_ALLOW': return ACT_ALLOW;
    default: return fail(`unknown action ${JSON.stringify(action)} for ${where}`);
  }
}

function checkErrno(v: unknown, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ERRNO) {
    fail(`${field} must be an errno number between 0 and ${MAX_ERRNO}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function datum(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > UINT64_MAX) fail(`${field} must fit an unsigned 64-bit integer, got ${v}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    fail(`${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (!Number.isSafeInteger(v)) fail(`${field} ${v} is above 2^53 and lost precision in JSON; pass it as a bigint`);
  return BigInt(v);
}

function checkArg(a: unknown, field: string, where: string): RulePlan['args'][number] {
  if (!isObject(a)) fail(`${field} must be an object for ${where}`);
  const arg = a as Partial<SeccompArg>;
  if (typeof arg.index !== 'number' || !Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
    fail(`${field}.index must be an argument number 0-5 for ${where}, got ${JSON.stringify(arg.index)}`);
  }
  const op = typeof arg.op === 'string' ? SECCOMP_OPERATORS[arg.op] : undefined;
  if (op === undefined) fail(`unknown operator ${JSON.stringify(arg.op)} in ${field} for ${where}`);
  const a1 = datum(arg.value, `${field}.value`);
  const a2 = arg.valueTwo === undefined ? 0n : datum(arg.valueTwo, `${field}.valueTwo`);
  return { arg: arg.index, op, datum_a: a1, datum_b: a2 };
}

/**
 * Check a profile. Returns it typed; throws a BerthError naming the field,
 * action, operator or architecture that is wrong.
 */
export function validateSeccomp(input: unknown): Seccomp {
  planSeccomp(input);
  return input as Seccomp;
}

/** Check a profile and turn it into the calls loadSeccomp and compileSeccomp make. */
export function planSeccomp(input: unknown): FilterPlan {
  if (!isObject(input)) fail('linux.seccomp must be an object');
  const spec = input as Partial<Seccomp>;
  if (typeof spec.defaultAction !== 'string') fail('defaultAction is required');
  if (spec.defaultAction === 'SCMP_ACT_NOTIFY') fail('SCMP_ACT_NOTIFY cannot be the default action');
  const defaultErrno = checkErrno(spec.defaultErrnoRet, 'defaultErrnoRet');
  if (defaultErrno !== undefined && spec.defaultAction !== 'SCMP_ACT_ERRNO' && spec.defaultAction !== 'SCMP_ACT_TRACE') {
    fail(`defaultErrnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${spec.defaultAction}`);
  }
  const defaultAction = actionValue(spec.defaultAction, defaultErrno, 'defaultAction');

  const architectures: string[] = [];
  if (spec.architectures !== undefined) {
    if (!Array.isArray(spec.architectures)) fail('architectures must be an array');
    for (const a of spec.architectures) {
      if (typeof a !== 'string' || !(SECCOMP_ARCHITECTURES as readonly string[]).includes(a)) {
        fail(`unknown architecture ${JSON.stringify(a)} (known: ${SECCOMP_ARCHITECTURES.join(', ')})`);
      }
      architectures.push(a.slice('SCMP_ARCH_'.length).toLowerCase());
    }
  }

  // Node runs about eleven threads; a filter on the calling thread alone would
  // leave the others unconfined, so TSYNC is set whatever the spec's flags say.
  const attributes: Array<[number, number]> = [[ATTR_CTL_NNP, 0], [ATTR_CTL_TSYNC, 1]];
  if (spec.flags !== undefined) {
    if (!Array.isArray(spec.flags)) fail('flags must be an array');
    for (const f of spec.flags) {
      if (typeof f !== 'string' || !(f in SECCOMP_FLAGS)) {
        fail(`unknown flag ${JSON.stringify(f)} (known: ${Object.keys(SECCOMP_FLAGS).join(', ')})`);
      }
      const attr = SECCOMP_FLAGS[f];
      if (attr === null) fail(`flag ${f} needs libseccomp 2.6 or later`);
      if (attr !== ATTR_CTL_TSYNC) attributes.push([attr, 1]);
    }
  }

  const rules: RulePlan[] = [];
  let usesNotify = false;
  if (spec.syscalls !== undefined && !Array.isArray(spec.syscalls)) fail('syscalls must be an array');
  for (const [i, entry] of (spec.syscalls ?? []).entries()) {
    if (!isObject(entry)) fail(`syscalls[${i}] must be an object`);
    const call = entry as Partial<SeccompSyscall>;
    const where = `syscalls ${namesOf(call)}`;
    if (!Array.isArray(call.names) || call.names.length === 0 || call.names.some((n) => typeof n !== 'string' || n === '')) {
      fail(`syscalls[${i}].names must be a non-empty array of syscall names`);
    }
    if (typeof call.action !== 'string') fail(`syscalls[${i}].action is required for ${where}`);
    const errnoRet = checkErrno(call.errnoRet, `syscalls[${i}].errnoRet`);
    if (errnoRet !== undefined && call.action !== 'SCMP_ACT_ERRNO' && call.action !== 'SCMP_ACT_TRACE') {
      fail(`syscalls[${i}].errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${call.action}, for ${where}`);
    }
    const action = actionValue(call.action, errnoRet, where);
    if (call.action === 'SCMP_ACT_NOTIFY') {
      usesNotify = true;
      // The runtime writes the listener's messages itself; trapping write()
      // would leave it waiting on a listener that waits on it.
      if (call.names.includes('write')) fail(`SCMP_ACT_NOTIFY cannot be used for the write syscall (${where})`);
    }
    if (call.args !== undefined && !Array.isArray(call.args)) fail(`syscalls[${i}].args must be an array for ${where}`);
    const args = (call.args ?? []).map((a, j) => checkArg(a, `syscalls[${i}].args[${j}]`, where));
    // libseccomp refuses two comparisons on one argument in one rule (EINVAL).
    // The runtime spec's meaning, as runc and crun read it, is then "any of
    // them": one rule per comparison. Comparisons on distinct arguments all
    // have to hold, so they share one rule.
    const indexes = new Set(args.map((a) => a.arg));
    const argSets = indexes.size < args.length ? args.map((a) => [a]) : [args];
    for (const name of call.names) {
      for (const set of argSets) rules.push({ syscall: name, action, actionName: call.action, args: set });
    }
  }
  if (usesNotify && (typeof spec.listenerPath !== 'string' || spec.listenerPath === '')) {
    fail('SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, the unix socket that receives the notify fd');
  }
  return { defaultAction, defaultActionName: spec.defaultAction, architectures, attributes, rules, usesNotify };
}
