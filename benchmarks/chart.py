"""Draw the benchmark rows as one PNG: latency, throughput and codec time, specstore next to
its baselines measured in the same run (matplotlib, from the ``bench`` extra)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Row

SERIES = ("specstore", "hand-rolled (pydantic JSON)", "raw redis-py", "redis-om JsonModel")
COLORS = ("#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c")

Panel = dict[str, dict[str, float]]
"""Group label -> series name -> value."""


def _find(rows: Sequence[Row], figure: int, name: str) -> Row | None:
    for row in rows:
        if row.figure == figure and row.name.startswith(name) and row.run:
            return row
    return None


def _put(panel: Panel, group: str, rows: Sequence[Row], figure: int, name: str,
         baseline: str) -> None:
    row = _find(rows, figure, name)
    if row is None or row.specstore is None or row.baseline is None:
        return
    values = panel.setdefault(group, {})
    values.setdefault("specstore", row.specstore)  # the first figure's own measurement
    values[baseline] = row.baseline


def panels(rows: Sequence[Row]) -> tuple[Panel, Panel, Panel]:
    """(latency p50 in us, throughput in specs/s, codec time in us) from the rows."""
    hand, raw, om = SERIES[1], SERIES[2], SERIES[3]
    latency: Panel = {}
    for op in ("save", "get", "promote"):
        _put(latency, op, rows, 1, f"{op} latency p50", raw)
        _put(latency, op, rows, 2, f"{op} latency p50", hand)
        _put(latency, op, rows, 7, f"{op} latency p50 vs redis-om", om)
    throughput: Panel = {}
    _put(throughput, "batch save", rows, 3, "batch save throughput", raw)
    _put(throughput, "batch save", rows, 3, "batch save throughput vs hand-rolled", hand)
    _put(throughput, "batch get", rows, 3, "batch get throughput", raw)
    _put(throughput, "batch get", rows, 3, "batch get throughput vs hand-rolled", hand)
    _put(throughput, "export msgpack", rows, 4, "export throughput, msgpack", raw)
    _put(throughput, "export jsonl", rows, 4, "export throughput, jsonl (", raw)
    _put(throughput, "export jsonl", rows, 4, "export throughput, jsonl vs hand-rolled", hand)
    _put(throughput, "import jsonl", rows, 4, "import throughput (", raw)
    _put(throughput, "import jsonl", rows, 4, "import throughput vs hand-rolled", hand)
    codec: Panel = {}
    _put(codec, "encode", rows, 5, "encode per spec", hand)
    _put(codec, "decode", rows, 5, "decode per spec", hand)
    return latency, throughput, codec


def draw(rows: Sequence[Row], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, throughput, codec = panels(rows)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [3, 5, 2]})
    specs = (
        (axes[0], latency, "single-spec latency p50 (us, log; lower is better)", True),
        (axes[1], throughput, "throughput (specs/s; higher is better)", False),
        (axes[2], codec, "encode / decode (us per spec)", False),
    )
    for ax, panel, label, log in specs:
        groups = list(panel)
        present = [s for s in SERIES if any(s in panel[g] for g in groups)]
        width = 0.8 / max(1, len(present))
        for k, series in enumerate(present):
            xs = [i + (k - (len(present) - 1) / 2) * width for i, g in enumerate(groups)
                  if series in panel[g]]
            ys = [panel[g][series] for g in groups if series in panel[g]]
            name = "pydantic JSON" if panel is codec and series == SERIES[1] else series
            bars = ax.bar(xs, ys, width, label=name, color=COLORS[SERIES.index(series)])
            ax.bar_label(bars, fmt="%.0f", fontsize=7, rotation=90, padding=2)
        ax.set_xticks(range(len(groups)), groups, fontsize=9)
        ax.set_title(label, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.margins(y=0.3)
        ax.legend(fontsize=7, loc="upper center", ncols=2, framealpha=0.9)
    fig.suptitle("specstore vs the hand-rolled pattern, raw redis-py and redis-om, one run, "
                 "one server", fontsize=11)
    fig.text(0.5, 0.005, title, ha="center", fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def rows_from_json(path: Path) -> tuple[list[Row], str]:
    """The rows (and a one-line header) of a ``benchmarks.run --json`` file."""
    data = json.loads(path.read_text())
    rows = [Row(r["figure"], r["name"], r["unit"], r["specstore"], r["baseline"],
                r["baseline_name"], run=r["result"] != "not run") for r in data["rows"]]
    env = data["environment"]
    header = (f"at {env['git_head']}, Python {env['python']}, redis-server {env['redis_server']}, "
              f"redis-py {env['redis_py']}, {env['cpus']} CPUs, load average "
              f"{env['load_average_at_start'][0]:.1f} -> {env['load_average_at_end'][0]:.1f}")
    return rows, header


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw a benchmarks.run --json file.")
    parser.add_argument("json_file", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    rows, header = rows_from_json(args.json_file)
    draw(rows, args.out, header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
