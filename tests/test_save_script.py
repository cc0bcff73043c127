"""save.lua on a real redis-server, against its rules written out here in Python.

save reads the location record with one HMGET of six fields in its usual case (the spec lives
in the store it writes, no move away from there runs) and reads the whole record only for
its other replies. Whatever the record and the spec hash hold -- written by specstore, left
half done, or written by someone else -- the reply must be the one the rules below give. The
rules come from the record's layout (``_lib.lua``'s heading) and save's reply contract, not
from the script. A reply the store cannot read (a move without its destination, which
specstore never writes) is a typed error through the public API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specstore import RequestContext, SpecStore
from specstore.core import lua
from specstore.core.keys import API, Keyspace
from specstore.errors import CorruptDocumentError
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

UID = "8d3e2b1a-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
KEYS = Keyspace("savecheck")
STATES = ("live", "destroyed", "aborted", "creating", "moved")
WRITER_SCHEMA = f"{DEFAULT_CODEC.schema}/{DEFAULT_CODEC.current_version[0]}.0"
WRITER_MAJOR = DEFAULT_CODEC.current_version[0]

counts = st.sampled_from(["3", "0", "12", "nan", "1e3", " 2", "0x10", "9" * 17, "9007199254740992"])
move_fields = {
    "move_id": st.just("move-1"),
    "move_from": st.sampled_from(["api", "cell1"]),
    "move_to": st.sampled_from(["cell1", "cell2"]),
    "moved_to": st.just("cell2"),
}
location_records = st.one_of(
    st.just("absent"),
    st.just("not a hash"),
    st.fixed_dictionaries(  # one specstore wrote: the spec lives in a store, a move may run
        {"state": st.just("live"), "epoch": st.just("3"), "rev": st.just("4"),
         "store": st.sampled_from(["api", "cell1"])},
        optional=move_fields,
    ),
    st.fixed_dictionaries(  # anything
        {},
        optional={
            "state": st.sampled_from([*STATES, "bogus"]),
            "epoch": counts,
            "rev": counts,
            "store": st.sampled_from(["api", "cell1", ""]),
            "home_epoch": counts,
            **move_fields,
        },
    ),
)
schemas = st.sampled_from(
    [WRITER_SCHEMA, "RequestSpec/1.0", f"RequestSpec/{WRITER_MAJOR + 1}.0", "junk"]
)
spec_records = st.one_of(
    st.just("absent"),
    st.just("not a hash"),
    st.fixed_dictionaries({"doc": st.just("x"), "rev": st.just("4"), "schema": schemas}),
    st.fixed_dictionaries(
        {"doc": st.just("x")},
        optional={"rev": st.sampled_from(["4", "1", "x", "9" * 17]), "schema": schemas},
    ),
)


def _count(text: str | None) -> int | None:
    """A count as specstore writes it: decimal digits, at most 2**53 - 1."""
    if text is None or len(text) > 16 or not re.fullmatch(r"[0-9]+", text):
        return None
    number = int(text)
    return number if number <= 2**53 - 1 else None


def expected(location: Any, spec: Any, store: str, expected_rev: str) -> tuple[Any, ...]:
    """save's reply by its rules."""
    if location == "not a hash":
        return ("foreign", "location record")
    if location in ("absent", {}):  # (Redis keeps no empty hash)
        return ("not_found",)
    if (
        location.get("state") not in STATES
        or _count(location.get("epoch")) is None
        or ("rev" in location and _count(location["rev"]) is None)
    ):
        return ("foreign", "location record")
    home = location.get("store") or None
    if home is None:
        moved_to = location.get("moved_to")
        return ("wrong_store", moved_to) if moved_to else ("not_found",)
    if home != store:
        return ("wrong_store", home)
    if "move_id" in location and location.get("move_from") == store:
        return ("moving", location["move_to"]) if "move_to" in location else ("moving",)
    if spec == "not a hash":
        return ("foreign", "spec record")
    if spec == "absent" or "rev" not in spec:
        return ("not_found",)
    rev = _count(spec["rev"])
    if rev is None:
        return ("foreign", "spec record")
    if expected_rev and spec["rev"] != expected_rev:
        return ("conflict", spec["rev"])
    major = re.search(r"/(\d+)\.\d+$", spec.get("schema", ""))
    if major and int(major.group(1)) > WRITER_MAJOR:
        return ("incompatible", spec["schema"])
    return ("ok", rev + 1)


@pytest.fixture(scope="module")
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.script_load(lua.SAVE.source)
    yield client
    client.close()


def _put(client: redis.Redis, key: str, record: Any) -> None:
    client.delete(key)
    if record == "not a hash":
        client.set(key, "someone else's")
    elif record != "absent" and record:
        client.hset(key, mapping=record)


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    location=location_records,
    spec=spec_records,
    store=st.sampled_from(["api", "cell1"]),
    expected_rev=st.sampled_from(["", "4", "3"]),
)
def test_save_replies_by_its_rules_whatever_the_records_hold(
    client: redis.Redis, location: Any, spec: Any, store: str, expected_rev: str
) -> None:
    spec_key, location_key = KEYS.home_keys(store, UID)
    _put(client, location_key, location)
    _put(client, spec_key, spec)
    argv: list[str | bytes | int] = [
        store, expected_rev, b"\x00doc", WRITER_SCHEMA, "p", "u", "now", WRITER_MAJOR
    ]
    reply = client.evalsha(lua.SAVE.sha, 2, spec_key, location_key, *argv)
    assert tuple(_text(v) for v in reply) == expected(location, spec, store, expected_rev)
    written = client.hgetall(spec_key) if spec not in ("absent", "not a hash") else {}
    if reply[0] == b"ok":
        assert written[b"doc"] == b"\x00doc" and written[b"rev"] == str(reply[1]).encode()
    elif written:
        assert written[b"doc"] == b"x"  # refused: nothing was written


@pytest.mark.parametrize("operation", ["save", "destroy", "create"])
def test_a_hand_written_move_without_its_destination_is_a_typed_error(
    url: str, operation: str
) -> None:
    """A location record naming a move but not where it goes (specstore always writes both)
    is refused as corrupt through the public API; nothing is written."""
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    uid = str(spec.instance_uuid)
    if operation != "create":
        store.create(ctx, spec)
    location_key = store.keys.location_key(uid)
    client = store.client
    assert isinstance(client, redis.Redis)
    client.hset(location_key, mapping={"store": "api" if operation != "create" else "",
                                       "state": "live", "epoch": "1", "move_id": "m-1",
                                       "move_from": "api"})
    before = {key: client.dump(key) for key in store.keys.home_keys(API, uid)}
    calls: dict[str, Callable[[], object]] = {
        "save": lambda: store.save(ctx, spec),
        "destroy": lambda: store.destroy(ctx, uid),
        "create": lambda: store.create(ctx, spec),
    }
    with pytest.raises(CorruptDocumentError, match="no destination"):
        calls[operation]()
    assert {key: client.dump(key) for key in store.keys.home_keys(API, uid)} == before
    store.close()
