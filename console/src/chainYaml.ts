// A chain as YAML text: written from the bindings in force, read back for a PUT, and the
// places the API names (`policies[0].config`) found again in the text as line numbers.

import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify } from 'yaml';
import type { PolicyBinding } from './types';

export function chainToYaml(chain: PolicyBinding[]): string {
  if (chain.length === 0) return '[]\n';
  return stringify(chain, { lineWidth: 0 });
}

export type Parsed = { ok: true; chain: PolicyBinding[] } | { ok: false; message: string };

export function yamlToChain(text: string): Parsed {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = e.linePos?.[0];
    return { ok: false, message: at ? `line ${at.line}, column ${at.col}: ${firstLine(e.message)}` : firstLine(e.message) };
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return { ok: true, chain: [] };
  if (!Array.isArray(value)) return { ok: false, message: 'The chain is a list of bindings, each `- policy: NAME` with its `config`.' };
  for (const [i, b] of value.entries()) {
    if (typeof b !== 'object' || b === null || Array.isArray(b) || typeof (b as { policy?: unknown }).policy !== 'string') {
      return { ok: false, message: `Binding ${i + 1} needs \`policy:\`, a standard policy's name or sha256:<hex>.` };
    }
  }
  return { ok: true, chain: value as PolicyBinding[] };
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

/** `policies[0].config.deny[1]` as path segments within the chain: `[0, 'config', 'deny', 1]`. */
export function segments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) {
    out.push(m[1] !== undefined ? Number(m[1]) : m[2]);
  }
  if (out[0] === 'policies' || out[0] === 'chain') out.shift();
  return out;
}

/** The line of `text` where the place the API names is, or of the nearest enclosing place. */
export function lineOf(text: string, path: string): number | null {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length > 0) return null;
  const segs = segments(path);
  if (segs.length === 0 || typeof segs[0] !== 'number') return null;
  for (let n = segs.length; n > 0; n--) {
    const at = startOf(doc.getIn(segs.slice(0, n - 1), true), segs[n - 1]);
    if (at !== null) return lc.linePos(at).line;
  }
  return null;
}

/** Where `key` starts in `parent`: a map's key (`config:`), or a list's item. */
function startOf(parent: unknown, key: string | number): number | null {
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
    const node = pair?.key as { range?: [number, number, number] } | undefined;
    return node?.range?.[0] ?? null;
  }
  if (isSeq(parent) && typeof key === 'number') {
    const node = parent.items[key] as { range?: [number, number, number] } | undefined;
    return node?.range?.[0] ?? null;
  }
  return null;
}
