// The management API, as the console speaks to it: JSON with the admin token, ETags read and
// sent back in If-Match, problems (RFC 9457) turned into ApiError.

import type { Problem } from './types';

const TOKEN_KEY = 'tollgate.console.token';

/** The admin token, held for this tab only. */
export const token = {
  get(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(value: string): void {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Told when the API refuses the token (401), so the console asks for it again. */
let onUnauthorized: (() => void) | null = null;
export function whenUnauthorized(f: (() => void) | null): void {
  onUnauthorized = f;
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, problem: Problem | null, fallback: string) {
    super(problem?.detail || problem?.title || fallback);
    this.status = status;
    this.problem = problem;
  }

  /** Someone changed the resource since it was read (412). */
  get stale(): boolean {
    return this.status === 412;
  }
}

export interface Answer<T> {
  status: number;
  etag: string | null;
  body: T;
}

export interface RequestOptions {
  method?: string;
  /** JSON, unless `raw` is given. */
  body?: unknown;
  /** A body sent as it is, with `contentType`. */
  raw?: Blob | ArrayBuffer;
  contentType?: string;
  ifMatch?: string | null;
  /** Sends this token instead of the one held (signing in). */
  withToken?: string;
  signal?: AbortSignal;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  const bearer = opts.withToken ?? token.get();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] = opts.contentType ?? 'application/octet-stream';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
  let resp: Response;
  try {
    resp = await fetch(path, { method: opts.method ?? 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, 'The gateway could not be reached');
  }
  const text = await resp.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!resp.ok) {
    const problem = isProblem(parsed) ? parsed : null;
    if (resp.status === 401 && opts.withToken === undefined && onUnauthorized) onUnauthorized();
    throw new ApiError(resp.status, problem, `${resp.status} ${resp.statusText || 'error'}`);
  }
  return { status: resp.status, etag: resp.headers.get('etag'), body: parsed as T };
}

function isProblem(v: unknown): v is Problem {
  return typeof v === 'object' && v !== null && 'status' in v && ('detail' in v || 'title' in v);
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>(path, { signal });

/** A path segment, escaped. */
export const seg = encodeURIComponent;

/** What to tell a person about a failed request. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.stale) return `Someone else changed this since it was shown, so nothing was changed. It has been reloaded: check it and try again. (${e.message})`;
    return e.message;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
