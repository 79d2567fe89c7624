// Access-log filter expressions: Istio's Telemetry `accessLogging[].filter.expression`, which
// Envoy evaluates as CEL over its request attributes. Ambit reads the part of CEL that log
// filters are written in, over the request attributes a proxy has when a request ends. Pure.
//
// Invariants:
// - Grammar: literals (int, double, 'string' / "string", true, false, null, [lists]), the
//   attributes of ATTRIBUTES and `request.headers['name']`, `duration('1.5s')`, `has(attr)`,
//   `!`, unary `-`, `&&`, `||`, `== != < <= > >=`, `in`, parentheses, and the string methods
//   startsWith / endsWith / contains / matches. Anything else is a parse error with a column,
//   so `ambit validate` refuses what the proxy could not evaluate.
// - An evaluation error (a missing attribute, such as response.grpc_status of a plain HTTP
//   request, or values that cannot be compared) makes the expression false, as in Envoy;
//   `&&` / `||` absorb an error when the other side decides (CEL's commutative logic).
// - Equality between different types is false; ordering them is an error.
// - An expression nests at most MAX_DEPTH levels (parentheses, `!`, chains of `&&`...): parsing
//   and evaluation recurse over it, and a deeper one is a parse error, never a stack overflow
//   in the validator or at the end of every request.
// - `matches()` is RE2, as in CEL (a match anywhere in the string), run by re2js (RE2's
//   linear-time automata in plain JS, no dependencies): no pattern, from a config author or
//   from a request (`request.path.matches(request.headers['x'])`), can backtrack
//   catastrophically. A literal pattern is compiled once, when parsed: one RE2 does not accept
//   (a backreference, lookaround, possessive quantifiers) is a parse error with its column, as
//   `ambit validate` and the Telemetry validator report it. A pattern computed per request is
//   compiled per request and must be at most MAX_PATTERN_CHARS; the text matched at most
//   MAX_MATCH_INPUT_CHARS (the HTTP/1.1 head limit); beyond either, an evaluation error (false).
//   Measured (Node 24, this 2-core machine, 100k runs of `response.code >= 400 ||
//   request.url_path.matches('^/api/v[0-9]+/debug')`): 0.12 µs per filter with re2js, against
//   0.18 µs with a JavaScript RegExp made per request; where that RegExp took 0.5 s on 28
//   characters (`^(a+)+$` on `aaa…!`, doubling with each one), re2js takes microseconds.
//
// Why our own and not a CEL library (bench/micro/log-filter-cel.ts, against
// @marcbachmann/cel-js 8, same 10 filters, Node 24, this project's 2-core machine): both decide
// the same on every request; evaluation with what each reads from a finished request 0.6 µs
// here vs 1.3 µs (CEL's int64 attributes must be BigInts), compile about equal (7–8 µs); and
// `ambit validate` refuses here, with a column, what the library accepts and a proxy could
// never match: a misspelt attribute (`response.cod`, with the list of known ones), a regex
// that does not compile, a duration literal that is not one. The library reads all of CEL
// (a ? b : c, arithmetic, size(), lowerAscii(), macros), which this file refuses with a
// column; if filters come to need that, switch, declaring the attributes as a schema so
// misspellings still fail (the library then says "No such key: cod").

import { RE2JS, RE2JSSyntaxException } from 're2js';

/** The attributes a filter may read, with their CEL types. */
const ATTRIBUTES = {
  'request.method': 'string',
  'request.path': 'string',
  'request.url_path': 'string',
  'request.host': 'string',
  'request.protocol': 'string',
  'request.useragent': 'string',
  'request.id': 'string',
  'request.duration': 'duration',
  'request.total_size': 'int',
  'response.code': 'int',
  'response.grpc_status': 'int',
  'response.total_size': 'int',
  'connection.mtls': 'bool',
  'connection.uri_san_peer_certificate': 'string',
  'source.address': 'string',
  'source.port': 'int',
  'upstream.address': 'string',
} as const;
export type AttributeName = keyof typeof ATTRIBUTES;

/** A duration (CEL's google.protobuf.Duration), in milliseconds. */
export class Duration {
  constructor(readonly ms: number) {}
}

export type FilterValue = string | number | boolean | null | Duration | FilterValue[];

/** What a filter reads when it runs: undefined means the attribute is absent. */
export interface FilterInput {
  attribute(name: AttributeName): string | number | boolean | Duration | undefined;
  header(name: string): string | undefined;
}

type Node =
  | { k: 'lit'; v: FilterValue }
  | { k: 'attr'; name: AttributeName }
  | { k: 'header'; name: string }
  | { k: 'has'; target: Node }
  | { k: 'list'; items: Node[] }
  | { k: 'not' | 'neg'; e: Node }
  | { k: 'and' | 'or'; l: Node; r: Node }
  | { k: 'cmp'; op: '==' | '!=' | '<' | '<=' | '>' | '>='; l: Node; r: Node }
  | { k: 'in'; l: Node; r: Node }
  | { k: 'call'; fn: StringMethod; target: Node; arg: Node; re?: RE2JS };

const STRING_METHODS = ['startsWith', 'endsWith', 'contains', 'matches'] as const;
type StringMethod = (typeof STRING_METHODS)[number];

/** A parsed filter; `test` runs it (an evaluation error is false). */
export interface LogFilter {
  readonly expression: string;
  test(input: FilterInput): boolean;
}

export const MAX_DEPTH = 64;
/** Longest text matches() reads: the HTTP/1.1 codec's head limit (MAX_HEADER_BYTES). */
export const MAX_MATCH_INPUT_CHARS = 16 * 1024;
/** Longest pattern compiled per request (a literal pattern has the config's own bounds). */
export const MAX_PATTERN_CHARS = 1024;

export class LogFilterSyntaxError extends Error {
  constructor(readonly column: number, message: string) {
    super(`column ${column}: ${message}`);
  }
}

class EvalError extends Error {}

/** Parse an expression; throws LogFilterSyntaxError. */
export function parseLogFilter(expression: string): LogFilter {
  const root = new Parser(expression).parseAll();
  if (depthOf(root) > MAX_DEPTH) throw new LogFilterSyntaxError(1, `the expression nests deeper than ${MAX_DEPTH} levels; split it or use "in [...]"`);
  return {
    expression,
    test(input) {
      try {
        return evaluate(root, input) === true;
      } catch (e: unknown) {
        if (e instanceof EvalError) return false;
        throw e;
      }
    },
  };
}

// ---- lexer and parser ----

type Token = { t: 'num'; v: number; at: number } | { t: 'str'; v: string; at: number } | { t: 'id'; v: string; at: number } | { t: 'op'; v: string; at: number } | { t: 'end'; at: number };

const OPS = ['&&', '||', '==', '!=', '<=', '>=', '<', '>', '!', '-', '(', ')', '[', ']', '.', ',', '?', ':'];

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const at = i + 1;
    if (/[0-9]/.test(c)) {
      const m = /^(\d+\.\d+(e[+-]?\d+)?|\d+)u?/i.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[1]), at });
      i += m[0].length;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else v += src[j++];
      }
      if (j >= src.length) throw new LogFilterSyntaxError(at, 'the string is not closed');
      out.push({ t: 'str', v, at });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0], at });
      i += m[0].length;
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      if (!op) throw new LogFilterSyntaxError(at, `unexpected "${c}"`);
      out.push({ t: 'op', v: op, at });
      i += op.length;
    }
  }
  out.push({ t: 'end', at: src.length + 1 });
  return out;
}

const KNOWN = `${Object.keys(ATTRIBUTES).join(', ')}, request.headers['<name>']`;

class Parser {
  private readonly toks: Token[];
  private i = 0;
  private depth = 0;

  constructor(src: string) {
    this.toks = lex(src);
  }

  parseAll(): Node {
    if (this.peek().t === 'end') throw new LogFilterSyntaxError(1, 'the expression is empty');
    const n = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw new LogFilterSyntaxError(t.at, `unexpected ${describe(t)}`);
    return n;
  }

  private peek(): Token { return this.toks[this.i]!; }
  private next(): Token { return this.toks[this.i++]!; }
  private isOp(v: string): boolean { const t = this.peek(); return t.t === 'op' && t.v === v; }
  private expect(v: string): void {
    const t = this.next();
    if (t.t !== 'op' || t.v !== v) throw new LogFilterSyntaxError(t.at, `expected "${v}", found ${describe(t)}`);
  }

  private or(): Node {
    return this.nested(() => this.orChain());
  }

  /** Recursion of the parser itself is bounded (the tree's depth is checked after). */
  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new LogFilterSyntaxError(this.peek().at, `the expression nests deeper than ${MAX_DEPTH} levels`);
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private orChain(): Node {
    let l = this.and();
    while (this.isOp('||')) { this.next(); l = { k: 'or', l, r: this.and() }; }
    if (this.isOp('?')) throw new LogFilterSyntaxError(this.peek().at, 'the conditional operator (a ? b : c) is not supported; use && and ||');
    return l;
  }

  private and(): Node {
    let l = this.rel();
    while (this.isOp('&&')) { this.next(); l = { k: 'and', l, r: this.rel() }; }
    return l;
  }

  private rel(): Node {
    const l = this.unary();
    const t = this.peek();
    if (t.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) {
      this.next();
      return { k: 'cmp', op: t.v as '==', l, r: this.unary() };
    }
    if (t.t === 'id' && t.v === 'in') {
      this.next();
      return { k: 'in', l, r: this.unary() };
    }
    return l;
  }

  private unary(): Node {
    if (this.isOp('!')) { this.next(); return { k: 'not', e: this.nested(() => this.unary()) }; }
    if (this.isOp('-')) { this.next(); return { k: 'neg', e: this.nested(() => this.unary()) }; }
    return this.member();
  }

  private member(): Node {
    let n = this.primary();
    while (this.isOp('.')) {
      this.next();
      const t = this.next();
      if (t.t !== 'id' || !(STRING_METHODS as readonly string[]).includes(t.v)) {
        throw new LogFilterSyntaxError(t.at, `${describe(t)} is not a method Ambit evaluates (${STRING_METHODS.join(', ')})`);
      }
      this.expect('(');
      const arg = this.or();
      this.expect(')');
      const re = t.v === 'matches' && arg.k === 'lit' && typeof arg.v === 'string' ? compileRegex(arg.v, t.at) : undefined;
      n = { k: 'call', fn: t.v as StringMethod, target: n, arg, ...(re ? { re } : {}) };
    }
    return n;
  }

  private primary(): Node {
    const t = this.next();
    switch (t.t) {
      case 'num': return { k: 'lit', v: t.v };
      case 'str': return { k: 'lit', v: t.v };
      case 'end': throw new LogFilterSyntaxError(t.at, 'the expression ends too early');
      case 'op':
        if (t.v === '(') { const e = this.or(); this.expect(')'); return e; }
        if (t.v === '[') {
          const items: Node[] = [];
          while (!this.isOp(']')) {
            items.push(this.or());
            if (!this.isOp(']')) this.expect(',');
          }
          this.next();
          return { k: 'list', items };
        }
        throw new LogFilterSyntaxError(t.at, `unexpected ${describe(t)}`);
      case 'id':
        if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
        if (t.v === 'null') return { k: 'lit', v: null };
        if (t.v === 'has') {
          this.expect('(');
          const inner = this.path(this.next());
          this.expect(')');
          return { k: 'has', target: inner };
        }
        if (t.v === 'duration') {
          this.expect('(');
          const s = this.next();
          if (s.t !== 'str') throw new LogFilterSyntaxError(s.at, 'duration() takes a string such as "1.5s" or "200ms"');
          this.expect(')');
          return { k: 'lit', v: new Duration(parseDuration(s.v, s.at)) };
        }
        return this.path(t);
    }
  }

  /** An attribute: `a.b` from ATTRIBUTES, or request.headers['name']. */
  private path(first: Token): Node {
    if (first.t !== 'id') throw new LogFilterSyntaxError(first.at, `expected an attribute, found ${describe(first)}`);
    let name = first.v;
    // `a.b.c` continues the name; `.name(` is a method call, left to member().
    while (this.isOp('.') && this.toks[this.i + 1]?.t === 'id' && !isOpToken(this.toks[this.i + 2], '(')) {
      this.next();
      name += `.${(this.next() as { v: string }).v}`;
    }
    if (name.startsWith('request.headers.')) throw new LogFilterSyntaxError(first.at, "a header is named by a string: request.headers['x-name']");
    if (name === 'request.headers') {
      this.expect('[');
      const key = this.next();
      if (key.t !== 'str') throw new LogFilterSyntaxError(key.at, "a header is named by a string: request.headers['x-name']");
      this.expect(']');
      return { k: 'header', name: key.v.toLowerCase() };
    }
    if (!(name in ATTRIBUTES)) throw new LogFilterSyntaxError(first.at, `"${name}" is not an attribute Ambit provides; known: ${KNOWN}`);
    return { k: 'attr', name: name as AttributeName };
  }
}

/** The depth of a tree, without recursion (a long `a && b && ...` chain is deep). */
function depthOf(root: Node): number {
  let max = 0;
  const stack: [Node, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [n, d] = stack.pop()!;
    if (d > max) max = d;
    const kids = n.k === 'list' ? n.items : n.k === 'not' || n.k === 'neg' ? [n.e] : n.k === 'has' ? [n.target]
      : n.k === 'and' || n.k === 'or' || n.k === 'cmp' || n.k === 'in' ? [n.l, n.r] : n.k === 'call' ? [n.target, n.arg] : [];
    for (const c of kids) stack.push([c, d + 1]);
  }
  return max;
}

function isOpToken(t: Token | undefined, v: string): boolean {
  return t?.t === 'op' && t.v === v;
}

function describe(t: Token): string {
  return t.t === 'end' ? 'the end' : t.t === 'str' ? `'${t.v}'` : `"${t.v}"`;
}

function compileRegex(re: string, at: number): RE2JS {
  try {
    return RE2JS.compile(re);
  } catch (e: unknown) {
    const why = e instanceof RE2JSSyntaxException ? e.getDescription() : e instanceof Error ? e.message : String(e);
    throw new LogFilterSyntaxError(at, `${JSON.stringify(re)} is not an RE2 regular expression (CEL's matches() is RE2: no backreferences, no lookahead or lookbehind): ${why}`);
  }
}

/** `1.5s`, `200ms`, `1m30s`, `2h`, `10us`, `5ns` -> milliseconds. */
function parseDuration(s: string, at: number): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== s) throw new LogFilterSyntaxError(at, `"${s}" is not a duration (e.g. "1.5s", "200ms", "1m30s")`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]!]!, 0);
}

// ---- evaluation ----

function evaluate(n: Node, input: FilterInput): FilterValue {
  switch (n.k) {
    case 'lit': return n.v;
    case 'attr': {
      const v = input.attribute(n.name);
      if (v === undefined) throw new EvalError(`no ${n.name}`);
      return v;
    }
    case 'header': {
      const v = input.header(n.name);
      if (v === undefined) throw new EvalError(`no header ${n.name}`);
      return v;
    }
    case 'has': return n.target.k === 'attr' ? input.attribute(n.target.name) !== undefined : input.header((n.target as { name: string }).name) !== undefined;
    case 'list': return n.items.map((x) => evaluate(x, input));
    case 'not': return !asBool(evaluate(n.e, input));
    case 'neg': {
      const v = evaluate(n.e, input);
      if (typeof v !== 'number') throw new EvalError('- of a non-number');
      return -v;
    }
    case 'and':
    case 'or': {
      const decisive = n.k === 'or';
      let failed = false;
      for (const side of [n.l, n.r]) {
        try {
          if (asBool(evaluate(side, input)) === decisive) return decisive;
        } catch (e: unknown) {
          if (!(e instanceof EvalError)) throw e;
          failed = true;
        }
      }
      if (failed) throw new EvalError('logic over an error');
      return !decisive;
    }
    case 'cmp': return compare(n.op, evaluate(n.l, input), evaluate(n.r, input));
    case 'in': {
      const l = evaluate(n.l, input);
      const r = evaluate(n.r, input);
      if (!Array.isArray(r)) throw new EvalError('in needs a list');
      return r.some((x) => equal(l, x));
    }
    case 'call': {
      const t = evaluate(n.target, input);
      const a = evaluate(n.arg, input);
      if (typeof t !== 'string' || typeof a !== 'string') throw new EvalError(`${n.fn} needs strings`);
      switch (n.fn) {
        case 'startsWith': return t.startsWith(a);
        case 'endsWith': return t.endsWith(a);
        case 'contains': return t.includes(a);
        case 'matches': {
          if (t.length > MAX_MATCH_INPUT_CHARS) throw new EvalError(`matches() over more than ${MAX_MATCH_INPUT_CHARS} characters`);
          if (n.re) return n.re.test(t);
          if (a.length > MAX_PATTERN_CHARS) throw new EvalError(`a pattern of more than ${MAX_PATTERN_CHARS} characters`);
          let re: RE2JS;
          try {
            re = RE2JS.compile(a);
          } catch {
            throw new EvalError('bad regular expression');
          }
          return re.test(t);
        }
      }
    }
  }
}

function asBool(v: FilterValue): boolean {
  if (typeof v !== 'boolean') throw new EvalError('not a bool');
  return v;
}

function equal(a: FilterValue, b: FilterValue): boolean {
  if (a instanceof Duration && b instanceof Duration) return a.ms === b.ms;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]!));
  return a === b;
}

function compare(op: '==' | '!=' | '<' | '<=' | '>' | '>=', a: FilterValue, b: FilterValue): boolean {
  if (op === '==') return equal(a, b);
  if (op === '!=') return !equal(a, b);
  let x: number | string;
  let y: number | string;
  if (a instanceof Duration && b instanceof Duration) { x = a.ms; y = b.ms; }
  else if ((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')) { x = a; y = b; }
  else throw new EvalError('values of different types are not ordered');
  switch (op) {
    case '<': return x < y;
    case '<=': return x <= y;
    case '>': return x > y;
    case '>=': return x >= y;
  }
}
