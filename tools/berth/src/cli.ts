import { BuildCommand } from './commands/build.ts';
import { CreateCommand, RunCommand } from './commands/create.ts';
import { ExecCommand } from './commands/exec.ts';
import { ImagePruneCommand, ImagesCommand, RmiCommand } from './commands/images.ts';
import { InspectCommand } from './commands/inspect.ts';
import { CleanupCommand, KillCommand, StorageCommand, RestartCommand, RmCommand, StartCommand, StopCommand, WaitCommand } from './commands/lifecycle.ts';
import { LogsCommand } from './commands/logs.ts';
import { PodCreateCommand, PodInspectCommand, PodListCommand, PodRmCommand, PodStartCommand, PodStopCommand } from './commands/pod.ts';
import { PortCommand } from './commands/port.ts';
import { PsCommand } from './commands/ps.ts';
import { PullCommand } from './commands/pull.ts';
import { PushCommand } from './commands/push.ts';
import { TagCommand } from './commands/tag.ts';
import { TopCommand } from './commands/top.ts';
import { CommitCommand } from './commands/commit.ts';
import { LoginCommand, LogoutCommand } from './commands/login.ts';
import { CpCommand } from './commands/cp.ts';
import { StatsCommand } from './commands/stats.ts';
import { InfoCommand, VersionCommand } from './commands/system.ts';
import { LoadCommand, SaveCommand } from './commands/save.ts';
import { DiffCommand, ImageDiffCommand } from './commands/diff.ts';
import { ExportCommand, ImportCommand } from './commands/export.ts';
import { ContainerExistsCommand, HistoryCommand, ImageExistsCommand, PodExistsCommand, UntagCommand } from './commands/history.ts';
import { PauseCommand, UnpauseCommand } from './commands/pause.ts';
import { RenameCommand } from './commands/rename.ts';
import { NetworkCreateCommand, NetworkExistsCommand, NetworkInspectCommand, NetworkLsCommand, NetworkPruneCommand, NetworkRmCommand } from './commands/network.ts';
import { VolumeCreateCommand, VolumeExistsCommand, VolumeInspectCommand, VolumeLsCommand, VolumePruneCommand, VolumeRmCommand } from './commands/volume.ts';
import { runBerth } from './main.ts';

await runBerth([
  SaveCommand, LoadCommand, ImportCommand, ExportCommand, DiffCommand, ImageDiffCommand,
  StatsCommand, VersionCommand, InfoCommand,
  CpCommand,
  LoginCommand, LogoutCommand, CommitCommand,
  RunCommand, CreateCommand, StartCommand, StopCommand, KillCommand, PauseCommand, UnpauseCommand, RestartCommand, RmCommand, RenameCommand, PsCommand, LogsCommand,
  ExecCommand, InspectCommand, WaitCommand, PortCommand, TopCommand, CleanupCommand, StorageCommand,
  PullCommand, ImagesCommand, RmiCommand, ImagePruneCommand, BuildCommand, TagCommand, UntagCommand, HistoryCommand, ImageExistsCommand, ContainerExistsCommand, PushCommand,
  PodCreateCommand, PodListCommand, PodInspectCommand, PodStartCommand, PodStopCommand, PodRmCommand, PodExistsCommand,
  VolumeCreateCommand, VolumeLsCommand, VolumeInspectCommand, VolumeRmCommand, VolumePruneCommand, VolumeExistsCommand,
  NetworkCreateCommand, NetworkLsCommand, NetworkInspectCommand, NetworkRmCommand, NetworkPruneCommand, NetworkExistsCommand,
]);
