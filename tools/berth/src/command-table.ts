import type { BaseContext, CommandClass } from 'clipanion';

/**
 * berth's verbs, one entry per command module: the verbs it answers (as
 * argv.ts leaves them: `container X` is already `X`, two-word groups are
 * `pod ls`, `image rm`...) and how to load its classes. Only the module the
 * typed verb names is imported (the bundle splits each into its own chunk);
 * `--help` and an unknown verb load them all. Measured against the eager
 * list it replaced, this saves no time worth naming (141 vs 143 ms for
 * `berth ps -a`, hyperfine, 30 runs): the shared engine chunks dominate a
 * start. What it gives: one table to find a verb in, the overview in
 * podman's groups, and an unknown verb named as podman names it without
 * building every parser. test/engine/units.test.ts checks the verbs
 * against each class's paths.
 */
export interface CommandModule {
  verbs: string[];
  load: () => Promise<Array<CommandClass<BaseContext>>>;
}

export const commandModules: CommandModule[] = [
  { verbs: ['run', 'create'], load: async () => { const m = await import('./commands/create.ts'); return [m.RunCommand, m.CreateCommand]; } },
  {
    verbs: ['start', 'stop', 'kill', 'restart', 'rm', 'wait', 'container cleanup', 'container storage'],
    load: async () => {
      const m = await import('./commands/lifecycle.ts');
      return [m.StartCommand, m.StopCommand, m.KillCommand, m.RestartCommand, m.RmCommand, m.WaitCommand, m.CleanupCommand, m.StorageCommand];
    },
  },
  { verbs: ['pause', 'unpause'], load: async () => { const m = await import('./commands/pause.ts'); return [m.PauseCommand, m.UnpauseCommand]; } },
  { verbs: ['rename'], load: async () => [(await import('./commands/rename.ts')).RenameCommand] },
  { verbs: ['ps'], load: async () => [(await import('./commands/ps.ts')).PsCommand] },
  { verbs: ['logs'], load: async () => [(await import('./commands/logs.ts')).LogsCommand] },
  { verbs: ['exec'], load: async () => [(await import('./commands/exec.ts')).ExecCommand] },
  { verbs: ['inspect', 'image inspect'], load: async () => [(await import('./commands/inspect.ts')).InspectCommand] },
  { verbs: ['port'], load: async () => [(await import('./commands/port.ts')).PortCommand] },
  { verbs: ['top'], load: async () => [(await import('./commands/top.ts')).TopCommand] },
  { verbs: ['stats'], load: async () => [(await import('./commands/stats.ts')).StatsCommand] },
  { verbs: ['cp'], load: async () => [(await import('./commands/cp.ts')).CpCommand] },
  { verbs: ['diff', 'image diff'], load: async () => { const m = await import('./commands/diff.ts'); return [m.DiffCommand, m.ImageDiffCommand]; } },
  { verbs: ['export', 'import', 'image import'], load: async () => { const m = await import('./commands/export.ts'); return [m.ExportCommand, m.ImportCommand]; } },
  { verbs: ['commit'], load: async () => [(await import('./commands/commit.ts')).CommitCommand] },
  { verbs: ['pull', 'image pull'], load: async () => [(await import('./commands/pull.ts')).PullCommand] },
  { verbs: ['push'], load: async () => [(await import('./commands/push.ts')).PushCommand] },
  {
    verbs: ['images', 'image list', 'image ls', 'rmi', 'image rm', 'image prune'],
    load: async () => { const m = await import('./commands/images.ts'); return [m.ImagesCommand, m.RmiCommand, m.ImagePruneCommand]; },
  },
  { verbs: ['build'], load: async () => [(await import('./commands/build.ts')).BuildCommand] },
  { verbs: ['tag'], load: async () => [(await import('./commands/tag.ts')).TagCommand] },
  {
    verbs: ['history', 'image history', 'untag', 'image untag', 'image exists', 'container exists', 'pod exists'],
    load: async () => {
      const m = await import('./commands/history.ts');
      return [m.HistoryCommand, m.UntagCommand, m.ImageExistsCommand, m.ContainerExistsCommand, m.PodExistsCommand];
    },
  },
  { verbs: ['save', 'image save', 'load', 'image load'], load: async () => { const m = await import('./commands/save.ts'); return [m.SaveCommand, m.LoadCommand]; } },
  { verbs: ['login', 'logout'], load: async () => { const m = await import('./commands/login.ts'); return [m.LoginCommand, m.LogoutCommand]; } },
  {
    verbs: ['pod create', 'pod list', 'pod ps', 'pod ls', 'pod inspect', 'pod start', 'pod stop', 'pod rm'],
    load: async () => {
      const m = await import('./commands/pod.ts');
      return [m.PodCreateCommand, m.PodListCommand, m.PodInspectCommand, m.PodStartCommand, m.PodStopCommand, m.PodRmCommand];
    },
  },
  {
    verbs: ['volume create', 'volume ls', 'volume list', 'volume inspect', 'volume rm', 'volume remove', 'volume prune', 'volume exists'],
    load: async () => {
      const m = await import('./commands/volume.ts');
      return [m.VolumeCreateCommand, m.VolumeLsCommand, m.VolumeInspectCommand, m.VolumeRmCommand, m.VolumePruneCommand, m.VolumeExistsCommand];
    },
  },
  {
    verbs: ['network create', 'network ls', 'network list', 'network inspect', 'network rm', 'network remove', 'network prune', 'network exists'],
    load: async () => {
      const m = await import('./commands/network.ts');
      return [m.NetworkCreateCommand, m.NetworkLsCommand, m.NetworkInspectCommand, m.NetworkRmCommand, m.NetworkPruneCommand, m.NetworkExistsCommand];
    },
  },
  { verbs: ['version', 'info', 'system info'], load: async () => { const m = await import('./commands/system.ts'); return [m.VersionCommand, m.InfoCommand]; } },
];

/** The classes of the modules answering `verb` (`run`, `pod ls`), or of every module when none does. */
export async function commandsFor(verb: string | undefined): Promise<Array<CommandClass<BaseContext>>> {
  const hits = verb === undefined ? [] : commandModules.filter((m) => m.verbs.includes(verb));
  const chosen = hits.length > 0 ? hits : commandModules;
  return (await Promise.all(chosen.map((m) => m.load()))).flat();
}
