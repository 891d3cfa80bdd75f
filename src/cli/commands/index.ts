/** Every command the CLI offers, in the order help lists them. */
import type { CommandSpec } from '../spec.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { initCommand } from './init.js';
import { inspectCommand } from './inspect.js';
import { hookCommand, installCommand, runCommand, uninstallCommand } from './integrations.js';
import { completionCommand, manCommand, treesCommand } from './meta.js';
import {
  commitCommand,
  compactCommand,
  diffCommand,
  discardCommand,
  restartCommand,
  rollbackCommand,
  startCommand,
  stopCommand,
  verifyCommand,
} from './lifecycle.js';
import { statusCommand } from './status.js';
import { keyCommand, publishCommand, pullCommand } from './oci.js';

export const COMMANDS: CommandSpec[] = [
  initCommand,
  startCommand,
  commitCommand,
  stopCommand,
  restartCommand,
  statusCommand,
  diffCommand,
  discardCommand,
  compactCommand,
  rollbackCommand,
  verifyCommand,
  inspectCommand,
  publishCommand,
  pullCommand,
  keyCommand,
  doctorCommand,
  runCommand,
  installCommand,
  uninstallCommand,
  completionCommand,
  manCommand,
  demoCommand,
  hookCommand,
  treesCommand,
];
