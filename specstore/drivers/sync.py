"""Run the store's logic with redis-py's blocking clients (and their spare connections)."""

from __future__ import annotations

import weakref
from typing import Any, TypeVar, cast

import redis

from specstore.connection import backend_errors, read_hashes
from specstore.core.calls import (
    Command,
    Commands,
    Hashes,
    Request,
    ScanPage,
    Script,
    Scripts,
    Steps,
)
from specstore.core.scan import ScanPosition
from specstore.drivers import lua_sync
from specstore.drivers.held import HeldConnections, held_connections
from specstore.drivers.replies import throw_reply_error
from specstore.drivers.scanning import node_clients, scan_page
from specstore.topology import Backend

T = TypeVar("T")


def run(steps: Steps[T]) -> T:
    """Drive ``steps`` to its result: each call it yields is run, its reply sent back, its
    error (a :class:`~specstore.errors.BackendError`, or Redis's reply error) thrown in."""
    try:
        request = next(steps)
        while True:
            try:
                reply = execute(request)
            except redis.ResponseError as exc:
                request = throw_reply_error(steps, request, exc)
            except BaseException as exc:  # (its spans and blocks unwind)
                request = steps.throw(exc)
            else:
                request = steps.send(reply)
    except StopIteration as stop:
        return cast(T, stop.value)


def execute(request: Request) -> Any:
    """One call's reply; redis-py failures become BackendError (reply errors stay as they
    are, for the logic to read)."""
    backend = cast(Backend, request.backend)
    held = spare_connections(backend)
    if isinstance(request, Command):
        with backend_errors(request.label, writes=request.writes, reply_errors=True):
            if held is not None:
                return held.execute(*request.args)
            return backend.client.execute_command(*request.args, **_keyed(request.args))  # type: ignore[no-untyped-call]
    if isinstance(request, Script):
        with backend_errors(request.label, writes=request.writes, reply_errors=True):
            return lua_sync.run_script(
                backend.client, request.script, request.keys, request.args, held=held
            )
    if isinstance(request, Scripts):
        with backend_errors(request.label, writes=True, reply_errors=True):
            return lua_sync.run_scripts_pipelined(backend.client, list(request.calls), held=held)
    if isinstance(request, Hashes):
        with backend_errors(request.label, writes=False, reply_errors=True):
            return read_hashes(backend.client, request.keys, held)
    if isinstance(request, Commands):
        with backend_errors(request.label, writes=request.writes, reply_errors=True):
            if held is not None:
                return held.pipeline(request.commands)
            pipe = backend.client.pipeline(transaction=False)
            for command in request.commands:
                pipe.execute_command(*command, **_keyed(command))
            return pipe.execute(raise_on_error=False)
    return _scan(backend, request)


def _scan(backend: Backend, request: ScanPage) -> tuple[list[bytes], ScanPosition | None]:
    nodes = node_clients(backend.client)
    return scan_page(nodes, request.position, request.pattern, request.count, reply_errors=True)


def _keyed(command: tuple[Any, ...]) -> dict[str, Any]:
    """The key of a one-key command, as redis-py's own command methods pass it (a client
    with client-side caching needs it to cache a read)."""
    return {"keys": [command[1]]} if len(command) > 1 and command[0] != "TIME" else {}


_SPARE: weakref.WeakKeyDictionary[Backend, HeldConnections | None] = weakref.WeakKeyDictionary()


def spare_connections(backend: Backend) -> HeldConnections | None:
    """The backend's spare connections (made on first use; None where its client keeps
    redis-py's own path, see :mod:`specstore.drivers.held`)."""
    try:
        return _SPARE[backend]
    except KeyError:
        held = _SPARE[backend] = held_connections(backend.client)
        return held
