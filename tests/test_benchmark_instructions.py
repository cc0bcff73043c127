"""Figure 10's pieces without valgrind: every op of the child runs (in-process, n=2, on the
suite's redis-server), and callgrind's "Collected :" line is read right."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import instructions
from benchmarks import run as bench_run
from benchmarks.instructions import PAIRS, parse_collected
from benchmarks.instructions_child import OPS, main, run
from specstore import StoredSpec
from specstore.model import RequestSpec
from tests.support.redis_server import RedisServer

RESULT_TYPES: dict[str, type] = {
    "get": StoredSpec, "hand_get": RequestSpec, "save": int, "hand_save": bool,
    "aget": StoredSpec, "hand_aget": RequestSpec, "asave": int, "hand_asave": bool,
}

CALLGRIND_STDERR = """\
==4242== Callgrind, a call-graph generating cache profiler
==4242== Copyright (C) 2002-2017, and GNU GPL'd, by Josef Weidendorfer et al.
==4242== For interactive control, run 'callgrind_control -h'.
==4242==
==4242== Events    : Ir
==4242== Collected : 1887763183
==4242==
==4242== I   refs:      1,887,763,183
"""


@pytest.mark.redis
@pytest.mark.parametrize("op", OPS)
def test_child_op_runs(op: str, url: str, redis_server: RedisServer) -> None:
    assert isinstance(run(op, 2, redis_server.port), RESULT_TYPES[op])


@pytest.mark.redis
@pytest.mark.parametrize("op", ["get", "asave"])
def test_child_runs_again_on_the_same_server(op: str, url: str, redis_server: RedisServer) -> None:
    run(op, 0, redis_server.port)
    assert isinstance(run(op, 0, redis_server.port), RESULT_TYPES[op])


@pytest.mark.redis
def test_child_main_runs_the_baseline(url: str, redis_server: RedisServer) -> None:
    assert main(["save", "0", str(redis_server.port)]) == 0
    assert main(["nope", "0", str(redis_server.port)]) == 2


def test_every_pair_names_child_ops() -> None:
    assert {op for _, ours, theirs, _ in PAIRS for op in (ours, theirs)} == set(OPS)


def test_parse_collected() -> None:
    assert parse_collected(CALLGRIND_STDERR) == 1887763183
    assert parse_collected("==1== Collected :   12\n") == 12


def test_parse_collected_refuses_output_without_a_count() -> None:
    with pytest.raises(ValueError, match="Collected"):
        parse_collected("==1== valgrind: failed to start tool 'callgrind'\n")


def test_figure_10_without_valgrind_says_so_and_yields_no_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no valgrind on it
    assert instructions.figure_10() == []
    assert "valgrind is not on PATH" in capsys.readouterr().err


def test_figure_10_runs_only_when_named() -> None:
    assert 10 not in bench_run._parse([]).figures
    assert bench_run._parse(["--figures", "10"]).figures == [10]
