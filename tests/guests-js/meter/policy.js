// The meter policy in JavaScript, with the kit's helper library: the twin of tests/guests/meter
// (Rust) and tests/guests-py/meter (Python), held to the same cases.

import { HostError, attr, code, definePolicy, deny, drop, hooks, outcome, pass, proceed, rateLimited, respond, secret, state, unauthorized } from './tollgate.js';

// Module state, set by `init`: each instance runs it (or starts from a snapshot of it).
let blocked = new Set();
let limit = 3;
let keySecret;

const who = (ex) => ex.attribute(attr.SUBJECT) ?? ex.clientIp() ?? 'anonymous';

export const policy = definePolicy({
  init(config) {
    const { blocked: names = [], limit: max = 3, api_key_secret: name, ...unknown } = config ?? {};
    const extra = Object.keys(unknown);
    if (extra.length > 0) throw new Error(`invalid config: unknown field \`${extra[0]}\``);
    if (!Number.isInteger(max) || max <= 0) throw new Error('limit: must be positive');
    blocked = new Set(names);
    limit = max;
    keySecret = name;
    return hooks('request', 'response', 'visibility', 'message');
  },

  onRequest(ex) {
    if (keySecret !== undefined) {
      const key = ex.header('x-api-key');
      if (key === undefined || key !== secret(keySecret)) {
        return unauthorized('a valid x-api-key is required', { headers: { 'www-authenticate': 'ApiKey realm="tollgate"' } });
      }
    }
    if (ex.method() !== 'tools/call') return proceed();
    const caller = who(ex);
    const key = `calls:${caller}`;
    let n;
    try {
      if (ex.target() === 'meter_status') {
        return respond({ content: [{ type: 'text', text: `calls: ${state.get(key) ?? '0'}` }] });
      }
      n = state.incr(key, 1, { ttlMs: 60000 });
    } catch (e) {
      if (e instanceof HostError) return deny(code.POLICY_FAILED, `state unavailable: ${e.message}`, { status: 503 });
      throw e;
    }
    if (n > limit) return rateLimited('call limit reached', 60);
    return proceed({
      attributes: { 'meter.calls': String(n) },
      clientHeaders: { 'x-calls-left': String(limit - n) },
      setHeaders: { 'x-caller': caller },
    });
  },

  onResponse(ex) {
    const answer = outcome(ex);
    const calls = ex.attribute('meter.calls');
    if (answer?.result === undefined || calls === undefined) return proceed();
    return proceed({ params: { ...answer.result, _meta: { 'meter.calls': calls } } });
  },

  onMessage(ex, message) {
    if (message.method === 'sampling/createMessage') return drop(-32003, 'sampling is not allowed');
    if (message.method === 'notifications/message' && message.params?.level === 'debug') return drop();
    return pass();
  },

  visible(ex, tool) {
    return !blocked.has(tool);
  },
});
