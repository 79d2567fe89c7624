import type { Command } from '../command.js';
import { ZTUNNEL_RESTART } from './specs.js';
export const ztunnelRestartCommand: Command = { ...ZTUNNEL_RESTART, help: 'todo', async run() { return 1; } };
