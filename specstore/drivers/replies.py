"""What both drivers do with an error reply of Redis."""

from __future__ import annotations

import redis

from specstore.connection import backend_errors
from specstore.core.calls import Request, Steps


def throw_reply_error(
    steps: Steps[object], request: Request, error: redis.ResponseError
) -> Request:
    """Throw Redis's error reply to ``request`` into the logic (which may read it, e.g. a
    WRONGTYPE); one the logic lets through is a :class:`~specstore.errors.BackendError`."""
    try:
        return steps.throw(error)
    except redis.ResponseError as unhandled:
        if unhandled is not error:
            raise
        with backend_errors(request.label, writes=request.writes):
            raise
