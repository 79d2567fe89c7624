// Reading config text: files, directories and strings of multi-document YAML or JSON.
// Each document keeps its parsed YAML tree so that a diagnostic about any JSON path can be
// pointed at the line that holds it.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import type { Diagnostic, PathSegment } from './diagnostics.js';

export interface RawDocument {
  file: string;
  /** 1-based line where the document starts. */
  line: number;
  value: unknown;
  /** Line/column of the deepest existing node on `path` (the key's line when `atKey`). */
  locate(path: readonly PathSegment[], atKey?: boolean): { line: number; column: number };
  /**
   * The line on which the text of the string at `path` starts (the line after `|` or `>` for
   * a block scalar), so that a line inside an embedded document can be mapped to the file.
   */
  contentLine?(path: readonly PathSegment[]): number | undefined;
}

export interface SourceText {
  file: string;
  text: string;
}

const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Expand files and directories (recursively, sorted) into config texts. */
export async function readSources(paths: readonly string[]): Promise<{ sources: SourceText[]; diagnostics: Diagnostic[] }> {
  const sources: SourceText[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const p of paths) {
    try {
      const st = await stat(p);
      if (st.isDirectory()) {
        for (const f of await listConfigFiles(p)) sources.push({ file: f, text: await readFile(f, 'utf8') });
      } else {
        sources.push({ file: p, text: await readFile(p, 'utf8') });
      }
    } catch (e: unknown) {
      const code = (e as NodeJS.ErrnoException).code;
      diagnostics.push({
        severity: 'error', code: 'unreadable', file: p, line: 0,
        message: code === 'ENOENT' ? 'no such file or directory' : `cannot read: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  return { sources, diagnostics };
}

async function listConfigFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listConfigFiles(p)));
    else if (CONFIG_EXTENSIONS.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out;
}

/** Parse one text into documents; syntax errors become diagnostics (and drop that document). */
export function parseSource(src: SourceText): { documents: RawDocument[]; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const documents: RawDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  const docs = parseAllDocuments(src.text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineCounter.linePos(e.pos[0]);
        diagnostics.push({ severity: 'error', code: 'syntax', file: src.file, line: pos.line, column: pos.col, message: firstLine(e.message) });
      }
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // empty document (e.g. a trailing ---)
    const start = doc.contents?.range?.[0] ?? 0;
    documents.push({
      file: src.file,
      line: lineCounter.linePos(start).line,
      value,
      locate: (path, atKey = false) => locate(doc, lineCounter, path, atKey),
      contentLine: (path) => contentLine(doc, lineCounter, path),
    });
  }
  return { documents, diagnostics };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function contentLine(doc: Document, lc: LineCounter, path: readonly PathSegment[]): number | undefined {
  const node = doc.getIn(path, true);
  if (!isScalar(node) || !node.range) return undefined;
  const line = lc.linePos(node.range[0]).line;
  return node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED' ? line + 1 : line;
}

function locate(doc: Document, lc: LineCounter, path: readonly PathSegment[], atKey: boolean): { line: number; column: number } {
  let node: unknown = doc.contents;
  let pos = (node as YamlNode | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      const keyNode = pair.key as YamlNode;
      if (atKey && i === path.length - 1) {
        pos = keyNode.range?.[0] ?? pos;
        break;
      }
      node = pair.value;
      pos = (node as YamlNode | null)?.range?.[0] ?? keyNode.range?.[0] ?? pos;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      pos = (item as YamlNode | null)?.range?.[0] ?? pos;
    } else {
      break;
    }
  }
  const p = lc.linePos(pos);
  return { line: p.line, column: p.col };
}
