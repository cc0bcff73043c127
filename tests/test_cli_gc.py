"""``specstore gc`` through the console script, on a real redis-server."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from specstore import SpecStore
from tests.support.cli import run_cli
from tests.test_gc import create_at, snapshot

pytestmark = pytest.mark.redis


def scene(url: str) -> tuple[SpecStore, dict[str, str]]:
    store = SpecStore.from_url(url)
    now = dt.datetime.now(dt.timezone.utc)
    specs = {
        "live": create_at(store, now - dt.timedelta(days=3)),
        "dead": create_at(store, now - dt.timedelta(days=1)),
        "dead-young": create_at(store, now - dt.timedelta(seconds=30)),
    }
    return store, specs


def test_dry_run_then_real_run(url: str, tmp_path: Path) -> None:
    store, specs = scene(url)
    live = tmp_path / "live.txt"
    # any spelling, comments and blank lines
    live.write_text(f"# instances from nova\n\n{uuid.UUID(specs['live']).hex.upper()}  # web-1\n")
    before = snapshot(store)
    dry = run_cli("gc", "--live-file", str(live), "--dry-run", url=url)
    assert dry.returncode == 1, dry.stderr
    assert dry.stdout.splitlines() == [
        f"{specs['dead']}: orphan (instance not live), would remove",
        "checked 3 api-store specs: 1 orphans, 0 unpromoted, 1 would be removed, 1 too young, "
        "0 skipped",
    ]
    assert snapshot(store) == before

    real = run_cli("gc", "--live-file", str(live), url=url)
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines()[0] == f"{specs['dead']}: orphan (instance not live), removed"
    assert "1 removed, 1 too young, 0 skipped" in real.stdout
    assert store.locate(specs["dead"]) is None
    assert store.locate(specs["live"]) == "api"
    assert store.locate(specs["dead-young"]) == "api"

    young = run_cli("gc", "--live-file", str(live), "--min-age", "0", "-q", url=url)
    assert young.returncode == 0, young.stderr
    assert young.stdout.strip() == f"{specs['dead-young']}: orphan (instance not live), removed"
    store.close()


def test_live_list_on_stdin_and_time_to_live(url: str) -> None:
    store, specs = scene(url)
    two_days = str(2 * 86400)
    result = run_cli(
        "gc",
        "--live-file",
        "-",
        "--unpromoted-older-than",
        two_days,
        url=url,
        stdin=f"{specs['live']}\n{specs['dead']}\n".encode(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"{specs['live']}: never promoted within the time-to-live, removed"
    )
    assert "0 orphans, 1 unpromoted, 1 removed" in result.stdout
    assert store.locate(specs["live"]) is None
    # a time-to-live alone needs no live list
    alone = run_cli("gc", "--unpromoted-older-than", "3600", "--dry-run", url=url)
    assert alone.returncode == 1, alone.stderr
    assert alone.stdout.splitlines()[0] == (
        f"{specs['dead']}: never promoted within the time-to-live, would remove"
    )
    store.close()


def test_skipped_keys_are_named_and_exit_1(url: str, tmp_path: Path) -> None:
    store, specs = scene(url)
    foreign = str(uuid.uuid4())
    store.client.set(store.keys.spec_key("api", foreign), b"not ours")
    live = tmp_path / "live"
    live.write_text("\n".join(specs.values()) + "\n")
    result = run_cli("gc", "--live-file", str(live), url=url)
    assert result.returncode == 1
    assert f"skipped {foreign}: the key holds something that is not a spec hash" in result.stderr
    assert store.client.get(store.keys.spec_key("api", foreign)) == b"not ours"
    store.close()


USAGE = {
    "no-list-no-ttl": ([], "give --live-file FILE (the instances that exist)"),
    "missing-file": (["--live-file", "/nonexistent/live"], "cannot read --live-file"),
    "empty-list": (["--live-file", "EMPTY"], "lists no instance: refusing to treat every spec"),
    "bad-line": (["--live-file", "BAD"], "line 2: not an instance uuid: 'web-1'"),
    "negative-age": (["--live-file", "BAD", "--min-age", "-1"], "'--min-age'"),
}


@pytest.mark.parametrize(("args", "message"), USAGE.values(), ids=USAGE)
def test_usage_errors_exit_2_and_remove_nothing(
    url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    store, _ = scene(url)
    (tmp_path / "EMPTY").write_text("# nothing\n\n")
    (tmp_path / "BAD").write_text(f"{uuid.uuid4()}\nweb-1\n")
    before = snapshot(store)
    result = run_cli("gc", *args, url=url, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert snapshot(store) == before
    store.close()
