// The admin API's credential: a random bearer token in a file only its owner can read (0600).
// `ambit up` makes it in the state directory; the CLI reads it from there (or from
// $AMBIT_ADMIN_TOKEN) and sends it as `Authorization: Bearer <token>`.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { AmbitError, errnoCode } from '../core/errors.js';

/** The token in `path`, made (random, mode 0600) when the file does not exist. */
export async function ensureAdminToken(path: string): Promise<string> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    if (t.length < 16) throw new AmbitError('AMBIT_ERR_CONFIG_READ', `the admin token in ${path} is shorter than 16 characters`, { hint: 'delete the file to have a new one made' });
    await chmod(path, 0o600);
    return t;
  } catch (e: unknown) {
    if (errnoCode(e) !== 'ENOENT') {
      if (e instanceof AmbitError) throw e;
      throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read the admin token ${path}`, { cause: e });
    }
  }
  const token = randomBytes(24).toString('base64url');
  await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' });
  return token;
}
