/**
 * squashtree as a library: load a config, get a Tree per configured tree,
 * and run lifecycle transitions on it. Every method returns data and throws
 * SquashtreeError with a stable code and a hint.
 */
export { Tree } from './lifecycle/tree.js';
export {
  loadConfig,
  parseConfig,
  selectTrees,
  DEFAULT_CONFIG_PATH,
  DEFAULT_STORE_ROOT,
  type Config,
} from './config/load.js';
export type {
  TreeConfig,
  Compressor,
  OnStop,
  UpperConfig,
  EngineName,
  EngineSetting,
} from './config/schema.js';
export { userPaths, type UserPaths } from './config/user-paths.js';
export { SquashtreeError, isSquashtreeError, type ErrorCode } from './errors.js';
export { initTree, type InitRequest, type InitResult } from './lifecycle/init.js';
export { silentReporter, type Reporter } from './lifecycle/context.js';
export type { TreeState } from './lifecycle/observe.js';
export type { StartResult } from './lifecycle/start.js';
export type { CommitResult } from './lifecycle/commit.js';
export type { StopResult, StopOptions } from './lifecycle/stop.js';
export type { CompactResult } from './lifecycle/compact.js';
export type { RollbackResult } from './lifecycle/rollback.js';
export type { DiscardResult } from './lifecycle/discard.js';
export type { DiffResult } from './lifecycle/diff.js';
export type { Change } from './layer/layer-plan.js';
export type { VerifyResult } from './lifecycle/verify.js';
export type { TreeStatus } from './lifecycle/status.js';
export type { RunResult } from './lifecycle/run-command.js';
export { runDoctor, type DoctorReport, type Check } from './doctor/checks.js';
export { runDemo, type DemoResult } from './demo/demo.js';
export { generateRepo, applySync, type RepoShape } from './corpus/portage.js';
export { main } from './cli/main.js';
