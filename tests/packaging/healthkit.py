"""Run deploy/argocd/health.lua as Argo CD does: a chunk with the resource as global `obj`,
returning a table {status, message}. Lua from PyPI (lupa), so no Argo CD is needed."""

from __future__ import annotations

from typing import Any

import lupa
from chartkit import ROOT

HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


class HealthCheck:
    def __init__(self) -> None:
        self.lua = lupa.LuaRuntime(unpack_returned_tuples=True)
        # Each call gets a fresh environment: a global left behind by one object cannot leak
        # into the next, as in Argo CD where every evaluation starts from a new state.
        self._run = self.lua.eval(
            """
            function(source, obj)
              local env = setmetatable({obj = obj}, {__index = _G})
              local chunk, err = load(source, "health.lua", "t", env)
              if chunk == nil then error(err) end
              return chunk()
            end
            """
        )
        self.source = HEALTH_LUA.read_text()

    def __call__(self, obj: dict[str, Any]) -> dict[str, str]:
        result = self._run(self.source, self.lua.table_from(obj, recursive=True))
        health = {str(k): str(v) for k, v in dict(result).items()}
        assert health["status"] in ARGO_STATUSES, health
        return health
