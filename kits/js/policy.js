// A Tollgate policy: the tools `config.blocked` names are neither listed nor callable.
// Build: `npm install`, then `tollgate policy build .`; try: `tollgate policy test <dir>.wasm --cases cases.yaml`.

import { ConfigError, definePolicy, hooks, log } from './tollgate.js';

// The binding's config, set by `init`. Module state: each instance runs `init` (or starts
// from a snapshot of it) before any hook.
let blocked = new Set();

export const policy = definePolicy({
  init(config) {
    const { blocked: names = [], ...unknown } = config ?? {};
    // Unknown keys are refused at load, so a typo fails `tollgate validate` instead of passing silently.
    const extra = Object.keys(unknown);
    if (extra.length > 0) throw new ConfigError(`invalid config: unknown field \`${extra[0]}\``);
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
      throw new ConfigError('blocked: a list of tool names, none empty');
    }
    blocked = new Set(names);
    // Only the hook implemented here: the gateway skips the others, instance and all.
    return hooks('visibility');
  },

  // One answer for both `tools/list` (which tools are shown) and `tools/call` (which may run),
  // so the two never disagree.
  visible(ex, tool) {
    const refused = blocked.has(tool);
    // Log refused calls only: listing runs this for every tool and would flood the log.
    if (refused && ex.method() === 'tools/call') log.info(`refused a call of ${tool}`);
    return !refused;
  },
});
