"""The test support itself: a fixture's redis-server is the process it started."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis


def test_a_server_that_lost_its_port_is_not_taken_for_another_one() -> None:
    """A port lost to another redis-server between choosing and binding it: the ping is
    answered, but by the other process, whose data must stay untouched."""
    other = start_server()
    try:
        planted = other.client()
        planted.set("not-ours", "keep me")
        ours = RedisServer(other.port, Path(tempfile.mkdtemp(prefix="specstore-redis-")))
        with pytest.raises(RuntimeError, match="exited early"):
            ours.start()  # cannot bind; must not report the other server as ready
        with pytest.raises(RuntimeError, match="not by the server"):
            ours.client()
        assert planted.get("not-ours") == b"keep me"
        planted.close()
        ours.discard()
    finally:
        other.discard()


def test_a_client_refuses_a_server_that_replaced_ours_on_its_port() -> None:
    """Ours died (a test killed it) and another server took the port: no client is handed out,
    and restarting ours on that port fails instead of adopting the other one."""
    server = start_server()
    server.stop(kill=True)
    impostor = RedisServer(server.port, Path(tempfile.mkdtemp(prefix="specstore-redis-")))
    impostor.start()
    try:
        with pytest.raises(RuntimeError, match="not by the server"):
            server.client()
        with pytest.raises(RuntimeError, match="exited early"):
            server.start()
    finally:
        impostor.discard()
        server.discard()
