"""Figure 10: client-side CPU per call, as instructions counted by valgrind's callgrind.

Wall time on a small shared VM moves with whatever else runs; instruction counts barely do:
repeated runs agree to within about 1%, not to the instruction. Each op of
:mod:`benchmarks.instructions_child` runs in a child process under
``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``) twice: with 0 calls (the same imports
and setup) and with :data:`CALLS` calls; instructions per call = the difference / CALLS.
The children talk to a redis-server of the figure's own; up to :data:`PARALLEL` run at once.

Opt-in (``--figures 10``): sixteen children under callgrind take minutes. Without
``valgrind`` on PATH the figure says so on stderr and yields no rows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.harness import Row
from benchmarks.instructions_child import OPS
from benchmarks.servers import start_server

FIGURE = 10
CALLS = 500
"""Measured calls per op (fixed, not scaled: the counts stay comparable from run to run)."""
PARALLEL = 3
TIMEOUT = 900.0
ROOT = Path(__file__).resolve().parent.parent
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")

PAIRS = (
    ("get", "get", "hand_get", "GET + model_validate_json"),
    ("save", "save", "hand_save", "model_dump_json + SET"),
    ("async get", "aget", "hand_aget", "GET + model_validate_json, asyncio"),
    ("async save", "asave", "hand_asave", "model_dump_json + SET, asyncio"),
)
"""(label, specstore op, hand-rolled op, baseline name)."""


def parse_collected(stderr: str) -> int:
    """The instruction count of callgrind's ``==pid== Collected : <number>`` line."""
    found = COLLECTED.findall(stderr)
    if not found:
        raise ValueError(f"no 'Collected :' line in valgrind's output: {stderr[-2000:]!r}")
    return int(found[-1])


def count_instructions(valgrind: str, op: str, n: int, port: int) -> int:
    """Instructions of one child process (``op``, ``n`` calls) under callgrind."""
    with tempfile.TemporaryDirectory(prefix="specstore-callgrind-") as scratch:
        done = subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch}/callgrind.out",
             sys.executable, "-m", "benchmarks.instructions_child", op, str(n), str(port)],
            cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True,
            text=True, timeout=TIMEOUT, check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind child {op} {n} exited {done.returncode}: "
                           f"{done.stderr[-2000:]}")
    return parse_collected(done.stderr)


def per_call(valgrind: str, port: int, calls: int = CALLS) -> dict[str, float]:
    """Instructions per call of every op: (count with ``calls`` - count with 0) / calls."""
    jobs = [(op, n) for op in OPS for n in (0, calls)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        counts = list(pool.map(lambda job: count_instructions(valgrind, job[0], job[1], port),
                               jobs))
    total = dict(zip(jobs, counts, strict=True))
    return {op: (total[op, calls] - total[op, 0]) / calls for op in OPS}


def figure_10(calls: int = CALLS) -> list[Row]:
    """Client instructions per get / save / async get / async save vs the hand-rolled
    pydantic JSON + GET/SET; no rows (and a word on stderr) without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("[bench] figure 10: valgrind is not on PATH; no rows", file=sys.stderr)
        return []
    server = start_server()
    try:
        result = per_call(valgrind, server.port, calls)
    finally:
        server.discard()
    note = (f"Figure 10: instructions counted by valgrind's callgrind in the client process "
            "only (user-space instructions: Python, pydantic-core, redis-py, hiredis, ...); "
            "the kernel's socket work and the Redis server's time are NOT included, so this "
            "explains but does not replace the wall-clock figures 2 and 9. Per call = "
            f"(count with {calls} calls - count with 0 calls) / {calls}, each op in its own "
            "child process (PYTHONHASHSEED=0, same imports and setup, one typical spec, "
            "3 warm-up calls); async ops awaited one at a time in one event loop on "
            "redis.asyncio. Not exact to the instruction: repeated runs of the same tree agree to "
            "within about 1% (get 376.5k-378.9k over repeats), so smaller differences are noise; "
            "no target.")
    return [
        Row(FIGURE, f"client instructions per {label}", "instr", result[ours], result[theirs],
            baseline, note=note if i == 0 else "")
        for i, (label, ours, theirs, baseline) in enumerate(PAIRS)
    ]
