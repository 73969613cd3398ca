//! The Python template: the same blocklist as the Rust one, built with componentize-py by
//! `tollgate policy build`, and the same cases.

/// The policy: hides the tools its config names, from `tools/list` and `tools/call` alike.
pub const APP: &str = r#""""A Tollgate policy: the tools `config.blocked` names are neither listed nor callable.

Build it with `tollgate policy build .` (componentize-py), try it with
`tollgate policy test <dir>.wasm --cases cases.yaml`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types
from wit_world.imports.exchange import Exchange

# The binding's config, set by `init`. Module state, not instance state: the export class
# may be instantiated for each call.
BLOCKED: set = set()


class Policy(exports.Policy):
    def init(self, config: str) -> types.Hooks:
        cfg = json.loads(config)
        unknown = set(cfg) - {"blocked"}
        if unknown:
            raise Err(f"invalid config: unknown field `{sorted(unknown)[0]}`")
        blocked = cfg.get("blocked", [])
        if not isinstance(blocked, list) or any(not isinstance(t, str) or t == "" for t in blocked):
            raise Err("blocked: a list of tool names, none empty")
        BLOCKED.clear()
        BLOCKED.update(blocked)
        # Only the hooks implemented here: the gateway skips the others.
        return types.Hooks.VISIBILITY

    def visible(self, ex: Exchange, tool: str) -> bool:
        blocked = tool in BLOCKED
        if blocked and ex.method() == "tools/call":
            log.log(log.Level.INFO, f"refused a call of {tool}")
        return not blocked

    def on_request(self, ex: Exchange) -> types.Verdict:
        return types.Verdict_Continue(types.Mutation(None, [], [], [], []))

    def on_response(self, ex: Exchange) -> types.Verdict:
        return types.Verdict_Continue(types.Mutation(None, [], [], [], []))

    def on_message(self, ex: Exchange, message: str) -> types.MessageVerdict:
        return types.MessageVerdict_Pass()
"#;

pub fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Tollgate policy in Python. Build it (componentize-py: `pip install componentize-py==0.25.1`) with\n\n```sh\ntollgate policy build .\n```\n\ntry it offline against the cases in `cases.yaml`:\n\n```sh\ntollgate policy test {name}.wasm --cases cases.yaml\n```\n\nthen bind it to a server in the gateway's config:\n\n```yaml\npolicies:\n  - policy: ./{name}/{name}.wasm\n    config:\n      blocked: [delete_everything]\n```\n\n`wit/policy.wit` is the contract of the gateway that wrote this project; `tollgate policy build`\nbuilds against the contract of the `tollgate` that runs it.\n"
    )
}
