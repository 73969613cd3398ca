"""A Tollgate policy: the tools `config.blocked` names are neither listed nor callable.

Build it with `tollgate policy build .` (componentize-py), try it with
`tollgate policy test <dir>.wasm --cases cases.yaml`.
"""

from componentize_py_types import Err
from wit_world import exports

from tollgate_policy import Defaults, config, hooks, log

# The binding's config, set by `init`. Module state, not instance state: the export class
# may be instantiated for each call.
BLOCKED: set = set()


class Policy(Defaults, exports.Policy):
    def init(self, text: str):
        cfg = config(text, ["blocked"])
        blocked = cfg.get("blocked", [])
        if not isinstance(blocked, list) or any(not isinstance(t, str) or t == "" for t in blocked):
            raise Err("blocked: a list of tool names, none empty")
        BLOCKED.clear()
        BLOCKED.update(blocked)
        # Only the hooks implemented here: the gateway skips the others.
        return hooks(visibility=True)

    def visible(self, ex, tool: str) -> bool:
        blocked = tool in BLOCKED
        if blocked and ex.method() == "tools/call":
            log("info", f"refused a call of {tool}")
        return not blocked
