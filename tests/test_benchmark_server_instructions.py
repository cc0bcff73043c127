"""Figure 12: Redis's own instructions per call, counted in a redis-server under callgrind."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import run as bench_run
from benchmarks import server_instructions
from tests.support.redis_server import require_binary


@pytest.mark.redis
def test_figure_12_counts_each_op_of_its_own_server() -> None:
    require_binary("valgrind")
    require_binary("callgrind_control")
    require_binary("redis-server")
    rows = {row.name: row for row in server_instructions.figure_12(calls=20)}
    save = rows["Redis instructions per save: save.lua vs bare checked write"]
    bare = rows["Redis instructions per save: bare checked write vs SET"]
    assert save.baseline == bare.specstore  # the same bare checked write, counted once
    assert save.specstore is not None and bare.specstore is not None
    assert bare.baseline is not None and bare.baseline > 0
    # save.lua runs the bare write's three commands and its checks; a script of three
    # commands costs the server more than one SET: dumps that mixed ops up would not show it
    assert save.specstore > bare.specstore > bare.baseline
    create = rows["Redis instructions per create: create.lua vs SET"]
    get = rows["Redis instructions per get: HGETALL vs GET"]
    assert create.specstore is not None and create.baseline is not None
    assert create.specstore > create.baseline > 0
    assert get.specstore is not None and get.baseline is not None and get.baseline > 0


def test_figure_12_without_valgrind_says_so_and_yields_no_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no valgrind on it
    assert server_instructions.figure_12() == []
    assert "not on PATH" in capsys.readouterr().err


def test_figure_12_runs_only_when_named() -> None:
    assert 12 not in bench_run._parse([]).figures
    assert bench_run._parse(["--figures", "12"]).figures == [12]
