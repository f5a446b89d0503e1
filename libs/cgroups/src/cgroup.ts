/**
 * One container's cgroup across every hierarchy of the host: created, limited,
 * joined, frozen, counted and removed. v1 keeps one directory per hierarchy
 * (memory, cpu, pids, ... and named ones like name=systemd); v2 one directory;
 * a hybrid host both, the v1 directories plus one in ROOT/unified.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, log } from '@berth/cli-kit';
import type { LinuxResources } from '@berth/oci-spec';
import { parseFlatKeyed, parseLimit, readControl, readControlIfExists, writeControl, type WriteTrace } from './fsio.ts';
import { DEFAULT_CGROUP_ROOT, detectCgroupMode, parseProcCgroup, v1Hierarchies, v2Controllers, type CgroupMode } from './hierarchy.ts';
import { planHybrid, planV1, planV2, type ControlWrite, type PlanHost } from './plan.ts';
import { validateResources } from './validate.ts';

export interface OpenCgroupOptions {
  /**
   * linux.cgroupsPath. Absolute paths are taken from the root of each
   * hierarchy; relative ones from the caller's own cgroup in that hierarchy
   * (config-linux.md#cgroups-path). systemd's "slice:prefix:name" form is
   * mapped to the directory systemd would use. Default: the container id,
   * relative, as runc does.
   */
  path?: string;
  /** The container id, used when path is empty and in messages. */
  id: string;
  /** Where the hierarchies are mounted; tests point this at a temp dir. */
  root?: string;
  /** Skip detection (tests, or a caller that already knows). */
  mode?: CgroupMode;
  /** The file that says where the caller is (/proc/self/cgroup), for relative paths. */
  selfCgroupFile?: string;
  /** Called with every control-file write, in order. */
  trace?: WriteTrace;
}

/** One directory of this cgroup in one hierarchy. */
export interface CgroupDir {
  /** "memory", "cpu,cpuacct", "name=systemd", or "unified" for cgroup2. */
  key: string;
  version: 1 | 2;
  /** The hierarchy's mount point. */
  mount: string;
  /** Controllers of a v1 hierarchy; for cgroup2, those its root offers. */
  controllers: string[];
  /** The cgroup path inside the hierarchy, absolute ("/berth/ID"). */
  cgroup: string;
  dir: string;
}

export interface CgroupStats {
  memory?: { usage: number; limit: number | null; maxUsage?: number; failcnt?: number; oomKills?: number; stat: Record<string, number> };
  cpu?: { usageNs?: number; userNs?: number; systemNs?: number; periods?: number; throttledPeriods?: number; throttledNs?: number };
  pids?: { current: number; limit: number | null };
}

const USER_HZ = 100;

function fail(message: string, cause?: unknown): never {
  throw new BerthError('E_CGROUP', `cgroup: ${message}`, cause === undefined ? {} : { cause });
}

/** systemd unit "a-b-c.slice" lives at a.slice/a-b.slice/a-b-c.slice. */
function expandSlice(slice: string): string {
  if (slice === '-.slice' || slice === '') return '';
  if (!slice.endsWith('.slice')) fail(`cgroupsPath slice ${JSON.stringify(slice)} must end in .slice`);
  const parts = slice.slice(0, -'.slice'.length).split('-');
  if (parts.some((p) => p === '')) fail(`cgroupsPath slice ${JSON.stringify(slice)} is not a valid slice name`);
  return parts.map((_, i) => `${parts.slice(0, i + 1).join('-')}.slice`).join('/');
}

/** The cgroup path as given (relative or absolute), checked. */
function specPath(path: string | undefined, id: string): { path: string; relative: boolean } {
  if (!id || id.includes('/') || id === '.' || id === '..') fail(`container id ${JSON.stringify(id)} cannot name a cgroup`);
  let p = path ?? '';
  if (p === '') return { path: id, relative: true };
  const systemd = /^([^:/]*):([^:/]*):([^:/]+)$/.exec(p);
  if (systemd) {
    // No systemd to ask for a scope: use the directory it would have made.
    const [, slice, prefix, name] = systemd;
    p = '/' + [expandSlice(slice || 'system.slice'), `${prefix ? prefix + '-' : ''}${name}.scope`].filter(Boolean).join('/');
  }
  if (p.split('/').some((seg) => seg === '..')) fail(`cgroupsPath ${JSON.stringify(path)} must not contain ".."`);
  if (p.includes('\0')) fail('cgroupsPath must not contain NUL');
  return { path: p, relative: !p.startsWith('/') };
}

export function openCgroup(opts: OpenCgroupOptions): Cgroup {
  return new Cgroup(opts);
}

export class Cgroup {
  readonly root: string;
  readonly mode: CgroupMode;
  readonly id: string;
  /** Every directory of this cgroup, v1 hierarchies first, then cgroup2. */
  readonly dirs: CgroupDir[];
  private readonly trace?: WriteTrace;

  constructor(opts: OpenCgroupOptions) {
    this.root = opts.root ?? DEFAULT_CGROUP_ROOT;
    this.mode = opts.mode ?? detectCgroupMode(this.root);
    this.id = opts.id;
    this.trace = opts.trace;
    const { path, relative } = specPath(opts.path, opts.id);
    let self = new Map<string, string>();
    if (relative) {
      const file = opts.selfCgroupFile ?? '/proc/self/cgroup';
      try {
        self = parseProcCgroup(readFileSync(file, 'utf8'));
      } catch (err) {
        fail(`read ${file} to place relative cgroupsPath ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? err}`, err);
      }
    }
    const place = (key: string): string => posix.normalize(relative ? posix.join(self.get(key) ?? '/', path) : path);
    const dirs: CgroupDir[] = [];
    if (this.mode !== 'v2') {
      for (const h of v1Hierarchies(this.root)) {
        const cgroup = place(h.key);
        dirs.push({ key: h.key, version: 1, mount: h.mount, controllers: h.controllers, cgroup, dir: posix.join(h.mount, cgroup) });
      }
    }
    if (this.mode !== 'v1') {
      const mount = this.mode === 'v2' ? this.root : posix.join(this.root, 'unified');
      const cgroup = place('');
      dirs.push({ key: 'unified', version: 2, mount, controllers: v2Controllers(mount), cgroup, dir: posix.join(mount, cgroup) });
    }
    for (const d of dirs) {
      if (d.cgroup === '/') fail(`cgroupsPath ${JSON.stringify(opts.path ?? '')} resolves to the root cgroup of ${d.mount}; a container needs its own`);
    }
    this.dirs = dirs;
  }

  /** Controller (or hierarchy key) -> directory, for berth-audit and tests. */
  get paths(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const d of this.dirs) {
      if (d.version === 1) {
        if (d.controllers.length === 0) out[d.key] = d.dir;
        for (const c of d.controllers) out[c] = d.dir;
      } else {
        out.unified = d.dir;
        if (this.mode === 'v2') for (const c of d.controllers) out[c] = d.dir;
      }
    }
    return out;
  }

  private v1(controller: string): CgroupDir | undefined {
    return this.dirs.find((d) => d.version === 1 && d.controllers.includes(controller));
  }

  private unified(): CgroupDir | undefined {
    return this.dirs.find((d) => d.version === 2);
  }

  /** The directory holding a controller's files ('unified' for the cgroup2 one). */
  private dirOf(controller: string): string | undefined {
    if (controller === 'unified' || controller.startsWith('unified:')) return this.unified()?.dir;
    if (this.mode === 'v2') return this.unified()?.dir;
    return this.v1(controller)?.dir;
  }

  exists(): boolean {
    return this.dirs.length > 0 && this.dirs.every((d) => existsSync(d.dir));
  }

  /**
   * Make the directories. Order matters twice: v1 cpuset directories start
   * with empty cpuset.cpus and cpuset.mems, and a process cannot join one
   * (ENOSPC) until both are filled, each from its parent, top down; in v2 a
   * controller's files appear in a directory only once every ancestor has it
   * in cgroup.subtree_control, enabled from the root down.
   */
  create(): void {
    for (const d of this.dirs) {
      const segments = d.cgroup.split('/').filter(Boolean);
      let dir = d.mount;
      for (const seg of segments) {
        const parent = dir;
        if (d.version === 2 && this.mode === 'v2') this.enableControllers(parent);
        dir = posix.join(dir, seg);
        try {
          mkdirSync(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') fail(`mkdir ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`, err);
        }
        if (d.version === 1 && d.controllers.includes('cpuset')) this.inheritCpuset(parent, dir);
      }
    }
  }

  private inheritCpuset(parent: string, dir: string): void {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (readControl(posix.join(dir, file)) !== '') continue;
      writeControl(posix.join(dir, file), readControl(posix.join(parent, file)), this.trace);
    }
  }

  /** Turn on, in dir's cgroup.subtree_control, every controller dir offers. */
  private enableControllers(dir: string, only?: string[]): void {
    const offered = v2Controllers(dir).filter((c) => !only || only.includes(c));
    const enabled = new Set((readControlIfExists(posix.join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/).filter(Boolean));
    const missing = offered.filter((c) => !enabled.has(c));
    if (missing.length === 0) return;
    const file = posix.join(dir, 'cgroup.subtree_control');
    try {
      writeControl(file, missing.map((c) => `+${c}`).join(' '), this.trace);
    } catch {
      // One refusal (EBUSY: the "no internal processes" rule, EOPNOTSUPP: a
      // threaded subtree) would sink the others; enable them one by one.
      for (const c of missing) {
        try {
          writeControl(file, `+${c}`, this.trace);
        } catch (err) {
          log.warn(`cgroup: cannot enable ${c} in ${file}: ${(err as BerthError).message}`);
        }
      }
    }
  }

  /** What the planner may look at: the v1 hierarchies, or the cgroup2 directory. */
  private planHost(version: 1 | 2): PlanHost {
    const unified = this.unified();
    if (version === 2) {
      const where = this.mode === 'v2' ? `the cgroup v2 hierarchy at ${this.root}` : `the unified hierarchy at ${unified?.mount ?? this.root}`;
      return {
        describe: where,
        // v2: create() enabled what the root offers, so the container's own
        // cgroup.controllers says what is usable. Hybrid: apply() enables a
        // controller on demand, so what the root offers is what counts.
        has: (controller) => unified !== undefined
          && (this.mode === 'v2' ? v2Controllers(unified.dir) : unified.controllers).includes(controller),
        hasFile: (_controller, file) => unified !== undefined && existsSync(posix.join(unified.dir, file)),
        read: (_controller, file) => (unified === undefined ? undefined : readControlIfExists(posix.join(unified.dir, file))),
      };
    }
    return {
      describe: `the cgroup v1 hierarchies under ${this.root}`,
      has: (controller) => this.v1(controller) !== undefined,
      hasFile: (controller, file) => {
        const d = this.v1(controller);
        return d !== undefined && existsSync(posix.join(d.dir, file));
      },
      read: (controller, file) => {
        const d = this.v1(controller);
        return d === undefined ? undefined : readControlIfExists(posix.join(d.dir, file));
      },
    };
  }

  /** The control-file writes apply() would make, checked but not written. */
  plan(resources: LinuxResources): ControlWrite[] {
    const r = validateResources(resources);
    if (!this.exists()) fail(`${this.dirs[0]?.dir ?? this.root} does not exist: create() the cgroup before applying limits`);
    if (this.mode === 'v2') return planV2(r, this.planHost(2));
    if (this.mode === 'v1') return planV1(r, this.planHost(1));
    return planHybrid(r, this.planHost(1), this.planHost(2));
  }

  /** Write linux.resources into the cgroup. Everything is checked before the first write. */
  apply(resources: LinuxResources): void {
    let writes = this.plan(resources);
    if (this.mode === 'hybrid') {
      // The unified hierarchy of a hybrid host holds only what v1 left over;
      // a controller there is enabled only when a limit needs it, since the
      // subtree_control of its root is host-wide state. Its files appear
      // once enabled, so the plan is made again with them in view.
      const wanted = [...new Set(writes.filter((w) => w.controller.startsWith('unified:')).map((w) => w.controller.slice('unified:'.length)))]
        .filter((c) => c !== 'unified' && c !== 'cgroup');
      const u = this.unified();
      if (u && wanted.length > 0) {
        let dir = u.mount;
        for (const seg of u.cgroup.split('/').filter(Boolean)) {
          this.enableControllers(dir, wanted);
          dir = posix.join(dir, seg);
        }
        writes = this.plan(resources);
      }
    }
    for (const w of writes) writeControl(posix.join(this.dirOf(w.controller)!, w.file), w.value, this.trace);
  }

  /** Move a process (all its threads) into the cgroup in every hierarchy. */
  addProcess(pid: number): void {
    if (!Number.isSafeInteger(pid) || pid <= 0) fail(`addProcess: ${pid} is not a process id`);
    for (const d of this.dirs) writeControl(posix.join(d.dir, 'cgroup.procs'), String(pid), this.trace);
  }

  /** The hierarchy whose cgroup.procs answers pids(): v1's pids, else any v1, else cgroup2. */
  private procsDir(): string {
    const d = this.v1('pids') ?? this.v1('freezer') ?? this.dirs.find((x) => x.version === 1) ?? this.unified();
    return d!.dir;
  }

  /** Every process in the cgroup and the cgroups below it. */
  pids(): number[] {
    const out: number[] = [];
    const walk = (dir: string): void => {
      const procs = readControlIfExists(posix.join(dir, 'cgroup.procs'));
      if (procs === undefined) return;
      for (const line of procs.split('\n')) if (line) out.push(Number(line));
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(posix.join(dir, e.name));
    };
    walk(this.procsDir());
    return [...new Set(out)].sort((a, b) => a - b);
  }

  /** v1 freezer when the host has one, else cgroup2's cgroup.freeze (core in v2, no controller needed). */
  private freezer(): { kind: 'v1' | 'v2'; dir: string } {
    const v1 = this.v1('freezer');
    if (v1) return { kind: 'v1', dir: v1.dir };
    const u = this.unified();
    if (u && existsSync(posix.join(u.dir, 'cgroup.freeze'))) return { kind: 'v2', dir: u.dir };
    return fail(`no freezer: neither a v1 freezer hierarchy nor cgroup.freeze under ${this.root}`);
  }

  private hasFreezer(): boolean {
    try {
      return existsSync(this.freezer().dir);
    } catch {
      return false;
    }
  }

  /** 'frozen', 'thawed' or 'freezing' (v1 says FREEZING while tasks are still being stopped). */
  freezerState(): 'frozen' | 'thawed' | 'freezing' {
    const f = this.freezer();
    if (f.kind === 'v1') {
      const s = readControl(posix.join(f.dir, 'freezer.state'));
      return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
    }
    const events = parseFlatKeyed(readControl(posix.join(f.dir, 'cgroup.events')));
    if (events.frozen === 1) return 'frozen';
    return readControl(posix.join(f.dir, 'cgroup.freeze')) === '1' ? 'freezing' : 'thawed';
  }

  /**
   * Stop every task (pause). Resolves once the kernel reports the cgroup
   * frozen; a freeze that does not settle within `timeoutMs` is undone and is
   * an error, so a container is never left half-frozen.
   */
  async freeze(timeoutMs = 10_000): Promise<void> {
    const f = this.freezer();
    const stateFile = f.kind === 'v1' ? posix.join(f.dir, 'freezer.state') : posix.join(f.dir, 'cgroup.freeze');
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      // v1 can sit in FREEZING when a task is in an uninterruptible sleep or
      // a fork races the freezer; writing FROZEN again retries the stragglers.
      if (attempt % 20 === 0) writeControl(stateFile, f.kind === 'v1' ? 'FROZEN' : '1', this.trace);
      if (this.freezerState() === 'frozen') return;
      if (Date.now() > deadline) {
        await this.thaw().catch(() => undefined);
        fail(`freeze ${f.dir}: tasks did not stop within ${timeoutMs} ms`);
      }
      await sleep(5);
    }
  }

  /** Let the tasks run again (resume). */
  async thaw(timeoutMs = 10_000): Promise<void> {
    const f = this.freezer();
    const stateFile = f.kind === 'v1' ? posix.join(f.dir, 'freezer.state') : posix.join(f.dir, 'cgroup.freeze');
    writeControl(stateFile, f.kind === 'v1' ? 'THAWED' : '0', this.trace);
    const deadline = Date.now() + timeoutMs;
    while (this.freezerState() !== 'thawed') {
      if (Date.now() > deadline) fail(`thaw ${f.dir}: still frozen after ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /**
   * Signal every process in the cgroup. SIGKILL uses cgroup.kill where the
   * kernel has it (5.14+, cgroup2 or a hybrid host's unified directory): one
   * atomic write that no fork can outrun. Otherwise the cgroup is frozen
   * while the signals go out, for the same reason.
   */
  async killAll(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const u = this.unified();
    const isKill = signal === 'SIGKILL' || signal === 9;
    // Tasks stopped by the v1 freezer act on no signal, SIGKILL included,
    // until thawed. A paused container that is SIGKILLed is thawed so it can
    // die; any other signal waits, queued, for resume, and the container
    // stays paused.
    const wasFrozen = this.hasFreezer() && this.freezerState() !== 'thawed';
    if (isKill && u && existsSync(posix.join(u.dir, 'cgroup.kill'))) {
      writeControl(posix.join(u.dir, 'cgroup.kill'), '1', this.trace);
      if (wasFrozen) await this.thaw();
      return;
    }
    let froze = false;
    if (!wasFrozen && this.hasFreezer()) {
      try {
        await this.freeze();
        froze = true;
      } catch (err) {
        log.debug(`cgroup: signalling without freezing first: ${(err as Error).message}`);
      }
    }
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    } finally {
      if (froze || (wasFrozen && isKill)) await this.thaw();
    }
  }

  /** Did the kernel's OOM killer kill a task of this cgroup? */
  oomKilled(): boolean {
    return (this.oomKills() ?? 0) > 0;
  }

  private oomKills(): number | undefined {
    const mem = this.mode === 'v2' ? this.unified() : this.v1('memory');
    if (!mem) return undefined;
    if (mem.version === 2) {
      const events = readControlIfExists(posix.join(mem.dir, 'memory.events'));
      return events === undefined ? undefined : parseFlatKeyed(events).oom_kill;
    }
    const oom = parseFlatKeyed(readControlIfExists(posix.join(mem.dir, 'memory.oom_control')) ?? '');
    if (oom.oom_kill !== undefined) return oom.oom_kill;
    // Kernels before 4.13 have no oom_kill counter; hitting the limit is the
    // nearest thing they record.
    const failcnt = readControlIfExists(posix.join(mem.dir, 'memory.failcnt'));
    return failcnt === undefined ? undefined : Number(failcnt);
  }

  /** Usage counters, in the units of the kernel files they come from (bytes, ns). */
  stats(): CgroupStats {
    const out: CgroupStats = {};
    const read = (controller: string, file: string) => {
      const dir = this.dirOf(controller);
      return dir === undefined ? undefined : readControlIfExists(posix.join(dir, file));
    };
    if (this.mode === 'v2') {
      const cur = read('memory', 'memory.current');
      if (cur !== undefined) {
        const peak = read('memory', 'memory.peak');
        out.memory = {
          usage: Number(cur), limit: parseLimit(read('memory', 'memory.max')),
          ...(peak !== undefined ? { maxUsage: Number(peak) } : {}),
          oomKills: this.oomKills() ?? 0,
          stat: parseFlatKeyed(read('memory', 'memory.stat') ?? ''),
        };
      }
      const cpu = read('cpu', 'cpu.stat');
      if (cpu !== undefined) {
        const s = parseFlatKeyed(cpu);
        out.cpu = {
          usageNs: (s.usage_usec ?? 0) * 1000, userNs: (s.user_usec ?? 0) * 1000, systemNs: (s.system_usec ?? 0) * 1000,
          ...(s.nr_periods !== undefined ? { periods: s.nr_periods, throttledPeriods: s.nr_throttled, throttledNs: (s.throttled_usec ?? 0) * 1000 } : {}),
        };
      }
    } else {
      const usage = read('memory', 'memory.usage_in_bytes');
      if (usage !== undefined) {
        const limit = Number(read('memory', 'memory.limit_in_bytes'));
        out.memory = {
          usage: Number(usage),
          // v1 prints "unlimited" as PAGE_COUNTER_MAX pages in bytes.
          limit: limit >= 2 ** 62 ? null : limit,
          maxUsage: Number(read('memory', 'memory.max_usage_in_bytes') ?? 0),
          failcnt: Number(read('memory', 'memory.failcnt') ?? 0),
          oomKills: this.oomKills() ?? 0,
          stat: parseFlatKeyed(read('memory', 'memory.stat') ?? ''),
        };
      }
      const acct = read('cpuacct', 'cpuacct.usage');
      const cpuStat = read('cpu', 'cpu.stat');
      if (acct !== undefined || cpuStat !== undefined) {
        const times = parseFlatKeyed(read('cpuacct', 'cpuacct.stat') ?? '');
        const s = parseFlatKeyed(cpuStat ?? '');
        out.cpu = {
          ...(acct !== undefined ? { usageNs: Number(acct) } : {}),
          // cpuacct.stat counts USER_HZ ticks.
          ...(times.user !== undefined ? { userNs: times.user * (1e9 / USER_HZ), systemNs: (times.system ?? 0) * (1e9 / USER_HZ) } : {}),
          ...(s.nr_periods !== undefined ? { periods: s.nr_periods, throttledPeriods: s.nr_throttled, throttledNs: s.throttled_time } : {}),
        };
      }
    }
    const pidsCur = read('pids', 'pids.current');
    if (pidsCur !== undefined) out.pids = { current: Number(pidsCur), limit: parseLimit(read('pids', 'pids.max')) };
    return out;
  }

  /**
   * Kill what is left and remove the directories in every hierarchy, child
   * cgroups first (rmdir of a cgroup with children is EBUSY). A cgroup whose
   * last task is still exiting is EBUSY for a moment too, so rmdir retries.
   */
  async destroy(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.dirs.some((d) => existsSync(d.dir))) {
      if (existsSync(this.procsDir()) && this.pids().length > 0) {
        await this.killAll('SIGKILL');
        while (this.pids().length > 0) {
          if (Date.now() > deadline) fail(`destroy ${this.procsDir()}: processes ${this.pids().join(', ')} survived SIGKILL`);
          await sleep(5);
        }
      }
    }
    const errors: string[] = [];
    for (const d of this.dirs) {
      for (const dir of subdirsDeepestFirst(d.dir)) {
        for (;;) {
          try {
            rmdirSync(dir);
            break;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOENT') break;
            if (code === 'EBUSY' && Date.now() < deadline) {
              await sleep(10);
              continue;
            }
            errors.push(`rmdir ${dir}: ${code ?? err}`);
            break;
          }
        }
      }
    }
    if (errors.length > 0) fail(errors.join('; '));
  }
}

/** dir and every directory under it, deepest first; [] when dir is gone. */
function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) if (e.isDirectory()) walk(posix.join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}
