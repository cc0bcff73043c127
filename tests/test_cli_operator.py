"""What an operator sees from the installed ``specstore`` command (run as a subprocess)."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.core
import typer.main

from specstore import RequestContext, SpecStore
from specstore.cli import app
from specstore.core.keys import Keyspace
from tests.factories import typical_spec
from tests.support.cli import clean_env, run_cli, specstore_cmd
from tests.support.keyspace import set_location
from tests.support.redis_server import RedisServer, start_server

TABLE = Path(__file__).parent / "fixtures" / "nova" / "request_specs_table.tsv"
COMMANDS = ["demo", "inspect", "export", "import", "migrate", "repair", "gc", "stats"]
GLOBAL_OPTIONS = ["--redis-url", "--prefix", "--cell-urls", "--config"]
ANY_UUID = "0f4d2a8e-43c1-4c43-9cf3-4c5d7a1b2e3f"


def command_args(command: str) -> list[str]:
    """The least each command needs to get as far as opening the store."""
    return {
        "inspect": ["inspect", ANY_UUID],
        "import": ["import", str(TABLE)],
        "gc": ["gc", "--unpromoted-older-than", "3600"],
    }.get(command, [command])


def first_uuid() -> str:
    return TABLE.read_text().splitlines()[1].split("\t")[0]


# -- 1. no Redis configured --------------------------------------------------------------------


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_without_redis_every_command_but_demo_refuses_with_a_hint(command: str) -> None:
    result = run_cli(*command_args(command))
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("specstore: error: no Redis configured: pass --redis-url")
    assert "memory://" in result.stderr
    assert "imported" not in result.stderr


def test_memory_store_runs_when_asked_for() -> None:
    result = run_cli("import", str(TABLE), "--redis-url", "memory://")
    assert result.returncode == 0, result.stderr
    assert "20 created" in result.stderr


def test_unknown_config_key_is_an_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "specstore.toml"
    config.write_text('[specstore]\nredis-url = "redis://127.0.0.1:1/0"\n')
    result = run_cli("stats", "--config", str(config))
    assert result.returncode == 2
    assert "unknown key 'redis-url'" in result.stderr
    assert "did you mean 'redis_url'?" in result.stderr
    cell = tmp_path / "cells.toml"
    cell.write_text('redis_url = "memory://"\n[cells.cell1]\nredis_ulr = "memory://"\n')
    result = run_cli("stats", "--config", str(cell))
    assert result.returncode == 2 and "unknown key cells.cell1.'redis_ulr'" in result.stderr


# -- 2. demo --keep ----------------------------------------------------------------------------


@pytest.mark.redis
def test_demo_keep_prints_an_inspect_command_that_works(url: str) -> None:
    result = run_cli("demo", "--keep", "--redis-url", url)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    command = shlex.split(last.split("`")[1])
    assert command[0] == "specstore" and url in command
    shown = subprocess.run(
        [specstore_cmd(), *command[1:]], env=clean_env(), capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["store"] == "cell1"


def test_demo_keep_on_memory_says_the_store_ends_with_the_process() -> None:
    result = run_cli("demo", "--keep")
    assert result.returncode == 0
    assert "which ends with this process" in result.stdout.splitlines()[-1]
    assert "specstore inspect" not in result.stdout


# -- 3. global options, -h, --version ---------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_global_options_are_in_every_subcommands_help(command: str) -> None:
    result = run_cli(command, "-h")
    assert result.returncode == 0, result.stderr
    for option in [*GLOBAL_OPTIONS, "-h, --help"]:
        assert option in result.stdout, (command, option)


@pytest.mark.redis
def test_global_options_work_after_the_subcommand(url: str) -> None:
    assert run_cli("import", str(TABLE), "--redis-url", url, "--prefix", "p2").returncode == 0
    stats = run_cli("stats", "--json", "--redis-url", url, "--prefix", "p2")
    assert json.loads(stats.stdout)["api"]["count"] == 20
    # after the subcommand wins over before it
    other = run_cli("--prefix", "p2", "stats", "--json", "--prefix", "p3", "--redis-url", url)
    assert json.loads(other.stdout) == {}


def test_version() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"specstore {version('specstore')}"


# -- 4. export into a closed pipe -------------------------------------------------------------


@pytest.mark.redis
def test_export_into_head_exits_0_with_nothing_on_stderr(url: str) -> None:
    store = SpecStore.from_url(url)
    store.create_many(RequestContext(store=store), [typical_spec() for _ in range(300)])
    store.close()
    shell = f"set -o pipefail; {shlex.quote(specstore_cmd())} export | head -1"
    result = subprocess.run(
        ["bash", "-c", shell], env=clean_env(url), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout)["instance_uuid"]


# -- 6. repair counts instances and names stores as configured --------------------------------


@pytest.mark.redis
def test_repair_counts_instances_not_keys(url: str) -> None:
    assert run_cli("import", str(TABLE), url=url).returncode == 0
    result = run_cli("repair", "--dry-run", url=url)
    assert result.returncode == 0
    assert result.stdout.strip() == "checked 20 instances: 0 need repair, 0 skipped"


@pytest.mark.redis
def test_repair_names_cells_on_their_own_redis_by_their_name(url: str) -> None:
    cell_server = start_server()
    try:
        store = SpecStore.from_url(url)
        dangling = str(uuid.uuid4())
        cell_client = cell_server.client()
        # a live record on the cell's own server for a spec that lives nowhere
        set_location(cell_client, Keyspace(), dangling, "cell1")
        result = run_cli("repair", "--dry-run", "--cell-urls", f"cell1={cell_server.url}", url=url)
        assert result.returncode == 1, result.stderr
        assert f"{dangling}: bury the record on cell1" in result.stdout
        assert "default" not in result.stdout
        cell_client.close()
        store.close()
    finally:
        cell_server.discard()


# -- 7. --store names are checked ---------------------------------------------------------------


@pytest.mark.redis
def test_unknown_or_malformed_store_is_an_error(url: str) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    store.promote(ctx, spec.instance_uuid, "cell1")
    store.close()
    typo = run_cli("export", "--store", "cel1", url=url)
    assert typo.returncode == 2 and typo.stdout == ""
    assert "unknown store 'cel1'" in typo.stderr and "api, cell1" in typo.stderr
    bad = run_cli("export", "--store", "cell*", url=url)
    assert bad.returncode == 2 and "invalid cell name 'cell*'" in bad.stderr
    good = run_cli("export", "--store", "cell1", url=url)
    assert good.returncode == 0 and "exported 1 specs" in good.stderr


# -- 8. connection errors in words ----------------------------------------------------------------


@pytest.fixture
def password_server() -> Iterator[RedisServer]:
    server = start_server()
    client = server.client()
    client.config_set("requirepass", "hunter2-secret")
    client.close()
    yield server
    server.discard()


@pytest.mark.redis
def test_authentication_errors_say_what_happened_and_hide_the_password(
    password_server: RedisServer,
) -> None:
    port = password_server.port
    missing = run_cli("stats", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert missing.returncode == 2
    assert missing.stderr.startswith(
        f"specstore: error: cannot connect to Redis at 127.0.0.1:{port}"
    )
    assert "authentication required" in missing.stderr
    wrong = run_cli("import", str(TABLE), "--redis-url", f"redis://:not-it@127.0.0.1:{port}/0")
    assert wrong.returncode == 2
    assert "wrong" in wrong.stderr and "password" in wrong.stderr
    assert "not-it" not in wrong.stderr and "***" in wrong.stderr
    assert wrong.stderr.rstrip().endswith("(nothing was written)")
    for result in (missing, wrong):
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Error" not in result.stderr  # no class names, private or not
        assert "*spec" not in result.stderr and "scan" not in result.stderr
    assert "nothing was written" not in missing.stderr  # stats never writes


@pytest.mark.redis
def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = run_cli("stats", "--redis-url", f"redis://127.0.0.1:{port}/0?socket_timeout=0.5")
    assert result.returncode == 2
    assert f"Redis at 127.0.0.1:{port}" in result.stderr and "timed out" in result.stderr


# -- 9. import input -------------------------------------------------------------------------------


def test_import_of_an_unrecognised_file_asks_for_format(tmp_path: Path) -> None:
    picture = tmp_path / "picture.bin"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    result = run_cli("import", str(picture), "--redis-url", "memory://")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"specstore: error: cannot tell the format of {picture}: it looks like neither JSON "
        "lines, msgpack nor a Nova request_specs table; pass --format jsonl, msgpack or nova-tsv"
    ]
    folder = run_cli("import", str(tmp_path), "--redis-url", "memory://")
    assert folder.returncode == 2
    assert folder.stderr.strip() == f"specstore: error: cannot import {tmp_path}: is a directory"


@pytest.mark.redis
def test_dry_run_reports_what_the_real_run_would_do(url: str) -> None:
    assert run_cli("import", str(TABLE), url=url).returncode == 0
    store = SpecStore.from_url(url)
    store.destroy(RequestContext(store=store), first_uuid())
    store.close()
    before = run_cli("stats", "--json", url=url).stdout
    dry = run_cli("import", "--dry-run", str(TABLE), url=url)
    # a spec destroyed since the export stays destroyed unless --overwrite
    assert "would create 0, replace 0, leave 19 unchanged and keep 1" in dry.stderr
    assert "nothing was written" in dry.stderr
    real = run_cli("import", str(TABLE), url=url)
    assert "(0 created, 0 replaced, 19 unchanged, 1 kept as they were)" in real.stderr
    dry = run_cli("import", "--dry-run", "--overwrite", str(TABLE), url=url)
    assert dry.returncode == 0, dry.stderr
    assert "would create 1, replace 0, leave 19 unchanged and keep 0" in dry.stderr
    assert run_cli("stats", "--json", url=url).stdout == before
    real = run_cli("import", "--overwrite", str(TABLE), url=url)
    assert "(1 created, 0 replaced, 19 unchanged, 0 kept as they were)" in real.stderr


@pytest.mark.redis
def test_dry_run_names_specs_it_would_keep_and_replace(url: str) -> None:
    assert run_cli("import", str(TABLE), url=url).returncode == 0
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    spec = store.get(ctx, first_uuid()).spec
    spec.availability_zone = "az-changed"
    store.save(ctx, spec)  # now differs from the file's document
    store.close()
    kept = run_cli("import", "--dry-run", str(TABLE), url=url)
    assert kept.returncode == 1
    assert "leave 19 unchanged and keep 1" in kept.stderr
    assert f"{first_uuid()}: would keep the spec already in 'api'" in kept.stderr
    replaced = run_cli("import", "--dry-run", "--overwrite", str(TABLE), url=url)
    assert replaced.returncode == 0 and "replace 1, leave 19 unchanged" in replaced.stderr


# -- 10. help is readable ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_uses_metavars_and_describes_every_option(command: str) -> None:
    text = run_cli(command, "--help").stdout
    for raw in ("<str>", "<bool>", "<int", "list[", "<path>"):
        assert raw not in text, (command, raw)
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    sub = group.commands[command]
    for param in sub.params:
        if isinstance(param, typer.core.TyperOption):
            assert param.help, (command, param.name)
    if command == "export":
        assert "--format <jsonl|msgpack>" in text and "-o, --output FILE" in text
    if command == "import":
        assert "<auto|jsonl|msgpack|nova-tsv>" in text and "FILE" in text
    if command == "inspect":
        assert "UUID" in text


# -- 11. inspect ------------------------------------------------------------------------------


@pytest.mark.redis
def test_inspect_shows_metadata_first_and_accepts_any_uuid_spelling(url: str) -> None:
    assert run_cli("import", str(TABLE), url=url).returncode == 0
    uid = first_uuid()
    plain = run_cli("inspect", uid, url=url)
    assert plain.returncode == 0, plain.stderr
    shown = json.loads(plain.stdout)
    assert list(shown)[:4] == ["store", "key", "location_key", "rev"]
    assert list(shown)[-1] == "document"
    assert plain.stdout.index('"rev"') < plain.stdout.index('"document"')
    for spelling in (uid.upper(), "{" + uid + "}", uid.replace("-", ""), f"urn:uuid:{uid}"):
        again = run_cli("inspect", spelling, url=url)
        assert again.returncode == 0, (spelling, again.stderr)
        assert again.stdout == plain.stdout
    bad = run_cli("inspect", uid[:-1] + "g", url=url)
    assert bad.returncode == 2 and "not a valid UUID" in bad.stderr
