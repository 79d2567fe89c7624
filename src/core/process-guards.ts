// The last line of defence of a long-running Ambit process (a proxy, the control plane, the
// cluster daemon): a rejected promise nobody awaited, or an error event nobody listened to, is
// logged with its stack and counted — and the process keeps serving. For a proxy, one broken
// connection or timer must never take down every connection of the node. Each part still
// handles its own errors; this only catches what slipped through, and says so loudly.
import type { Logger } from './logger.js';

export interface ProcessGuardStats {
  unhandledRejections: number;
  uncaughtExceptions: number;
}

const stats: ProcessGuardStats = { unhandledRejections: 0, uncaughtExceptions: 0 };
let installed = false;

export function installProcessGuards(logger: Logger): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason: unknown) => {
    stats.unhandledRejections++;
    logger.error('unhandled promise rejection (a bug: please report it); the process keeps running', { error: describe(reason) });
  });
  process.on('uncaughtException', (e: Error, origin: string) => {
    stats.uncaughtExceptions++;
    logger.error('uncaught exception (a bug: please report it); the process keeps running', { origin, error: describe(e) });
  });
}

export function processGuardStats(): ProcessGuardStats {
  return { ...stats };
}

function describe(e: unknown): Record<string, unknown> {
  if (e instanceof Error) return { name: e.name, message: e.message, code: (e as NodeJS.ErrnoException).code, stack: e.stack?.split('\n').slice(0, 8).join('\n') };
  return { value: String(e) };
}
