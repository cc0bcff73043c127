"""Load the Lua scripts once and call them by SHA (re-loading after a server restart)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from specstore.connection import RedisClient


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> LuaScript:
        source = resources.files("specstore.scripts").joinpath(f"{name}.lua").read_text("utf-8")
        return cls(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())


CREATE = LuaScript.load("create")
SAVE = LuaScript.load("save")
PROMOTE = LuaScript.load("promote")
DESTROY = LuaScript.load("destroy")


def run_script(client: RedisClient, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA; on NOSCRIPT (first use, or the server restarted) load the script and call again.

    Re-running is safe: NOSCRIPT means the script did not run at all.
    """
    try:
        return client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(script.source)
        return client.evalsha(script.sha, len(keys), *keys, *args)


Call = tuple[LuaScript, list[str], list[Any]]


def run_scripts_pipelined(client: RedisClient, calls: list[Call]) -> list[Any]:
    """Run many script calls in one pipeline; replies (or ResponseErrors) in call order.

    Calls that failed with NOSCRIPT did not run; they are re-run in a second pipeline after
    loading their scripts, which only happens on the first batch after a server restart.
    """
    replies = _pipeline(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {calls[i][0] for i in missing}:
            client.script_load(script.source)
        for i, reply in zip(missing, _pipeline(client, [calls[i] for i in missing]), strict=True):
            replies[i] = reply
    return replies


def _pipeline(client: RedisClient, calls: list[Call]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return [_as_noscript(r) for r in replies]


def _as_noscript(reply: Any) -> Any:
    if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply
