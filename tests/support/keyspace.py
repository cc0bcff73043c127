"""Plant location records as specstore writes them (for tests that damage a keyspace)."""

from __future__ import annotations

from specstore.connection import RedisClient
from specstore.core.keys import Keyspace


def set_location(
    client: RedisClient, keys: Keyspace, uid: str, store: str, *, rev: int = 1, epoch: int = 1
) -> None:
    """Point ``uid``'s location record at ``store`` (live), replacing whatever it held."""
    key = keys.location_key(uid)
    client.delete(key)
    client.hset(key, mapping={"store": store, "rev": rev, "epoch": epoch, "state": "live"})
