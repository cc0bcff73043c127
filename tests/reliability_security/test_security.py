"""Security: a least-privilege Redis ACL user, TLS, and no secret in errors, output or logs.

(a) ACL. :data:`ACL_RULES` is the smallest set of permissions specstore needs: the whole
    lifecycle (create, get, get_many, save, promote, destroy, export, import, stats, repair,
    migrate, and the two-phase move to a cell on another backend) runs as that user, and
    removing any single permission breaks it. Keys outside ``specstore:*`` and dangerous
    commands are refused to the user, also from inside a Lua script it loads itself.
(b) TLS. redis-server with only a TLS port and a certificate from a throwaway CA (trustme):
    the lifecycle runs through ``rediss://`` with the CA; without it, with another CA or in
    plain text the connection fails with a typed ``BackendError`` (nothing written).
(c) Secrets. With a password in the URL, failing connections (wrong password, server down,
    malformed URL) never show it: not in the exception, the CLI's output, nor log records.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from specstore import bulk
from specstore.connection import connect, redact
from specstore.context import RequestContext
from specstore.core.keys import Keyspace
from specstore.errors import BackendError, SpecStoreError
from specstore.store import SpecStore
from specstore.topology import Backend, Topology
from tests.factories import typical_spec
from tests.reliability import audit_keyspace
from tests.support.cli import run_cli
from tests.support.redis_server import RedisServer, free_port, start_server

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent.parent
ACL_USER = "specstore"
ACL_PASSWORD = "acl-Pa55-7f3e9c1d-never-shown"
WRONG_PASSWORD = "wrong-Pa55-b6a2e8f4-never-shown"
ACL_RULES = (
    "~specstore:*",
    "resetchannels",
    "-@all",
    "+evalsha",
    "+script|load",
    "+get",
    "+set",
    "+del",
    "+exists",
    "+hset",
    "+hget",
    "+hmget",
    "+hgetall",
    "+hdel",
    "+expire",
    "+persist",
    "+time",
    "+rename",
    "+scan",
    "+memory|usage",
)
"""What ``ACL SETUSER specstore reset on >PASSWORD ...`` grants (the README shows the line)."""
REMOTE = "remote"
"""A cell on its own backend (the same server under the prefix ``specstore:remote``)."""


def command(client: redis.Redis, *args: str) -> Any:
    """A raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def set_acl_user(admin: redis.Redis, rules: tuple[str, ...] = ACL_RULES) -> None:
    command(admin, "ACL", "SETUSER", ACL_USER, "reset", "on", f">{ACL_PASSWORD}", *rules)
    command(admin, "ACL", "LOG", "RESET")


def acl_url(server: RedisServer, password: str = ACL_PASSWORD) -> str:
    return f"redis://{ACL_USER}:{password}@127.0.0.1:{server.port}/0"


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.discard()


@pytest.fixture
def admin(acl_server: RedisServer) -> Iterator[redis.Redis]:
    """The default (unrestricted) user: sets the ACL, plants data, checks what happened."""
    client = acl_server.client()
    client.flushall()
    client.script_flush()
    set_acl_user(client)
    yield client
    client.close()


# -- the lifecycle ------------------------------------------------------------------------------


def lifecycle(url: str, admin: redis.Redis, **options: Any) -> None:
    """Every operation specstore has, on one backend and across two; raises on any failure."""
    store = SpecStore.from_url(url, **options)
    try:
        ctx = RequestContext(project_id="p", user_id="u", store=store)
        specs = [typical_spec() for _ in range(4)]
        for spec in specs:
            store.create(ctx, spec)
        batch = [typical_spec() for _ in range(3)]
        assert store.create_many(ctx, batch).created == [str(s.instance_uuid) for s in batch]
        first = str(specs[0].instance_uuid)
        assert store.get(ctx, first).rev == 1
        assert len(store.get_many(ctx, [s.instance_uuid for s in specs]).found) == 4
        assert store.save(ctx, specs[0], rev=1) == 2
        assert store.save(ctx, specs[0]) == 3
        assert store.promote(ctx, first, "cell1").moved
        assert store.get(ctx.target_cell("cell1"), first).rev == 3
        assert store.locate(first) == "cell1"
        store.destroy(ctx, specs[1].instance_uuid)
        assert store.destroy_bulk(ctx, [specs[2].instance_uuid]).destroyed
        out = io.BytesIO()
        assert bulk.export_specs(store, out).exported == 5
        admin.script_flush()  # the next write loads its script again (SCRIPT LOAD)
        store.destroy(ctx, specs[3].instance_uuid, rev=1)
        imported = bulk.import_specs(
            store, lambda: io.BytesIO(out.getvalue()), "jsonl", overwrite=True
        )  # the destroyed one is restored on request
        assert imported.complete and imported.created == 1 and imported.unchanged == 4
        stats = bulk.collect_stats(store)
        assert sum(s.count for s in stats.values()) == 5
        assert all(s.estimated_bytes for s in stats.values()), "MEMORY USAGE was refused"
        assert bulk.repair(store).found == 0
        assert bulk.migrate_documents(store).failed == 0
    finally:
        store.close()


def two_backends(url: str, admin: redis.Redis, **options: Any) -> None:
    """The two-phase move (begin, adopt, commit) and the rollback of an interrupted one."""
    api = Backend("default", connect(url, **options), Keyspace())
    remote = Backend(REMOTE, connect(url, **options), Keyspace(f"specstore:{REMOTE}"))
    def crash_after_begin(step: str, uid: str) -> None:
        if step == "begin" and uid == str(stuck.instance_uuid):
            raise RuntimeError("the mover stops here")

    topology = Topology(api, {REMOTE: remote})
    store = SpecStore(topology, move_lease_seconds=0.001, on_move_step=crash_after_begin)
    try:
        ctx = RequestContext(store=store)
        moved, stuck = typical_spec(), typical_spec()
        store.create(ctx, moved)
        store.create(ctx, stuck)
        assert store.promote(ctx, moved.instance_uuid, REMOTE).moved
        assert store.get(ctx.target_cell(REMOTE), moved.instance_uuid).rev == 1
        with pytest.raises(RuntimeError):
            store.promote(ctx, stuck.instance_uuid, REMOTE)
        time.sleep(0.01)  # the lease runs out
        assert store.resume_moves() == {str(stuck.instance_uuid): "rolled_back"}
        assert store.save(ctx, stuck) == 2
    finally:
        store.close()


def denials(admin: redis.Redis) -> list[str]:
    """Commands and keys refused to the specstore user since the last reset (ACL LOG)."""
    entries = cast(list[dict[bytes, Any]], command(admin, "ACL", "LOG", "128"))
    return [
        f"{e[b'reason'].decode()}:{e[b'object'].decode()}"
        for e in entries
        if e[b"username"] == ACL_USER.encode()
    ]


# -- (a) ACL ------------------------------------------------------------------------------------


def test_whole_lifecycle_runs_as_the_least_privilege_user(
    acl_server: RedisServer, admin: redis.Redis
) -> None:
    lifecycle(acl_url(acl_server), admin)
    audit_keyspace(admin)
    two_backends(acl_url(acl_server), admin)
    assert denials(admin) == []
    # every key it wrote is under the prefix
    assert all(k.startswith(b"specstore:") for k in admin.scan_iter(count=1000))


@pytest.mark.parametrize("permission", [r for r in ACL_RULES if r.startswith("+")])
def test_every_permission_granted_is_needed(
    acl_server: RedisServer, admin: redis.Redis, permission: str
) -> None:
    set_acl_user(admin, tuple(r for r in ACL_RULES if r != permission))
    try:
        lifecycle(acl_url(acl_server), admin)
        two_backends(acl_url(acl_server), admin)
    except (SpecStoreError, AssertionError):
        pass  # refused: a typed error, or (MEMORY USAGE) stats without memory figures
    else:
        pytest.fail(f"the lifecycle ran without {permission}: it is not needed")
    assert f"command:{permission[1:]}" in denials(admin)


def test_keys_outside_the_prefix_and_dangerous_commands_are_refused(
    acl_server: RedisServer, admin: redis.Redis
) -> None:
    admin.set("outside", b"admin data")
    admin.set("specstorex:api:spec:{x}", b"a neighbour's data")
    user = redis.Redis.from_url(acl_url(acl_server))
    refused: list[tuple[str, ...]] = [
        ("GET", "outside"),
        ("SET", "outside", "x"),
        ("DEL", "outside"),
        ("HGETALL", "outside"),
        ("EXISTS", "outside"),
        ("GET", "specstorex:api:spec:{x}"),
        ("GET", "specstore"),
        ("RENAME", "specstore:mine", "outside"),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "dir", "/tmp"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", ACL_USER, "+@all"),
        ("EVAL", "return 1", "0"),
        ("SCRIPT", "FLUSH"),
        ("FUNCTION", "FLUSH"),
        ("MONITOR",),
        ("SWAPDB", "0", "1"),
        ("SELECT", "1"),
        ("MODULE", "LIST"),
        ("SAVE",),
        ("BGREWRITEAOF",),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("INFO",),
        ("DUMP", "specstore:x"),
        ("RESTORE", "specstore:y", "0", "x"),
        ("MIGRATE", "127.0.0.1", "1", "specstore:x", "0", "1"),
        ("PUBLISH", "specstore:events", "x"),
    ]
    for args in refused:
        with pytest.raises(redis.exceptions.ResponseError, match=r"permission|not allowed"):
            command(user, *args)  # DEBUG is refused before the ACL even looks
    user.hset("specstore:mine", "f", b"allowed")  # the control: the prefix itself is writable
    # Lua runs with the caller's permissions: a script it loads gains nothing
    sneaky = user.script_load("return redis.call(unpack(ARGV))")
    for args in (("HSET", "outside", "f", "x"), ("HGET", "outside", "f"), ("DEL", "outside")):
        with pytest.raises(redis.exceptions.ResponseError, match=r"can't access"):
            user.evalsha(sneaky, 1, "specstore:mine", *args)
    flush = user.script_load("return redis.call('FLUSHALL')")
    with pytest.raises(redis.exceptions.ResponseError, match=r"can't run this command"):
        user.evalsha(flush, 0)
    assert user.evalsha(sneaky, 1, "specstore:mine", "HGET", "specstore:mine", "f") == b"allowed"
    with pytest.raises(redis.exceptions.ResponseError, match=r"can't run this command"):
        user.evalsha(sneaky, 1, "specstore:set", "SADD", "specstore:set", "x")  # not granted
    # a store under another prefix gets typed errors and writes nothing
    other = SpecStore.from_url(acl_url(acl_server), prefix="other")
    with pytest.raises(BackendError, match=r"NOPERM|permissions|can't run"):
        other.create(RequestContext(store=other), typical_spec())
    with pytest.raises(BackendError):
        other.locate(uuid.uuid4())
    other.close()
    assert admin.get("outside") == b"admin data"
    assert admin.get("specstorex:api:spec:{x}") == b"a neighbour's data"
    assert list(admin.scan_iter(match="other*")) == []
    # the documented limit: SCAN is keyless, so the user sees key names (not values) outside
    names = set(user.scan_iter(match="*", count=1000))
    assert b"outside" in names
    user.close()


def test_the_documented_acl_line_is_the_tested_one() -> None:
    pattern = re.compile(r"ACL SETUSER specstore reset on >\S+ (.+)")
    text = (ROOT / "README.md").read_text()
    lines = [m.group(1).strip().strip("`") for m in pattern.finditer(text)]
    assert lines, "the README must show the ACL SETUSER line"
    for line in lines:
        assert tuple(line.split()) == ACL_RULES


def test_cli_runs_as_the_least_privilege_user(
    acl_server: RedisServer, admin: redis.Redis, tmp_path: Path
) -> None:
    url = acl_url(acl_server)
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    specs = [typical_spec() for _ in range(5)]
    store.create_many(ctx, specs)
    store.promote(ctx, specs[0].instance_uuid, "cell1")
    store.close()
    dump = tmp_path / "all.jsonl"
    steps = [
        run_cli("export", "-o", str(dump), url=url),
        run_cli("inspect", str(specs[0].instance_uuid), url=url),
        run_cli("stats", "--json", url=url),
        run_cli("repair", url=url),
        run_cli("migrate", url=url),
    ]
    admin.flushall()
    admin.script_flush()
    steps.append(run_cli("import", str(dump), url=url))
    for result in steps:
        assert result.returncode == 0, (result.args, result.stderr)
        assert ACL_PASSWORD not in result.stdout + result.stderr
    assert "imported 5 (5 created" in steps[-1].stderr
    assert denials(admin) == []


# -- (b) TLS ------------------------------------------------------------------------------------


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, *identities: str) -> TLSFiles:
    """A throwaway CA and a server certificate for ``identities`` (trustme, a test extra)."""
    try:
        import trustme
    except ImportError:
        message = "trustme is not installed (pip install trustme); the TLS tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    ca = trustme.CA()
    leaf = ca.issue_cert(*identities)
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


class TLSRedisServer(RedisServer):
    """A redis-server listening on a TLS port only (``--port 0``), its certificate issued to
    ``localhost`` (not to 127.0.0.1: connecting by address fails the host name check)."""

    tls: TLSFiles

    @property
    def url(self) -> str:
        return f"rediss://localhost:{self.port}/0"

    def connect(self) -> redis.Redis:
        return redis.Redis(
            host="localhost",
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.tls.ca),
            socket_connect_timeout=0.5,
        )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedisServer]:
    workdir = tmp_path_factory.mktemp("tls")
    files = make_tls_files(workdir, "localhost")
    port = free_port()
    server = TLSRedisServer(
        port,
        workdir,
        [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(files.cert),
            "--tls-key-file", str(files.key),
            "--tls-ca-cert-file", str(files.ca),
            "--tls-auth-clients", "no",
        ],
    )  # fmt: skip
    server.tls = files
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_admin(tls_server: TLSRedisServer) -> Iterator[redis.Redis]:
    client = tls_server.client()
    client.flushall()
    yield client
    client.close()


def test_lifecycle_over_tls(tls_server: TLSRedisServer, tls_admin: redis.Redis) -> None:
    lifecycle(tls_server.url, tls_admin, ssl_ca_certs=str(tls_server.tls.ca))
    audit_keyspace(tls_admin)
    two_backends(tls_server.url, tls_admin, ssl_ca_certs=str(tls_server.tls.ca))
    assert tls_admin.dbsize() > 0


def test_tls_without_the_right_ca_fails_typed(
    tls_server: TLSRedisServer, tls_admin: redis.Redis, tmp_path: Path
) -> None:
    stranger = make_tls_files(tmp_path, "localhost")  # a valid cert from another CA
    ca = str(tls_server.tls.ca)
    attempts: dict[str, SpecStore] = {
        "system CAs": SpecStore.from_url(tls_server.url, socket_timeout=2),
        "another CA": SpecStore.from_url(
            tls_server.url, ssl_ca_certs=str(stranger.ca), socket_timeout=2
        ),
        "host name not in the certificate": SpecStore.from_url(
            f"rediss://127.0.0.1:{tls_server.port}/0", ssl_ca_certs=ca, socket_timeout=2
        ),
        "plain text": SpecStore.from_url(
            f"redis://localhost:{tls_server.port}/0", socket_timeout=2
        ),
    }
    for name, store in attempts.items():
        ctx = RequestContext(store=store)
        with pytest.raises(BackendError) as read:
            store.locate(uuid.uuid4())
        with pytest.raises(BackendError) as write:
            store.create(ctx, typical_spec())
        assert not read.value.may_have_written and not write.value.may_have_written, name
        if name != "plain text":
            assert "CERTIFICATE_VERIFY_FAILED" in str(write.value), name
        store.close()
    assert tls_admin.dbsize() == 0


def test_cli_over_tls(tls_server: TLSRedisServer, tls_admin: redis.Redis, tmp_path: Path) -> None:
    url = f"{tls_server.url}?ssl_ca_certs={tls_server.tls.ca}"
    table = ROOT / "tests" / "fixtures" / "nova" / "request_specs_table.tsv"
    imported = run_cli("import", str(table), url=url)
    assert imported.returncode == 0, imported.stderr
    exported = run_cli("export", "-o", str(tmp_path / "all.jsonl"), url=url)
    assert exported.returncode == 0 and "exported 20 specs" in exported.stderr
    no_ca = run_cli("stats", url=tls_server.url)
    assert no_ca.returncode == 2
    lines = no_ca.stderr.strip().splitlines()
    assert len(lines) == 1 and "TLS certificate could not be verified" in lines[0]


# -- (c) no secret in errors, output or logs ---------------------------------------------------


def everything_said(exc: BaseException) -> str:
    """str, repr, args and the formatted traceback of ``exc`` and every exception it chains."""
    parts = traceback.format_exception(exc)
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def failures(acl_server: RedisServer) -> dict[str, Callable[[], object]]:
    """Operations that fail while a password sits in the URL."""
    dead = free_port()
    wrong = acl_url(acl_server, WRONG_PASSWORD)
    down = f"redis://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:{dead}/0"

    def run(url: str, op: Callable[[SpecStore], object]) -> Callable[[], object]:
        def call() -> object:
            store = SpecStore.from_url(url, socket_connect_timeout=1)
            try:
                return op(store)
            finally:
                store.close()

        return call

    uid = uuid.uuid4()
    return {
        "wrong password, read": run(wrong, lambda s: s.locate(uid)),
        "wrong password, write": run(
            wrong, lambda s: s.create(RequestContext(store=s), typical_spec())
        ),
        "wrong password, export": run(wrong, lambda s: bulk.export_specs(s, io.BytesIO())),
        "server down, read": run(down, lambda s: s.locate(uid)),
        "server down, write": run(
            down, lambda s: s.create(RequestContext(store=s), typical_spec())
        ),
        "refused command": run(
            acl_url(acl_server),
            lambda s: command(cast(redis.Redis, s.client), "CONFIG", "GET", "*"),
        ),
    }


def test_no_password_in_exceptions_or_logs(
    acl_server: RedisServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, call in failures(acl_server).items():
        with pytest.raises(Exception) as info:  # noqa: PT011 - checked below
            call()
        said = everything_said(info.value)
        assert WRONG_PASSWORD not in said and ACL_PASSWORD not in said, name
        assert isinstance(info.value, (BackendError, redis.exceptions.NoPermissionError)), name
    logged = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert WRONG_PASSWORD not in logged and ACL_PASSWORD not in logged


MALFORMED = (
    f"redis://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:99999/0",
    f"redis://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:notaport/0",
    f"redis+cluster://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:99999",
)


def test_no_password_on_the_command_line_output(
    acl_server: RedisServer, admin: redis.Redis
) -> None:
    dead = free_port()
    wrong = acl_url(acl_server, WRONG_PASSWORD)
    runs = [
        (wrong, ("stats",)),
        (wrong, ("export",)),
        (wrong, ("inspect", str(uuid.uuid4()))),
        (wrong, ("demo",)),
        (wrong, ("--redis-url", wrong, "stats")),
    ]
    for url in (
        f"redis://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:{dead}/0",
        f"rediss://{ACL_USER}:{WRONG_PASSWORD}@127.0.0.1:{dead}/0",
        f"redis://:{WRONG_PASSWORD}@127.0.0.1:{dead}/0",
    ):
        runs += [(url, ("stats",)), (url, ("demo",))]
    for url, args in runs:
        result = run_cli(*args, url=url)
        assert result.returncode == 2, (url, args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert WRONG_PASSWORD not in result.stdout + result.stderr, (url, args)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_url_with_a_password_is_one_line_without_it(url: str) -> None:
    result = run_cli("stats", url=url)  # run_cli also checks: no traceback
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert WRONG_PASSWORD not in result.stdout + result.stderr


def test_demo_shows_the_url_without_the_password(
    acl_server: RedisServer, admin: redis.Redis
) -> None:
    result = run_cli("demo", url=acl_url(acl_server))
    assert result.returncode == 0, result.stderr
    assert f"redis://{ACL_USER}:***@127.0.0.1:{acl_server.port}/0" in result.stdout
    assert ACL_PASSWORD not in result.stdout + result.stderr


def test_demo_hides_a_password_given_in_the_query_string(
    acl_server: RedisServer, admin: redis.Redis
) -> None:
    url = f"redis://127.0.0.1:{acl_server.port}/0?username={ACL_USER}&password={ACL_PASSWORD}"
    result = run_cli("demo", url=url)
    assert result.returncode == 0, result.stderr  # redis-py takes the password from the query
    assert ACL_PASSWORD not in result.stdout + result.stderr


SECRET = "S3cr%40t-pw"
REDACT_CASES = {
    f"redis://user:{SECRET}@10.0.0.1:6379/0": "redis://user:***@10.0.0.1:6379/0",
    f"redis://:{SECRET}@10.0.0.1:6379/0": "redis://:***@10.0.0.1:6379/0",
    f"redis://:{SECRET}@10.0.0.1/0": "redis://:***@10.0.0.1/0",
    f"rediss://user:{SECRET}@cache.example:6380/2": "rediss://user:***@cache.example:6380/2",
    f"redis+cluster://user:{SECRET}@node1:7000": "redis+cluster://user:***@node1:7000",
    f"redis://user:{SECRET}@[::1]:6379/0": "redis://user:***@[::1]:6379/0",
    f"unix://user:{SECRET}@/run/redis.sock?db=1": "unix://user:***@/run/redis.sock?db=1",
    f"redis://user:{SECRET}@10.0.0.1:99999/0": "redis://user:***@10.0.0.1:99999/0",
    f"redis://10.0.0.1:6379/0?password={SECRET}": None,
    f"redis://10.0.0.1:6379/0?db=1&password={SECRET}&ssl_password={SECRET}": None,
    "redis://10.0.0.1:6379/0": "redis://10.0.0.1:6379/0",
    "memory://": "memory://",
}


@pytest.mark.parametrize(("url", "expected"), list(REDACT_CASES.items()))
def test_redact_hides_the_password(url: str, expected: str | None) -> None:
    shown = redact(url)
    assert SECRET not in shown and "S3cr@t" not in shown
    if expected is not None:
        assert shown == expected
