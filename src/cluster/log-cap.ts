// Log files of the local cluster have a size cap: a process (or a pod) that logs without end
// must not fill the disk. Every file under the logs directory that grew past the cap is
// copied to `<file>.1` (replacing the previous one) and truncated, as logrotate's
// copytruncate does: the writers keep their descriptors (opened with O_APPEND, so their next
// write lands at the new end), and at most 2 × cap bytes per log stay on disk.
import { copyFile, readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_MAX_LOG_BYTES = 50 * 1024 * 1024;

/** Rotates the files over `maxBytes`; returns their paths. Errors on one file do not stop the others. */
export async function capLogFiles(dir: string, maxBytes: number): Promise<string[]> {
  const rotated: string[] = [];
  let entries: string[];
  try {
    entries = (await readdir(dir, { recursive: true, encoding: 'utf8' })).filter((f) => f.endsWith('.log'));
  } catch {
    return rotated;
  }
  for (const rel of entries) {
    const file = join(dir, rel);
    try {
      const st = await stat(file);
      if (!st.isFile() || st.size <= maxBytes) continue;
      await copyFile(file, `${file}.1`);
      await truncate(file, 0);
      rotated.push(file);
    } catch {
      // gone meanwhile, or not ours to touch
    }
  }
  return rotated;
}
