// Watching config files and directories: any change (debounced) calls `reload`.
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { watch, type FSWatcher } from 'node:fs';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export function watchPaths(paths: readonly string[], logger: Logger, reload: () => Promise<void>, debounceMs = 100, clock: Clock = systemClock): () => void {
  let timer: TimerHandle | undefined;
  const watchers: FSWatcher[] = [];
  const fire = () => {
    timer?.cancel();
    timer = clock.setTimeout(() => {
      reload().catch((e: unknown) => logger.error('config reload failed', { error: describeError(e).message }));
    }, debounceMs);
  };
  for (const p of paths) {
    try {
      watchers.push(watch(p, { recursive: true }, fire));
    } catch (e: unknown) {
      logger.warn('cannot watch config path; changes need a restart or `ambit apply`', { path: p, error: describeError(e).message });
    }
  }
  return () => {
    timer?.cancel();
    for (const w of watchers) w.close();
  };
}
