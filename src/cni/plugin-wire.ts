// What the `ambit-cni` binary (native/ambit-cni.c) and the node agent say over the agent's
// unix stream socket. The binary stays tiny and does no JSON: it forwards its CNI_* variables
// and stdin, and prints what the agent answers.
//
//   request  (plugin -> agent), then the plugin shuts down its writing side:
//     AMBIT-CNI/1\n
//     <NAME> <length>\n<length bytes>\n      for each CNI_* variable that is set, and STDIN
//     END\n
//   response (agent -> plugin), then the agent closes:
//     <exit code>\n<bytes the plugin prints on stdout>
//
// Invariants:
//  - parseRequest takes hostile bytes: it never throws, caps the whole request at
//    MAX_REQUEST_BYTES and each field's count, accepts each name at most once, and says what is
//    wrong otherwise. A request is complete only with its END line and nothing after it.
//  - Names are the six CNI_* variables and STDIN; anything else is refused.
import { CNI_ENV_NAMES, type CniEnvironment } from './spec.js';

export const WIRE_MAGIC = 'AMBIT-CNI/1';
export const MAX_REQUEST_BYTES = 1024 * 1024;
const NAMES = new Set<string>([...CNI_ENV_NAMES, 'STDIN']);

export interface WireRequest {
  env: CniEnvironment;
  stdin: string;
}

export type ParseResult = { ok: true; value: WireRequest } | { ok: false; error: string } | { ok: 'partial' };

/** Encodes a request as the binary does (used by tests and by the TypeScript client). */
export function encodeRequest(req: WireRequest): Buffer {
  const parts: Buffer[] = [Buffer.from(`${WIRE_MAGIC}\n`)];
  const field = (name: string, value: string) => {
    const bytes = Buffer.from(value, 'utf8');
    parts.push(Buffer.from(`${name} ${bytes.length}\n`), bytes, Buffer.from('\n'));
  };
  for (const name of CNI_ENV_NAMES) {
    const v = req.env[name];
    if (v !== undefined) field(name, v);
  }
  field('STDIN', req.stdin);
  parts.push(Buffer.from('END\n'));
  return Buffer.concat(parts);
}

/**
 * Parses a request from the bytes received so far: 'partial' while it may still complete,
 * an error as soon as it cannot.
 */
export function parseRequest(buf: Buffer): ParseResult {
  if (buf.length > MAX_REQUEST_BYTES) return { ok: false, error: `request larger than ${MAX_REQUEST_BYTES} bytes` };
  const magic = Buffer.from(`${WIRE_MAGIC}\n`);
  const head = buf.subarray(0, magic.length);
  if (!magic.subarray(0, head.length).equals(head)) return { ok: false, error: 'not an ambit-cni request (bad magic)' };
  if (buf.length < magic.length) return { ok: 'partial' };
  let pos = magic.length;
  const env: Record<string, string> = {};
  let stdin: string | undefined;
  const seen = new Set<string>();
  for (let fields = 0; fields <= NAMES.size; fields++) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return buf.length - pos > 64 ? { ok: false, error: 'a field header is too long' } : { ok: 'partial' };
    const line = buf.subarray(pos, nl).toString('latin1');
    if (line === 'END') {
      if (nl + 1 !== buf.length) return { ok: false, error: 'bytes after END' };
      if (stdin === undefined) return { ok: false, error: 'no STDIN field' };
      return { ok: true, value: { env: env as CniEnvironment, stdin } };
    }
    const m = /^([A-Z_]{1,32}) (0|[1-9][0-9]{0,7})$/.exec(line);
    if (!m) return { ok: false, error: `bad field header ${JSON.stringify(line.slice(0, 48))}` };
    const [, name, lenText] = m as unknown as [string, string, string];
    if (!NAMES.has(name)) return { ok: false, error: `unknown field ${name}` };
    if (seen.has(name)) return { ok: false, error: `field ${name} given twice` };
    seen.add(name);
    const len = Number(lenText);
    if (len > MAX_REQUEST_BYTES) return { ok: false, error: `field ${name} is too long` };
    const start = nl + 1;
    if (buf.length < start + len + 1) return { ok: 'partial' };
    if (buf[start + len] !== 0x0a) return { ok: false, error: `field ${name} is not followed by a newline` };
    const value = buf.subarray(start, start + len).toString('utf8');
    if (name === 'STDIN') stdin = value;
    else env[name] = value;
    pos = start + len + 1;
  }
  return { ok: false, error: 'too many fields' };
}

/** The agent's answer: the exit code line, then what the plugin prints. */
export function encodeResponse(exitCode: number, stdout: string): Buffer {
  return Buffer.concat([Buffer.from(`${exitCode}\n`), Buffer.from(stdout, 'utf8')]);
}

/** Parses a whole answer (tests and the TypeScript client); undefined when malformed. */
export function parseResponse(buf: Buffer): { exitCode: number; stdout: string } | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl < 1 || nl > 4) return undefined;
  const code = buf.subarray(0, nl).toString('latin1');
  if (!/^\d{1,3}$/.test(code)) return undefined;
  return { exitCode: Number(code), stdout: buf.subarray(nl + 1).toString('utf8') };
}
