"""The Redis calls the store's logic asks for, as data: the seam between logic and I/O.

specstore's operations (:mod:`specstore.core.operations`, :mod:`specstore.core.two_phase`) are
generators written once: they ``yield`` a call described here, get its reply sent back (or
its error thrown in, at the ``yield``) and finally return their result. They never touch a
connection. A driver runs them: :func:`specstore.drivers.sync.run` with redis-py's blocking
clients, :func:`specstore.drivers.aio.run` with ``redis.asyncio``. So the sync and the
asyncio store share every rule and differ only in how a call reaches Redis.

Each call names its backend, a label for errors (``BackendError.operation``) and whether it
may write (a lost reply of a call that may write is ``may_have_written``). Calls are made on
every round trip, so they are plain slotted dataclasses (a frozen one costs four times as much
to build); nothing changes a call once it is yielded.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar

from specstore.core.lua import Call as ScriptCall
from specstore.core.lua import LuaScript
from specstore.core.scan import ScanPosition
from specstore.topology import AsyncBackend, Backend

AnyBackend: TypeAlias = "Backend | AsyncBackend"


@dataclass(slots=True)
class Script:
    """One Lua script (EVALSHA, loading it on NOSCRIPT); its reply."""

    backend: AnyBackend
    script: LuaScript
    keys: list[str]
    args: list[Any]
    label: str
    writes: bool = True


@dataclass(slots=True)
class Scripts:
    """Many script calls in one pipeline (per cluster node); a reply or a ResponseError each,
    in call order. A failure of the whole pipeline raises."""

    backend: AnyBackend
    calls: Sequence[ScriptCall]
    label: str
    writes: ClassVar[bool] = True


@dataclass(slots=True)
class Command:
    """One plain command, e.g. ``("HMGET", key, "store", "rev")``; its raw reply (RESP2:
    an HGETALL reply is a flat list, see :func:`specstore.connection.as_dict`)."""

    backend: AnyBackend
    args: tuple[Any, ...]
    label: str
    writes: bool = False


@dataclass(slots=True)
class Commands:
    """Plain commands in one pipeline; a raw reply or a ResponseError each, in order."""

    backend: AnyBackend
    commands: Sequence[tuple[Any, ...]]
    label: str
    writes: bool = False


@dataclass(slots=True)
class Hashes:
    """HGETALL of each key in one pipeline: a dict each, None where the key holds another
    type (see :func:`specstore.connection.read_hashes`)."""

    backend: AnyBackend
    keys: Sequence[str]
    label: str
    writes: ClassVar[bool] = False


@dataclass(slots=True)
class ScanPage:
    """One SCAN call on one node (the masters of a cluster in name order): its keys and the
    position after it (None once every node was scanned to the end)."""

    backend: AnyBackend
    pattern: str
    count: int
    position: ScanPosition
    writes: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return f"scan {self.pattern}"


Request: TypeAlias = "Script | Scripts | Command | Commands | Hashes | ScanPage"

T = TypeVar("T")
Steps: TypeAlias = Generator[Request, Any, T]
"""An operation of the store's logic: yields calls, returns its result."""
