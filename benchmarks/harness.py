"""Timing helpers, result rows and the markdown table (no Redis, no specstore).

Every figure is a :class:`Row`: the specstore value, the baseline value measured in the same
run on the same Redis, their ratio (always specstore / baseline) and an optional target.
Latencies are sampled one call at a time; each run yields a p50 and a p99 and the row reports
the median of those over the runs. Throughputs are timed over whole batches; the row reports
the median over the runs.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Callable[[int], object]
"""One measured call; receives the index of the call (to pick a key, a spec, ...)."""


@dataclass(frozen=True)
class Target:
    """A goal for a row: on the ratio or on the specstore value, as an upper or lower bound."""

    on: Literal["ratio", "value"]
    bound: Literal["<=", ">=", "<"]
    limit: float
    unit: str = ""

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None:
            return None
        if self.bound == "<=":
            return subject <= self.limit
        if self.bound == "<":
            return subject < self.limit
        return subject >= self.limit

    def __str__(self) -> str:
        if self.on == "ratio":
            return f"ratio {self.bound} {self.limit:g}"
        return f"{self.bound} {_number(self.limit)}{' ' + self.unit if self.unit else ''}"


@dataclass
class Row:
    """One line of the results table."""

    figure: int
    name: str
    unit: str
    specstore: float | None
    baseline: float | None
    baseline_name: str
    target: Target | None = None
    note: str = ""
    run: bool = True
    path: str | None = None
    """The specstore code path this row times (a candidate for ``--profile``)."""
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if self.specstore is None or self.baseline is None or self.baseline == 0:
            return None
        return self.specstore / self.baseline

    @property
    def slowdown(self) -> float | None:
        """How many times slower than its baseline specstore is on this row."""
        ratio = self.ratio
        if ratio is None or ratio == 0:
            return None
        return 1 / ratio if self.higher_is_better else ratio

    @property
    def result(self) -> str:
        if not self.run:
            return "not run"
        if self.target is None or self.specstore is None:
            return "-"
        met = self.target.met(self.specstore, self.ratio)
        if met is None:
            return "-"
        return "met" if met else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "name": self.name,
            "unit": self.unit,
            "specstore": self.specstore,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": str(self.target) if self.target else None,
            "result": self.result,
            "note": self.note,
        }


def not_run(figure: int, name: str, unit: str, baseline_name: str, why: str,
            target: Target | None = None) -> Row:
    return Row(figure, name, unit, None, None, baseline_name, target, note=why, run=False)


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Medians over the runs of each run's p50 and p99, in microseconds."""

    p50: float
    p99: float
    samples: int
    runs: int


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..1)."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def measure_latencies(
    ops: dict[str, Op], *, samples: int, runs: int, warmup: int
) -> dict[str, Latency]:
    """Time each op ``samples`` times per run, ``runs`` runs, after ``warmup`` untimed calls.

    The ops are interleaved run by run (A B C, then B C A, ...) so that a drift of the machine
    shows in all of them rather than in one. Call indexes keep counting across warm-up and
    runs, so an op that consumes something per call (promote) never sees an index twice.
    """
    names = list(ops)
    counters = dict.fromkeys(names, 0)
    for name in names:
        op = ops[name]
        for _ in range(warmup):
            op(counters[name])
            counters[name] += 1
    per_run: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for run in range(runs):
        for name in rotated(names, run):
            op, start = ops[name], counters[name]
            timings = [0.0] * samples
            gc.collect()
            for i in range(samples):
                t0 = clock()
                op(start + i)
                timings[i] = (clock() - t0) / 1000.0
            counters[name] = start + samples
            record_run(per_run[name], timings)
    return latencies_of(per_run, samples, runs)


def rotated(names: list[str], run: int) -> list[str]:
    """The order of the ops in run ``run``: each run starts one op later."""
    return names[run % len(names) :] + names[: run % len(names)]


def record_run(results: list[tuple[float, float]], timings: list[float]) -> None:
    """Keep one run's p50 and p99 (``timings`` in µs, sorted here)."""
    timings.sort()
    results.append((percentile(timings, 0.50), percentile(timings, 0.99)))


def latencies_of(
    per_run: dict[str, list[tuple[float, float]]], samples: int, runs: int
) -> dict[str, Latency]:
    """The median of the runs' p50 and p99, per op."""
    return {
        name: Latency(
            p50=statistics.median(p50 for p50, _ in results),
            p99=statistics.median(p99 for _, p99 in results),
            samples=samples,
            runs=runs,
        )
        for name, results in per_run.items()
    }


@dataclass
class Throughput:
    """Median items per second over the runs (and every run's figure)."""

    per_second: float
    runs: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Work:
    """A timed batch job: ``run(i)`` returns how many items it handled in run ``i``;
    ``teardown(i)`` runs untimed after it."""

    run: Callable[[int], int]
    teardown: Callable[[int], None] | None = None


def measure_throughputs(works: dict[str, Work], *, runs: int) -> dict[str, Throughput]:
    """Median of ``items / seconds`` over ``runs`` for each work, alternating them run by run."""
    rates: dict[str, list[float]] = {name: [] for name in works}
    for run in range(runs):
        for name, work in works.items():
            gc.collect()
            t0 = time.perf_counter()
            items = work.run(run)
            elapsed = time.perf_counter() - t0
            if work.teardown is not None:
                work.teardown(run)
            rates[name].append(items / elapsed if elapsed > 0 else math.inf)
    return {name: Throughput(statistics.median(r), r) for name, r in rates.items()}


def per_call_micros(fn: Callable[[], object], *, number: int, repeat: int) -> float:
    """Median over ``repeat`` loops of the mean time of one call, in microseconds."""
    for _ in range(max(1, number // 10)):
        fn()
    means: list[float] = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        means.append((time.perf_counter_ns() - t0) / number / 1000.0)
    return statistics.median(means)


def interleaved_micros(
    fns: dict[str, Callable[[], object]], *, number: int, repeat: int
) -> dict[str, float]:
    """:func:`per_call_micros` of several functions, their loops interleaved (A B C, then
    B C A, ...) so that a drift of a shared machine shows in all of them."""
    names = list(fns)
    for fn in fns.values():
        for _ in range(max(1, number // 10)):
            fn()
    means: dict[str, list[float]] = {name: [] for name in names}
    for run in range(repeat):
        for name in names[run % len(names):] + names[: run % len(names)]:
            fn = fns[name]
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(number):
                fn()
            means[name].append((time.perf_counter_ns() - t0) / number / 1000.0)
    return {name: statistics.median(values) for name, values in means.items()}


# -- the table ----------------------------------------------------------------------------------


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{_number(value)} {unit}".strip()


def render_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table, then the notes of the rows that have one."""
    header = ("| # | figure | specstore | baseline | ratio | target | result |\n"
              "|---|---|---:|---:|---:|---|---|")
    lines = [header]
    notes: list[str] = []
    for row in rows:
        name = row.name
        if row.note:
            notes.append(row.note)
            name += f" [{len(notes)}]"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        baseline = (f"{_cell(row.baseline, row.unit)} ({row.baseline_name})"
                    if row.run else f"({row.baseline_name})")
        lines.append(
            f"| {row.figure} | {name} | {_cell(row.specstore, row.unit)} | {baseline} | "
            f"{ratio} | {row.target or '-'} | {row.result} |"
        )
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)
