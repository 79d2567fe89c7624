// Structured logging: one JSON object per line. Levels (error, warn, info, debug) and named
// tracers: `AMBIT_TRACE=pool,xds` turns on debug lines for those parts only. A tracer's
// `enabled` flag is a plain property, so a hot path pays one property read when it is off:
//
//   if (trace.enabled) trace.log('stream opened', { id });

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

export interface Tracer {
  readonly name: string;
  enabled: boolean;
  log(msg: string, fields?: LogFields): void;
}

interface LoggerState {
  level: LogLevel;
  sink: LogSink;
  tracers: Map<string, TracerImpl>;
  enabledTracers: Set<string>;
  /** The clock's time as ISO 8601, formatted once per millisecond. */
  time(): string;
}

function isoClock(clock: () => number): () => string {
  let lastMs = NaN;
  let last = '';
  return () => {
    const ms = clock();
    if (ms !== lastMs) {
      lastMs = ms;
      last = new Date(ms).toISOString();
    }
    return last;
  };
}

class TracerImpl implements Tracer {
  enabled = false;
  constructor(readonly name: string, private readonly logger: Logger) {}
  log(msg: string, fields?: LogFields): void {
    if (this.enabled) this.logger.emit('debug', msg, { trace: this.name, ...fields });
  }
}

export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  /** Comma-separated tracer names, or `all`. Defaults to $AMBIT_TRACE. */
  trace?: string;
  component?: string;
  clock?: () => number;
}

export class Logger {
  private readonly state: LoggerState;
  private readonly base: LogFields;
  private readonly baseKeys: string[];
  /** `,"k":v` for every base field, written once: most lines override none of them. */
  private readonly baseJson: string;

  constructor(options: LoggerOptions = {}, state?: LoggerState, base?: LogFields) {
    const clock = options.clock ?? Date.now;
    this.state = state ?? {
      level: options.level ?? parseLevel(process.env.AMBIT_LOG_LEVEL) ?? 'info',
      sink: options.sink ?? stderrSink(),
      tracers: new Map(),
      enabledTracers: parseTraceList(options.trace ?? process.env.AMBIT_TRACE ?? ''),
      time: isoClock(clock),
    };
    this.base = base ?? (options.component ? { component: options.component } : {});
    this.baseKeys = Object.keys(this.base);
    this.baseJson = this.baseKeys.map((k) => `,${JSON.stringify(k)}:${stringify(this.base[k])}`).join('');
  }

  /** A logger that adds fields to every line (shares level, sink and tracers). */
  child(fields: LogFields): Logger {
    return new Logger({}, this.state, { ...this.base, ...fields });
  }

  tracer(name: string): Tracer {
    let t = this.state.tracers.get(name);
    if (!t) {
      t = new TracerImpl(name, this);
      t.enabled = this.state.enabledTracers.has(name) || this.state.enabledTracers.has('all');
      this.state.tracers.set(name, t);
    }
    return t;
  }

  get level(): LogLevel {
    return this.state.level;
  }

  setLevel(level: LogLevel): void {
    this.state.level = level;
  }

  /** Replace the set of enabled tracers (`pool,xds`, `all`, or empty for none). */
  setTracing(list: string): void {
    this.state.enabledTracers = parseTraceList(list);
    for (const t of this.state.tracers.values()) {
      t.enabled = this.state.enabledTracers.has(t.name) || this.state.enabledTracers.has('all');
    }
  }

  tracing(): { known: string[]; enabled: string[] } {
    return {
      known: [...this.state.tracers.keys()].sort(),
      enabled: [...this.state.enabledTracers].sort(),
    };
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] <= LEVELS[this.state.level];
  }

  error(msg: string, fields?: LogFields): void { this.emit('error', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.emit('warn', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.emit('info', msg, fields); }
  debug(msg: string, fields?: LogFields): void { this.emit('debug', msg, fields); }

  /** Write a record regardless of level (access logs use this). */
  record(fields: LogFields): void {
    this.state.sink(this.line(undefined, undefined, fields));
  }

  emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] > LEVELS[this.state.level] && !(fields && 'trace' in fields)) return;
    this.state.sink(this.line(level, msg, fields));
  }

  /**
   * One JSON object: time, level, msg, the logger's own fields, then the record's (a record's
   * field replaces a logger field of the same name; undefined values are left out). The
   * record is stringified once as it is and spliced in: the hot path (an access-log line per
   * request) builds no merged object.
   */
  private line(level: LogLevel | undefined, msg: string | undefined, fields: LogFields | undefined): string {
    let head = `{"time":"${this.state.time()}"`;
    if (level !== undefined && !(fields && 'level' in fields)) head += `,"level":"${level}"`;
    if (msg !== undefined && !(fields && 'msg' in fields)) head += `,"msg":${JSON.stringify(msg)}`;
    if (!fields || !this.baseKeys.some((k) => k in fields)) head += this.baseJson;
    else for (const k of this.baseKeys) if (!(k in fields)) head += `,${JSON.stringify(k)}:${stringify(this.base[k])}`;
    const body = fields ? stringify(fields) : '{}';
    return body.length > 2 ? `${head},${body.slice(1)}` : `${head}}`;
  }
}

let sharedStderrSink: LogSink | undefined;

/**
 * Lines to stderr, written together once per turn of the event loop (one write for all the
 * access-log lines of a busy turn instead of one each; stderr to a file is a synchronous
 * write). What is pending is written on exit.
 */
function stderrSink(): LogSink {
  if (sharedStderrSink) return sharedStderrSink;
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('\n') + '\n';
    pending = [];
    process.stderr.write(text);
  };
  process.once('exit', flush);
  sharedStderrSink = (line) => {
    pending.push(line);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush).unref();
    }
  };
  return sharedStderrSink;
}

export function parseLevel(s: string | undefined): LogLevel | undefined {
  return s && s in LEVELS ? (s as LogLevel) : undefined;
}

function parseTraceList(s: string): Set<string> {
  return new Set(s.split(',').map((x) => x.trim()).filter(Boolean));
}

function replacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return { message: v.message, code: (v as NodeJS.ErrnoException).code };
  return v;
}

/** JSON text; the replacer (slow) only when a value is an Error, a bigint or holds an object. */
function stringify(v: unknown): string {
  if (typeof v === 'bigint' || v instanceof Error) return JSON.stringify(v, replacer) ?? 'null';
  if (typeof v === 'object' && v !== null) {
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if ((typeof x === 'object' && x !== null) || typeof x === 'bigint') return JSON.stringify(v, replacer);
    }
  }
  return JSON.stringify(v) ?? 'null';
}

/** A logger that keeps lines in memory; for tests. */
export function memoryLogger(options: Omit<LoggerOptions, 'sink'> = {}): { logger: Logger; lines: LogFields[] } {
  const lines: LogFields[] = [];
  const logger = new Logger({ ...options, sink: (line) => lines.push(JSON.parse(line) as LogFields) });
  return { logger, lines };
}
