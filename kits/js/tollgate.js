/**
 * Tollgate policy helpers for JavaScript components built with componentize-js.
 *
 * A thin layer over the bindings componentize-js generates for `wit/policy.wit`: it turns the
 * contract's shapes (variants as `{tag, val}`, `list<u8>`, 64-bit integers as BigInt, results
 * as exceptions, JSON as text) into plain JavaScript, and fills in the hooks a policy leaves out.
 *
 * @module tollgate
 */

// The contract version lives in these specifiers and nowhere else in the policy's JavaScript:
// componentize-js registers each WIT interface as a module under its versioned name only
// (`tollgate:policy/log` without `@x.y.z` is not found), and a static import cannot be computed
// (a dynamic `import()` of these modules fails at build time). A mismatch with `wit/policy.wit`
// fails the build with "Error loading module". On a contract bump change these six lines.
import * as hostState from 'tollgate:policy/state@0.2.0';
import { fetch as hostFetch } from 'tollgate:policy/outbound@0.2.0';
import { get as hostSecret } from 'tollgate:policy/secrets@0.2.0';
import { log as hostLog } from 'tollgate:policy/log@0.2.0';
import { nowMs } from 'tollgate:policy/clock@0.2.0';
import { verifySignature as hostVerify } from 'tollgate:policy/crypto@0.2.0';

/** JSON-RPC error codes the gateway answers with (`tollgate-vocabulary`), so clients see one vocabulary. */
export const code = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  BAD_REQUEST: -32000,
  UNAUTHORIZED: -32001,
  FORBIDDEN: -32003,
  BACKEND_UNAVAILABLE: -32004,
  BACKEND_TIMEOUT: -32005,
  BACKEND_FAILED: -32006,
  POLICY_FAILED: -32007,
  OVERLOADED: -32008,
  RATE_LIMITED: -32009,
  QUOTA_EXCEEDED: -32010,
  SUBSCRIPTION_KEY: -32011,
  SUBSCRIPTION_FORBIDDEN: -32012,
  VERSION_RETIRED: -32013,
  HEADER_MISMATCH: -32020,
  UNSUPPORTED_VERSION: -32022,
});

/** Attribute names the gateway and its policies share (`tollgate-vocabulary`). */
export const attr = Object.freeze({
  SUBJECT: 'auth.sub',
  ISSUER: 'auth.iss',
  SCOPES: 'auth.scopes',
  SUBSCRIPTION: 'subscription',
  PRODUCT: 'product',
});

/**
 * Header or attribute lists: an object (`{name: value}`) or `[name, value]` pairs (to repeat a name).
 * @typedef {Record<string, string> | Array<[string, string]>} Pairs
 */

/** @param {Pairs | undefined} p @returns {Array<[string, string]>} */
const pairs = (p) => (p === undefined ? [] : Array.isArray(p) ? p : Object.entries(p)).map(([k, v]) => [k, String(v)]);

/** JSON text for the contract's `json` fields; a string is taken as a JSON *value*, not as text. */
const json = (v) => JSON.stringify(v);

const bytes = (s) => (typeof s === 'string' ? new TextEncoder().encode(s) : s);
const text = (b) => new TextDecoder().decode(b);

// ---------------------------------------------------------------------------------------------
// Verdicts

/**
 * @typedef {object} Changes What `proceed` changes before the next policy and the backend.
 * @property {unknown} [params] New params (request phase) or result (response phase), any JSON value.
 * @property {Pairs} [setHeaders] Headers sent to an HTTP backend with this request.
 * @property {string[]} [removeHeaders] Configured backend headers to leave out of this request.
 * @property {Pairs} [attributes] Facts for later policies, the response phase and logs.
 * @property {Pairs} [clientHeaders] Headers for the client's HTTP response (e.g. `ratelimit-remaining`).
 */

/**
 * Go on, with these changes (none: unchanged). `continue` is a reserved word, hence the name.
 * @param {Changes} [changes]
 */
export function proceed(changes = {}) {
  return {
    tag: 'continue',
    val: {
      params: changes.params === undefined ? undefined : json(changes.params),
      setHeaders: pairs(changes.setHeaders),
      removeHeaders: changes.removeHeaders ?? [],
      attributes: pairs(changes.attributes),
      clientHeaders: pairs(changes.clientHeaders),
    },
  };
}

/**
 * Stop and answer the client with a JSON-RPC error.
 * @param {number} errorCode A code from {@link code}, or your own.
 * @param {string} message
 * @param {{status?: number, headers?: Pairs, data?: unknown}} [opts] HTTP status (none: 200 for a
 *   request, 400 for a notification), response headers, and the error's `data` (any JSON value).
 */
export function deny(errorCode, message, { status, headers, data } = {}) {
  return {
    tag: 'deny',
    val: {
      error: { code: errorCode, message, data: data === undefined ? undefined : json(data) },
      httpStatus: status,
      headers: pairs(headers),
    },
  };
}

/** 401: the caller must authenticate. Pass `www-authenticate` in `opts.headers`. */
export const unauthorized = (message, opts = {}) => deny(code.UNAUTHORIZED, message, { status: 401, ...opts });
/** 403: the caller may not do this. */
export const forbidden = (message, opts = {}) => deny(code.FORBIDDEN, message, { status: 403, ...opts });
/** 429 with `retry-after` in whole seconds. */
export const rateLimited = (message, retryAfterS, opts = {}) =>
  deny(code.RATE_LIMITED, message, {
    status: 429,
    ...opts,
    headers: [['retry-after', String(Math.ceil(retryAfterS))], ...pairs(opts.headers)],
  });
/** -32602: the params are not acceptable (HTTP 200, as JSON-RPC has it). */
export const invalidParams = (message, opts = {}) => deny(code.INVALID_PARAMS, message, opts);

/** Stop and answer with this result (any JSON value) without calling the backend; in the response phase, replace the result. */
export const respond = (result) => ({ tag: 'respond', val: json(result) });

/** Message verdict: deliver the backend's message unchanged. */
export const pass = () => ({ tag: 'pass' });
/** Message verdict: deliver this JSON-RPC message instead; same kind, method and id as the original. */
export const replace = (message) => ({ tag: 'replace', val: json(message) });
/**
 * Message verdict: do not deliver the message. A backend request (sampling, elicitation) is
 * answered with this error, or a generic refusal when `errorCode` is left out.
 * @param {number} [errorCode] @param {string} [message]
 */
export const drop = (errorCode, message = 'refused by a policy') =>
  ({ tag: 'drop', val: errorCode === undefined ? undefined : { code: errorCode, message, data: undefined } });

/**
 * The hooks a policy wants called; the gateway skips the rest, instance and all.
 * @param {...('request'|'response'|'visibility'|'message')} names
 * @returns {{request?: boolean, response?: boolean, visibility?: boolean, message?: boolean}}
 */
export function hooks(...names) {
  const flags = {};
  for (const n of names) {
    if (!['request', 'response', 'visibility', 'message'].includes(n)) throw new TypeError(`no hook \`${n}\``);
    flags[n] = true;
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// The policy export

/**
 * Why `init` refuses its config: thrown from `init`, it becomes the `err` string, so the config
 * fails `tollgate validate` and a reload. (componentize-js maps a throw to `err` only for a value
 * with a `payload` property or a non-Error; a plain `Error` thrown from an export traps.)
 */
export class ConfigError extends Error {
  constructor(message) {
    super(message);
    Object.defineProperty(this, 'payload', { value: message });
  }
}

/**
 * @typedef {object} Exchange The `exchange` resource (borrowed: use it only during the call).
 * Its methods are the WIT's in camelCase: `phase()`, `method()`, `target()`, `params()` (JSON
 * text), `header(name)`, `attribute(key)`, `clientIp()`, `sessionId()`, `server()`, ...; an
 * absent `option` is `undefined`.
 */

/**
 * The `policy` export, ready for `export const policy = definePolicy({...})`.
 *
 * - `init(config)` gets the binding's `config:` parsed (`null` when it has none); it returns {@link hooks} and refuses a config by
 *   throwing (any exception, not only {@link ConfigError}, becomes the `err` string).
 * - Hooks left out default to `proceed()` / `pass()` / visible, for a policy whose `hooks`
 *   does not name them (the gateway never calls them then).
 * - `onMessage(ex, message)` gets the backend's JSON-RPC message parsed.
 * - An exception from a hook traps the instance: the gateway applies the binding's failure mode.
 *
 * @param {{
 *   init?: (config: any) => object,
 *   onRequest?: (ex: Exchange) => object,
 *   onResponse?: (ex: Exchange) => object,
 *   onMessage?: (ex: Exchange, message: any) => object,
 *   visible?: (ex: Exchange, tool: string) => boolean,
 * }} spec
 */
export function definePolicy(spec) {
  return {
    init(config) {
      try {
        return spec.init ? spec.init(JSON.parse(config)) : {};
      } catch (e) {
        return { tag: 'err', val: e instanceof Error ? e.message : String(e) };
      }
    },
    onRequest: spec.onRequest ?? (() => proceed()),
    onResponse: spec.onResponse ?? (() => proceed()),
    onMessage: spec.onMessage ? (ex, message) => spec.onMessage(ex, JSON.parse(message)) : () => pass(),
    visible: spec.visible ?? (() => true),
  };
}

// ---------------------------------------------------------------------------------------------
// The exchange

/** The request's params, parsed (after earlier policies' changes); `undefined` if none. @param {Exchange} ex */
export function params(ex) {
  const p = ex.params();
  return p === undefined ? undefined : JSON.parse(p);
}

/** The tool or prompt name, or the resource URI, the call is about. @param {Exchange} ex @returns {string|undefined} */
export const target = (ex) => ex.target();

/** The JSON-RPC id: a number, a string, or `undefined` for a notification. @param {Exchange} ex */
export function requestId(ex) {
  const id = ex.id();
  return id === undefined ? undefined : id.tag === 'number' ? Number(id.val) : id.val;
}

/** Several attributes set by earlier policies, as an object (absent ones left out). @param {Exchange} ex @param {...string} keys */
export function attributes(ex, ...keys) {
  const out = {};
  for (const k of keys) {
    const v = ex.attribute(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * Response phase: the answer, as `{result}` (parsed) or `{error: {code, message, data}}`
 * (`data` parsed); `undefined` in other phases.
 * @param {Exchange} ex
 */
export function outcome(ex) {
  const o = ex.outcome();
  if (o === undefined) return undefined;
  if (o.tag === 'ok') return { result: JSON.parse(o.val) };
  const { code: c, message, data } = o.val;
  return { error: { code: c, message, data: data === undefined ? undefined : JSON.parse(data) } };
}

// ---------------------------------------------------------------------------------------------
// Host capabilities

/**
 * A host call that failed: the store could not be asked, a fetch was denied, a key is unusable.
 * Uncaught in a hook it traps, and the binding's failure mode applies.
 */
export class HostError extends Error {
  /** @param {string} message @param {string} [kind] for fetch: `denied`, `timeout` or `failed` */
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

/** Runs a result-returning import: componentize-js throws its `err` as an Error with `payload`. */
function call(what, f) {
  try {
    return f();
  } catch (e) {
    if (e && Object.hasOwn(e, 'payload')) throw new HostError(`${what}: ${e.payload}`);
    throw e;
  }
}

/** @typedef {{ttlMs?: number}} Ttl Expiry in milliseconds (none: the store's default, or never). */

/**
 * State shared by every instance of the binding, across requests and reloads (keys are
 * namespaced per binding). Values are strings here (UTF-8); every call throws {@link HostError}
 * when the store fails.
 */
export const state = {
  /** @param {string} key @returns {string|undefined} */
  get(key) {
    const v = call('state.get', () => hostState.get(key));
    return v === undefined ? undefined : text(v);
  },
  /** @param {string} key @param {string} value @param {Ttl} [opts] */
  set(key, value, { ttlMs } = {}) {
    call('state.set', () => hostState.set(key, bytes(value), ttlMs));
  },
  /**
   * Adds `delta` to a counter (absent: 0) and returns the new value. The TTL is set only when
   * the key is created, so a window does not slide.
   * @param {string} key @param {number} [delta] @param {Ttl} [opts] @returns {number}
   */
  incr(key, delta = 1, { ttlMs } = {}) {
    return Number(call('state.incr', () => hostState.incr(key, delta, ttlMs)));
  },
  /**
   * Writes `value` only if the current value is `expected` (`undefined`: only if absent).
   * @param {string} key @param {string|undefined} expected @param {string} value @param {Ttl} [opts] @returns {boolean} whether it wrote
   */
  cas(key, expected, value, { ttlMs } = {}) {
    return call('state.cas', () => hostState.cas(key, expected === undefined ? undefined : bytes(expected), bytes(value), ttlMs));
  },
  /** @param {string} key */
  delete(key) {
    call('state.delete', () => hostState.delete(key));
  },
};

/** Secrets granted to the binding. @param {string} name @returns {string|undefined} */
export const secret = (name) => hostSecret(name);

/**
 * An HTTP request to a host the binding allows. Synchronous: the host does the I/O.
 * Throws {@link HostError} with `kind` `denied`, `timeout` or `failed`.
 * @param {string} url
 * @param {{method?: string, headers?: Pairs, body?: string|Uint8Array, timeoutMs?: number}} [init]
 * @returns {{status: number, headers: Array<[string, string]>, body: Uint8Array, text(): string, json(): any}}
 */
export function fetch(url, { method = 'GET', headers, body, timeoutMs } = {}) {
  let res;
  try {
    res = hostFetch({ method, url, headers: pairs(headers), body: body === undefined ? undefined : bytes(body), timeoutMs });
  } catch (e) {
    if (!(e && Object.hasOwn(e, 'payload'))) throw e;
    const { tag, val } = e.payload;
    throw new HostError(`fetch ${url}: ${tag}${val ? `: ${val}` : ''}`, tag);
  }
  return { ...res, text: () => text(res.body), json: () => JSON.parse(text(res.body)) };
}

/** The gateway's log, under the policy's name. */
export const log = Object.freeze({
  trace: (message) => hostLog('trace', message),
  debug: (message) => hostLog('debug', message),
  info: (message) => hostLog('info', message),
  warn: (message) => hostLog('warn', message),
  error: (message) => hostLog('error', message),
});

/** Wall clock, milliseconds since the Unix epoch (the host's, not the engine's `Date`). */
export const now = () => Number(nowMs());

/**
 * Whether `signature` (base64url, as in a JWS) is valid over `message` for the public JWK `key`,
 * checked natively by the gateway. Throws {@link HostError} when the key is unusable for `alg`.
 * @param {string} alg `RS256`, `PS256`, `ES256`, `EdDSA`, ... (not HMAC)
 * @param {object|string} key the JWK @param {string|Uint8Array} message @param {string} signature
 */
export const verifySignature = (alg, key, message, signature) =>
  call('verify-signature', () => hostVerify(alg, typeof key === 'string' ? key : json(key), bytes(message), signature));
