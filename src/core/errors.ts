// One error type for the whole project. Every error has a stable code (AMBIT_ERR_...), a
// message that says what went wrong, and where possible a hint that says what to do.
// Expected outcomes (a deny, an invalid config, no healthy endpoint) are NOT errors: they
// are discriminated unions returned by the function that decides them.

export type ErrorCode =
  | 'AMBIT_ERR_CONFIG_INVALID'
  | 'AMBIT_ERR_CONFIG_READ'
  | 'AMBIT_ERR_USAGE'
  | 'AMBIT_ERR_NOT_FOUND'
  | 'AMBIT_ERR_CA'
  | 'AMBIT_ERR_CSR_IDENTITY'
  | 'AMBIT_ERR_CERT'
  | 'AMBIT_ERR_IDENTITY'
  | 'AMBIT_ERR_TLS'
  | 'AMBIT_ERR_HBONE'
  | 'AMBIT_ERR_CONNECT'
  | 'AMBIT_ERR_TIMEOUT'
  | 'AMBIT_ERR_XDS'
  | 'AMBIT_ERR_NATIVE'
  | 'AMBIT_ERR_NETNS'
  | 'AMBIT_ERR_CLUSTER'
  | 'AMBIT_ERR_KUBERNETES'
  | 'AMBIT_ERR_PERMISSION'
  | 'AMBIT_ERR_CNI'
  | 'AMBIT_ERR_ZDS'
  | 'AMBIT_ERR_FIPS'
  | 'AMBIT_ERR_INTERNAL';

export interface AmbitErrorOptions {
  cause?: unknown;
  hint?: string;
  details?: Record<string, unknown>;
}

export class AmbitError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AmbitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AmbitError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The message with the hint, as a person should read it. */
  explain(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

/** Narrow an unknown thrown value to something with a message and, maybe, a code. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof AmbitError) return { code: e.code, message: e.message };
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return { code: typeof code === 'string' ? code : 'AMBIT_ERR_INTERNAL', message: e.message };
  }
  return { code: 'AMBIT_ERR_INTERNAL', message: String(e) };
}

export function errnoCode(e: unknown): string | undefined {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export type Result<T, E = AmbitError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
