// A bearer token read from a file, again whenever the file changes: a projected
// ServiceAccount token on Kubernetes is rotated by the kubelet (hours), and the proxy must
// present the current one on its next call, not the one it started with.
import { readFileSync, statSync } from 'node:fs';
import { AmbitError } from '../core/errors.js';
import type { TokenSource } from './credentials.js';

/** A TokenSource over `path`: read at once (so a missing file fails at start), re-read on change. */
export function tokenFromFile(path: string): TokenSource {
  let cached = read(path);
  let stamp = stampOf(path);
  return () => {
    const now = stampOf(path);
    if (now !== stamp) {
      try {
        cached = read(path);
        stamp = now;
      } catch {
        // Mid-rotation (renamed away for an instant): keep the last token for this call.
      }
    }
    return cached;
  };
}

function read(path: string): string {
  try {
    const t = readFileSync(path, 'utf8').trim();
    if (!t) throw new Error('the file is empty');
    return t;
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read the token file ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e, hint: 'is --token-file right (and readable by this process)?' });
  }
}

function stampOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return '';
  }
}
