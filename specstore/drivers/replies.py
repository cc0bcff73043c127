"""What both drivers do with an error reply of Redis."""

from __future__ import annotations

import redis

from specstore.connection import is_wrong_type
from specstore.core import lua
from specstore.core.calls import Request, Steps
from specstore.errors import BackendError


def throw_reply_error(
    steps: Steps[object], request: Request, error: redis.ResponseError
) -> Request:
    """Throw Redis's error reply to ``request`` into the logic. A WRONGTYPE (a key holding
    something specstore did not write) goes in as it is, for the logic to read; any other
    reply (out of memory, a read-only replica, a refused command, a failed script), and a
    WRONGTYPE the logic lets through, is a :class:`~specstore.errors.BackendError` -- inside
    the logic too, so that its steps settle it as they settle a lost connection."""
    if is_wrong_type(error):
        try:
            return steps.throw(error)
        except redis.ResponseError as unhandled:
            if unhandled is not error:
                raise
            raise _backend_error(request, error) from error  # (the logic has ended)
    return steps.throw(_backend_error(request, error))


def _backend_error(request: Request, error: redis.ResponseError) -> BackendError:
    failure = BackendError(
        request.label,
        error,
        may_have_written=request.writes and not lua.refused_before_running(error),
    )
    failure.__cause__ = error
    return failure
