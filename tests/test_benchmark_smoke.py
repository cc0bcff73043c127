"""The benchmark script runs end to end at tiny counts and prints every figure's rows.

No timing is asserted: this only keeps ``python -m benchmarks.run`` from rotting. It starts
its own redis-server (and a 3-master cluster for figure 6), like the real-Redis tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import require_binary

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_ROWS = {
    1: ["save latency p50", "save latency p99", "get latency p50", "get latency p99",
        "promote latency p50", "promote latency p99"],
    2: ["save latency p50", "get latency p50", "promote latency p50"],
    3: ["batch save throughput", "batch get throughput"],
    4: ["export throughput", "import throughput", "export peak memory, tracemalloc",
        "export peak RSS delta"],
    5: ["encode per spec", "decode per spec", "encode + decode per spec",
        "stored document size", "stored document size vs Nova",
        "Redis MEMORY USAGE of the spec key", "Redis MEMORY USAGE of the spec key vs Nova"],
    6: ["cluster save latency p50", "cluster save latency p99", "cluster get latency p50",
        "cluster get latency p99"],
    7: ["save latency p50 vs redis-om", "get latency p50 vs redis-om"],
    8: ["save latency p50, provider configured", "get latency p50, provider configured",
        "save latency p50, no provider", "get latency p50, no provider",
        "instrumentation per call, no provider"],
    9: ["async save latency p50", "async save latency p99", "async get latency p50",
        "async get latency p99", "async save latency p50 vs hand-rolled",
        "async get latency p50 vs hand-rolled"],
    11: ["Redis time per save: bare checked write vs SET",
         "Redis time per save: save.lua vs bare checked write", "encode between round trips",
         "encode in a tight loop", "pydantic's cheapest dump + validation vs the 1.5x codec",
         "validate_python alone vs the 1.5x codec budget",
         "create_many per spec: encode + create.lua's Redis time"],
}
OPTIONAL = {7}
"""Figures that say "not run" when their packages are missing (redis-om, RedisJSON)."""


@pytest.mark.redis
@pytest.mark.cluster
def test_benchmark_runs_and_prints_every_figure(tmp_path: Path) -> None:
    require_binary("redis-server")
    require_binary("redis-cli")
    out = tmp_path / "bench.json"
    # The chart needs matplotlib (the bench extra); the test extra alone runs without it.
    drawn = importlib.util.find_spec("matplotlib") is not None
    chart = ["--chart", str(tmp_path / "chart.png")] if drawn else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--scale", "0.02", "--cluster",
         "--json", str(out), *chart],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| # | figure | specstore | baseline | ratio | target | result |")
    for figure, names in EXPECTED_ROWS.items():
        rows = [line for line in table if line.startswith(f"| {figure} | ")]
        for name in names:
            assert any(f"| {name}" in row for row in rows), (
                f"figure {figure}: no row {name!r} in\n" + "\n".join(rows)
            )
        ends = ("| met |", "| MISSED |", "| - |", "| not run |") if figure in OPTIONAL else (
            "| met |", "| MISSED |", "| - |")
        assert all(row.rstrip().endswith(ends) for row in rows)

    written = json.loads(out.read_text())
    assert {row["figure"] for row in written["rows"]} == set(EXPECTED_ROWS)
    assert all(row["specstore"] is not None for row in written["rows"]
               if row["figure"] not in OPTIONAL)
    if drawn:
        assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
