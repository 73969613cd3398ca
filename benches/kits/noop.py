"""A no-op policy in Python: asks for the request hook and goes on (the kits bench)."""

from wit_world import exports

from tollgate_policy import Defaults, config, hooks


class Policy(Defaults, exports.Policy):
    def init(self, text: str):
        config(text, [])
        return hooks(request=True)
