"""What a terminal shows: progress bars with totals on stderr, never mixed with data; binary
output refused; Ctrl-C during export and import."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from specstore import RequestContext, SpecStore
from tests.factories import typical_spec
from tests.support.cli import clean_env, run_cli, specstore_cmd
from tests.support.terminal import run_on_terminal

TABLE = Path(__file__).parent / "fixtures" / "nova" / "request_specs_table.tsv"

pytestmark = pytest.mark.redis


def fill(url: str, count: int) -> None:
    with SpecStore.from_url(url) as store:
        ctx = RequestContext(store=store)
        for start in range(0, count, 1000):
            store.create_many(ctx, [typical_spec() for _ in range(min(1000, count - start))])


def test_export_progress_shows_a_total_on_the_terminal_and_data_stays_clean(
    url: str, tmp_path: Path
) -> None:
    fill(url, 20)
    to_file = run_on_terminal("export", "-o", str(tmp_path / "a.jsonl"), url=url, tmp_path=tmp_path)
    assert to_file.returncode == 0, to_file.terminal
    assert "exporting" in to_file.terminal and "20/20" in to_file.terminal
    assert "exported 20 specs" in to_file.terminal
    piped = run_on_terminal("export", url=url, tmp_path=tmp_path)
    assert piped.returncode == 0 and "exporting" in piped.terminal
    lines = piped.stdout.decode().splitlines()
    assert len(lines) == 20 and all(json.loads(line)["instance_uuid"] for line in lines)
    # data on the terminal: no bar drawn over it
    shown = run_on_terminal("export", url=url, tmp_path=tmp_path, stdout_on_terminal=True)
    assert shown.returncode == 0 and "exporting" not in shown.terminal
    assert sum(line.startswith('{"created_at"') for line in shown.terminal.splitlines()) == 20
    # not a terminal: no bar at all
    quiet = run_cli("export", "-o", str(tmp_path / "b.jsonl"), url=url)
    assert quiet.stderr.startswith("exported 20 specs") and len(quiet.stderr.splitlines()) == 1


def test_msgpack_to_a_terminal_is_refused_unless_a_file_is_given(url: str, tmp_path: Path) -> None:
    fill(url, 3)
    refused = run_on_terminal(
        "export", "--format", "msgpack", url=url, tmp_path=tmp_path, stdout_on_terminal=True
    )
    assert refused.returncode == 2
    assert "refusing to write binary msgpack to a terminal" in refused.terminal
    assert "\x00" not in refused.terminal
    written = run_on_terminal(
        "export",
        "--format",
        "msgpack",
        "-o",
        str(tmp_path / "x.msgpack"),
        url=url,
        tmp_path=tmp_path,
        stdout_on_terminal=True,
    )
    assert written.returncode == 0 and (tmp_path / "x.msgpack").stat().st_size > 0


def test_import_progress_covers_validation_and_writing_by_file_size(
    url: str, tmp_path: Path
) -> None:
    result = run_on_terminal("import", str(TABLE), url=url, tmp_path=tmp_path)
    assert result.returncode == 0, result.terminal
    assert "validating" in result.terminal and "importing" in result.terminal
    size_kb = f"{TABLE.stat().st_size / 1000:.1f}"
    assert re.search(rf"{re.escape(size_kb)}/{re.escape(size_kb)} kB", result.terminal), (
        result.terminal
    )
    assert "20 created" in result.terminal


def test_repair_shows_progress(url: str, tmp_path: Path) -> None:
    fill(url, 20)
    result = run_on_terminal("repair", "--dry-run", url=url, tmp_path=tmp_path)
    assert result.returncode == 0
    assert "checking" in result.terminal and "20/20" in result.terminal


def test_import_from_a_terminal_says_it_reads_standard_input(url: str, tmp_path: Path) -> None:
    result = run_on_terminal(
        "import", "-", url=url, tmp_path=tmp_path, stdin_on_terminal=True, typed=b"\x04"
    )
    assert "reading standard input" in result.terminal
    assert result.returncode == 0 and "read 0 records" in result.terminal


def _interrupt_when(
    process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline, "never got going"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)


def test_interrupted_export_leaves_no_file_and_says_so(url: str, tmp_path: Path) -> None:
    fill(url, 3000)
    target = tmp_path / "all.jsonl"
    process = subprocess.Popen(
        [specstore_cmd(), "export", "-o", str(target), "--batch", "1"],
        env=clean_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def started() -> bool:
        return any(p.stat().st_size > 0 for p in tmp_path.glob(".all.jsonl.*.partial"))

    _interrupt_when(process, started)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip() == f"specstore: error: interrupted: export stopped, {target} not written"
    assert list(tmp_path.iterdir()) == []
    finished = run_cli("export", "-o", str(target), url=url)
    assert finished.returncode == 0 and len(target.read_text().splitlines()) == 3000
    assert [p.name for p in tmp_path.iterdir()] == ["all.jsonl"]


def test_interrupted_import_says_how_far_it_got_and_rerunning_resumes(
    url: str, tmp_path: Path
) -> None:
    fill(url, 3000)
    dump = tmp_path / "all.jsonl"
    assert run_cli("export", "-o", str(dump), url=url).returncode == 0
    client = redis.Redis.from_url(url)
    client.flushall()
    process = subprocess.Popen(
        [specstore_cmd(), "import", str(dump), "--batch", "1"],
        env=clean_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _interrupt_when(process, lambda: int(client.dbsize()) > 20)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    match = re.fullmatch(
        r"specstore: error: interrupted after writing (\d+) records: run the same import again "
        r"to resume \(records already written count as unchanged\)",
        err.strip(),
    )
    assert match, err
    written = int(match.group(1))
    assert 10 <= written < 3000
    again = run_cli("import", str(dump), url=url)
    assert again.returncode == 0, again.stderr
    created = int(re.search(r"\((\d+) created", again.stderr).group(1))  # type: ignore[union-attr]
    unchanged = int(re.search(r"(\d+) unchanged", again.stderr).group(1))  # type: ignore[union-attr]
    assert created + unchanged == 3000 and unchanged >= written
    client.close()
