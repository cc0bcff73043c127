"""``--profile``: pyinstrument profiles of specstore paths, written to benchmarks/profiles/.

Without ``--profile-paths`` the two paths with the largest slowdown against their baseline
(ratio for times, 1/ratio for throughputs) are profiled. pyinstrument comes with the
``bench`` extra and is imported only here, only when asked for.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from benchmarks import exporter
from benchmarks.harness import Row
from benchmarks.latency import CELL, create_all, save_get_ops
from benchmarks.workload import BASE_SPEC, Counts, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from specstore.store import SpecStore

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
Step = Callable[[int], object]
"""One call of a profiled path; receives the call's index."""


def slowest_paths(rows: Sequence[Row], count: int = 2) -> list[str]:
    """The ``count`` distinct paths that are slowest against their baselines."""
    ranked = sorted((r for r in rows if r.path and r.slowdown is not None),
                    key=lambda r: r.slowdown or 0.0, reverse=True)
    paths: list[str] = []
    for row in ranked:
        if row.path is not None and row.path not in paths:
            paths.append(row.path)
    return paths[:count]


def _workload(path: str, client: redis.Redis, url: str, prefix: str, counts: Counts,
              scratch: Path) -> tuple[Step, int]:
    """Set up data for ``path`` (untimed); the step to profile and how many times to call it.

    Results are dropped call by call, so a profile never pays for a growing heap.
    """
    store = SpecStore(client, keyspace=keyspace(prefix, "prof-" + path.replace(" ", "-")))
    ctx = RequestContext(store=store)
    n = counts.profile_ops
    if path in ("single save", "single get"):
        ops = save_get_ops(store, f"{prefix}:profraw", min(n, 200))
        return ops["ss_" + path.split()[1]], n
    if path == "single promote":
        specs = spec_copies(n)
        create_all(store, ctx, specs)
        uids = [str(s.instance_uuid) for s in specs]
        return (lambda i: store.promote(ctx, uids[i], CELL)), n
    if path in ("encode", "decode"):
        doc = DEFAULT_CODEC.encode(BASE_SPEC)
        if path == "encode":
            return (lambda _i: DEFAULT_CODEC.encode(BASE_SPEC)), n * 10
        return (lambda _i: DEFAULT_CODEC.decode(doc)), n * 10
    bulk = spec_copies(n * 5)
    batches = len(bulk) // 1_000 or 1
    size = len(bulk) // batches
    if path == "batch save":
        return (lambda i: store.create_many(ctx, bulk[i * size:(i + 1) * size])), batches
    create_all(store, ctx, bulk)
    uids = [str(s.instance_uuid) for s in bulk]
    bulk.clear()
    if path == "batch get":
        return (lambda i: store.get_many(ctx, uids[i * size:(i + 1) * size])), batches
    if path == "export":
        return (lambda _i: exporter.export_cli(url, store.keys.prefix, Path(os.devnull))), 1
    if path == "import":
        lines = scratch / "export.jsonl"
        exporter.export_cli(url, store.keys.prefix, lines)
        return (lambda _i: exporter.import_cli(url, f"{prefix}:profimp", lines)), 1
    raise ValueError(f"no profile workload for {path!r}")


def profile(paths: Sequence[str], client: redis.Redis, url: str, prefix: str,
            counts: Counts) -> dict[str, Path]:
    """Profile each path; returns path -> the text profile written."""
    pyinstrument: Any = importlib.import_module("pyinstrument")
    PROFILE_DIR.mkdir(exist_ok=True)
    written: dict[str, Path] = {}
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="specstore-prof-") as scratch:
            step, calls = _workload(path, client, url, prefix, counts, Path(scratch))
            profiler = pyinstrument.Profiler(interval=0.0005)
            profiler.start()
            for i in range(calls):
                step(i)
            profiler.stop()
        text: str = profiler.output_text(unicode=False, color=False, show_all=False)
        out = PROFILE_DIR / f"{path.replace(' ', '_')}.txt"
        out.write_text(f"{path}: {calls} calls\n{text}")
        written[path] = out
    return written


def headline(text: str, lines: int = 30) -> str:
    """The top of a profile written by :func:`profile`: its heaviest call-tree branches."""
    body = text.splitlines()
    start = next((i for i, line in enumerate(body) if line.startswith("Profile at")), 0)
    return "\n".join(body[start + 1 : start + 1 + lines]).strip("\n")
