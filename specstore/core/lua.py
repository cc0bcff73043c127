"""The Lua scripts (the server-side atomic steps), loaded once, called by SHA.

Every script is sent with the parts of ``_lib.lua`` (the location record's reader and writers)
it uses in front of it, so the record's layout is written down once. Only those parts: a
script's text runs on every call, and each function it defines costs Redis a closure per call
(the whole library in front of a script cost about 5,000 instructions a call, counted with
callgrind in redis-server).
Running them is the drivers' part (:mod:`specstore.drivers.lua_sync` for the blocking ones).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.exceptions
from redis.exceptions import (
    AskError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> LuaScript:
        scripts = resources.files("specstore.scripts")
        body = scripts.joinpath(f"{name}.lua").read_text("utf-8")
        source = link(body, scripts.joinpath("_lib.lua").read_text("utf-8"))
        return cls(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())


_DEFINITION = re.compile(r"local\s+(?:function\s+)?([A-Za-z_]\w*)(\s*,)?")
_NAME = re.compile(r"[A-Za-z_]\w*")
_MULTILINE = re.compile(r"\[=*\[|\\$", re.M)
"""Long brackets (``[[ ]]`` strings and ``--[[ ]]`` comments) and a string continued past a
line's end: text where a line starting with ``--`` could be inside a string."""


def library_parts(library: str) -> list[tuple[str, str]]:
    """``library`` cut into its top-level definitions, in order: (name, text) for each
    ``local function NAME`` or ``local NAME = ...`` (a line starting at column 0), with the
    comment lines right above it and every line after it up to the next such line or
    comment block. A comment block followed by a blank line (the file's heading) belongs to
    no part; any other statement, a definition of several names and text :func:`link`
    cannot read safely are refused."""
    _readable(library)
    parts: list[tuple[str, list[str]]] = []
    comments: list[str] = []
    for line in library.splitlines():
        found = _DEFINITION.match(line)
        if found and found.group(2):
            raise ValueError(f"one name a library definition: {line!r}")
        if found:
            parts.append((found.group(1), [*comments, line]))
            comments = []
        elif line.startswith("--"):
            comments.append(line)
        elif not line.strip():
            comments = []
        elif parts and not comments:
            parts[-1][1].append(line)  # the definition goes on
        else:
            raise ValueError(f"a library line outside any definition: {line!r}")
    return [(name, "\n".join(lines)) for name, lines in parts]


def link(body: str, library: str) -> str:
    """``body`` with the parts of ``library`` it uses, directly or through other parts, in
    front of it (in the library's order). A part is used where its name stands as a word
    anywhere but in a whole-line comment -- in a string or after code on a line too: a part
    sent for nothing costs a closure, a part left out breaks the script."""
    parts = library_parts(library)
    used = _names(_readable(body))
    wanted: set[str] = set()
    for name, text in reversed(parts):  # a part only uses parts defined above it
        if name in used:
            wanted.add(name)
            used |= _names(text)
    kept = [text for name, text in parts if name in wanted]
    return "\n\n".join([*kept, body])


def _readable(text: str) -> str:
    """``text``, if every line of it starting with ``--`` is a comment (see _MULTILINE)."""
    found = _MULTILINE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise ValueError(f"line {line}: long brackets or a string continued past the line")
    return text


def _names(text: str) -> set[str]:
    code = (line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return set(_NAME.findall("\n".join(code)))


CREATE = LuaScript.load("create")
SAVE = LuaScript.load("save")
PROMOTE = LuaScript.load("promote")
DESTROY = LuaScript.load("destroy")
RESTORE = LuaScript.load("restore")
DROP_COPY = LuaScript.load("drop_copy")
LOC_REPAIR = LuaScript.load("loc_repair")
MOVE_BEGIN = LuaScript.load("move_begin")
MOVE_CLAIM = LuaScript.load("move_claim")
MOVE_COMMIT = LuaScript.load("move_commit")
MOVE_ABORT = LuaScript.load("move_abort")
MOVE_DESTROYED = LuaScript.load("move_destroyed")
CELL_ADOPT = LuaScript.load("cell_adopt")
CELL_FENCE = LuaScript.load("cell_fence")
CELL_FREEZE = LuaScript.load("cell_freeze")
CELL_RELEASE = LuaScript.load("cell_release")
CELL_UNFREEZE = LuaScript.load("cell_unfreeze")
CELL_MOVE_WITHIN = LuaScript.load("cell_move_within")
MOVE_INSTALL = LuaScript.load("move_install")
MOVE_SEIZE = LuaScript.load("move_seize")


Call = tuple[LuaScript, list[str], list[Any]]

REDIRECT_WAIT_SECONDS = 2.0
"""How long a batch call refused while its slot is half migrated is sent again (the drivers'
cluster batches)."""


_REFUSED_BEFORE_RUNNING = (
    redis.exceptions.NoScriptError,
    redis.exceptions.NoPermissionError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)
"""Replies by which Redis refuses a call before running any of it (redis-py strips the code).
Out of memory and read-only replies of a script come at its first write, before which it
wrote nothing; a command a script may not run (ACL) comes back as a plain error reply."""


def refused_before_running(exc: BaseException) -> bool:
    """True when Redis's error reply ``exc`` says the call did not run at all."""
    if isinstance(exc, _REFUSED_BEFORE_RUNNING):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(("BUSY", "NOPERM", "OOM"))


def not_loaded(replies: list[Any]) -> list[int]:
    """The calls a pipeline's replies say did not run for want of their script (NOSCRIPT);
    the replies are turned into :class:`NoScriptError` where redis-py left them generic."""
    for index, reply in enumerate(replies):
        replies[index] = as_noscript(reply)
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def evalsha(call: Call) -> tuple[Any, ...]:
    """The EVALSHA command of one script call."""
    script, keys, args = call
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def is_redirection(reply: Any) -> bool:
    """True for a cluster reply saying the call did not run here: MOVED, ASK or TRYAGAIN.

    redis-py parses those replies into :class:`MovedError` (an :class:`AskError`),
    :class:`AskError` and :class:`TryAgainError`, whose text is only ``"<slot> <host>:<port>"``
    -- so the reply's type tells, not its text.
    """
    return isinstance(reply, (AskError, TryAgainError))


def as_noscript(reply: Any) -> Any:
    if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply
