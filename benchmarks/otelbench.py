"""Figure 8: what the OpenTelemetry instrumentation costs on save / get, side by side in one
run (ops interleaved run by run):

* a tracer and a meter provider configured (the SDK, every span sampled and handed to a span
  processor whose exporter drops it; metrics aggregated in memory) vs no provider;
* no provider (opentelemetry-api installed, nothing configured: the default) vs the extra
  absent (the same calls with specstore.observability.AVAILABLE off, which is the code path
  of an interpreter without opentelemetry-api).
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable, Sequence
from typing import Any

import redis

from benchmarks.harness import Op, Row, Target, measure_latencies, not_run
from benchmarks.latency import save_get_ops
from benchmarks.workload import Counts, keyspace
from specstore import observability
from specstore.store import SpecStore

NIL = Target("ratio", "<=", 0.01)
OVERHEAD = "instrumentation per call, no provider"
NAMES = [
    ("save latency p50, provider configured", "save, no provider"),
    ("get latency p50, provider configured", "get, no provider"),
    ("save latency p50, no provider", "save, without the otel extra"),
    ("get latency p50, no provider", "get, without the otel extra"),
]


def _sdk_telemetry() -> Any:
    """The telemetry of an SDK tracer and meter provider (None without the SDK)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return None

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    observability.configure(tracer_provider, meter_provider)
    telemetry = observability._state.configured
    observability.configure()
    return telemetry


def _with(setting: Callable[[], Any], restore: Callable[[], Any], op: Op) -> Op:
    def timed(i: int) -> object:
        setting()
        try:
            return op(i)
        finally:
            restore()

    return timed


def _overhead_us(repeat: int = 7, number: int = 20_000) -> float:
    """What an instrumented call costs over a plain one with no provider: the decorator of
    every store method around a function that does nothing (median of ``repeat``)."""

    def bare(store: object, i: int) -> int:
        return i

    wrapped = observability.operation("save")(bare)
    times = []
    for _ in range(repeat):
        plain = timeit.timeit(lambda: bare(None, 1), number=number)
        decorated = timeit.timeit(lambda: wrapped(None, 1), number=number)
        times.append(max(0.0, decorated - plain) / number * 1e6)
    return statistics.median(times)


def figure_8(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    telemetry = _sdk_telemetry()
    if telemetry is None or not observability.AVAILABLE:
        why = "Figure 8: needs opentelemetry-api and opentelemetry-sdk (the test extra)."
        return [not_run(8, name, "us", base, why if i == 0 else "")
                for i, (name, base) in enumerate(NAMES)] + [
                    not_run(8, OVERHEAD, "us", "save p50, without the otel extra", "", NIL)]
    store = SpecStore(client, keyspace=keyspace(prefix, "otel"))
    plain = save_get_ops(store, prefix, counts.key_pool)
    state = observability._state

    def on() -> None:
        state.configured = telemetry

    def off() -> None:
        state.configured = None

    def absent() -> None:
        observability.AVAILABLE = False

    def present() -> None:
        observability.AVAILABLE = True

    ops: dict[str, Op] = {}
    for name in ("save", "get"):
        op = plain[f"ss_{name}"]
        ops[f"{name}_absent"] = _with(absent, present, op)
        ops[f"{name}_plain"] = _with(off, off, op)  # the same two assignments, nothing else
        ops[f"{name}_otel"] = _with(on, off, op)
    results = measure_latencies(ops, samples=counts.latency_samples, runs=counts.latency_runs,
                                warmup=counts.latency_warmup)
    note = (f"Figure 8: {counts.latency_runs} runs x {counts.latency_samples} calls per op, "
            "interleaved; configured = SDK TracerProvider (always sampled, SimpleSpanProcessor, "
            "exporter that drops) + MeterProvider (in-memory reader); no provider = the API's "
            "default proxies; without the extra = observability.AVAILABLE off (the path taken "
            "when opentelemetry-api is not installed).")
    pairs = [("save_otel", "save_plain"), ("get_otel", "get_plain"),
             ("save_plain", "save_absent"), ("get_plain", "get_absent")]
    rows = []
    for i, ((name, base), (ours, theirs)) in enumerate(zip(NAMES, pairs, strict=True)):
        rows.append(Row(8, name, "us", results[ours].p50, results[theirs].p50, base,
                        note=note if i == 0 else ""))
    rows.append(Row(8, OVERHEAD, "us", _overhead_us(), results["save_absent"].p50,
                    "save p50, without the otel extra", NIL,
                    note="The decorator's own cost with no provider (a decorated no-op minus a "
                    "plain one, timeit median), as a share of a save: the p50 rows above differ "
                    "by run-to-run noise at this size."))
    return rows
