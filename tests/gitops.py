"""How GitOps tools read our status, for tests: kstatus (the library Flux and kpt wait with), built
from hack/kstatus, and our Argo CD health checks (charts/aifactory-operator/health), run the way
Argo CD runs them."""

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from lupa import lua51

REPO = Path(__file__).resolve().parents[1]
HEALTH_CHECKS = REPO / "charts" / "aifactory-operator" / "health"
ARGOCD_HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# Argo CD runs argocd-cm health checks in gopher-lua (Lua 5.1) with only the base, table, package and
# a reduced os library open (unless `useOpenLibs` is set). These are the libraries a script here must
# not lean on, since it would work under lupa and fail in Argo CD.
_CLOSED_IN_ARGOCD = ("string", "math", "io", "coroutine", "debug")


@functools.cache
def ensure_kstatus() -> Path:
    """The kstatus binary; hack/build-kstatus.sh builds it when it is missing or stale (the script
    owns the cache path and the freshness rule, and answers at once when the build is there)."""
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-kstatus.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError("hack/build-kstatus.sh failed; see its messages above")
    return Path(result.stdout.strip().splitlines()[-1])


def kstatus(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kstatus's verdict on each object, in order: kind, namespace, name, status (Current, InProgress,
    Failed, Terminating, ...) and message."""
    result = subprocess.run(
        [str(ensure_kstatus())],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kstatus refused the objects: {result.stderr.strip()}")
    return json.loads(result.stdout)


def argocd_health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD reports for `obj` with our health check for `kind`: {"status", "message"}."""
    script = (HEALTH_CHECKS / f"aifactory.dev_{kind}.lua").read_text()
    lua = _argocd_lua()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    health = lua.execute(script)
    if lua51.lua_type(health) != "table":
        raise TypeError(f"{kind} health check returned {health!r}; Argo CD expects a table")
    status, message = health["status"], health["message"] or ""
    if status not in ARGOCD_HEALTH_STATUSES:
        # Argo CD's own answer to a status it does not know.
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return {"status": status, "message": message}


def _argocd_lua() -> lua51.LuaRuntime:
    """A Lua 5.1 runtime with the libraries Argo CD leaves closed removed, string methods included,
    and without lupa's `python` bridge."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute('getmetatable("").__index = nil')
    for name in (*_CLOSED_IN_ARGOCD, "python"):
        lua.globals()[name] = None
    return lua
