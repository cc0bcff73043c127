"""Traces, metrics and logs, recorded by the OpenTelemetry SDK's in-memory exporters on real,
password-protected redis-servers: the spans of boot -> promote -> resize on one backend and
on two, their shape, attributes and outcomes; conflicts and misses; no password and no
document in any span or log record."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from specstore import RequestContext, SpecStore, observability
from specstore.connection import connect
from specstore.core.keys import API, Keyspace
from specstore.errors import ConflictError, SpecNotFoundError
from specstore.moves import operations as move_ops
from specstore.topology import Backend, Topology
from tests.factories import flavor, typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-Pa55word-never-logged"
BIG = flavor("m1.xlarge", 16384, 8)


class CrashError(Exception):
    pass


@pytest.fixture(scope="module")
def servers() -> Iterator[list[RedisServer]]:
    started = [start_server(), start_server()]
    for server in started:
        client = server.client()
        client.config_set("requirepass", PASSWORD)
        client.close()
    yield started
    for server in started:
        server.discard()


def url(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


@pytest.fixture
def telemetry() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    observability.configure(tracer_provider, MeterProvider(metric_readers=[reader]))
    yield exporter, reader
    observability.configure()


def make_store(servers: list[RedisServer], layout: str, **options: Any) -> SpecStore:
    clients = [connect(url(s)) for s in servers]
    for client in clients:
        client.flushall()
    api = Backend(API, clients[0], Keyspace())
    cells = {} if layout == "one" else {"cell2": Backend("cell2", clients[1], Keyspace())}
    return SpecStore(Topology(api, cells), **options)


def spans_named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[str]:
    assert parent.context is not None
    return [
        s.name
        for s in sorted(spans, key=lambda s: s.start_time or 0)
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def total(reader: InMemoryMetricReader, name: str) -> float:
    return float(sum(p.value for p in points(reader).get(name, [])))


def assert_nothing_secret(
    spans: list[ReadableSpan], records: list[logging.LogRecord], documents: list[bytes]
) -> None:
    texts = []
    for span in spans:
        for value in [*(span.attributes or {}).values(), span.name]:
            assert not isinstance(value, bytes), (span.name, value)
            texts.append(str(value))
        for event in span.events:
            texts.extend(str(v) for v in (event.attributes or {}).values())
    texts.extend(record.getMessage() for record in records)
    blob = "\n".join(texts)
    assert PASSWORD not in blob
    for doc in documents:
        assert doc.hex() not in blob and repr(doc) not in blob
    assert "m1.xlarge" not in blob and "az1" not in blob  # document contents


def assert_created_in_the_api_store(spans: list[ReadableSpan], port: int) -> None:
    creates = spans_named(spans, "specstore.create")
    assert len(creates) == 2
    for span in creates:
        attributes = span.attributes or {}
        assert attributes["db.system"] == "redis"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == port
        assert attributes["specstore.store"] == API and attributes["specstore.backend"] == API
        assert attributes["specstore.outcome"] == "ok" and attributes["specstore.rev"] == 1
        assert "specstore.instance_uuid" not in attributes  # not opted in


@pytest.mark.parametrize("layout", ["one", "two"])
def test_spans_of_boot_promote_resize(
    servers: list[RedisServer],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
    layout: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter, reader = telemetry
    caplog.set_level(logging.DEBUG, logger="specstore")
    store = make_store(servers, layout)
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    first, second = typical_spec(), typical_spec()
    first.instance_uuid, second.instance_uuid = uuid.uuid4(), uuid.uuid4()
    store.create(ctx, first)
    store.create(ctx, second)
    store.promote(ctx, first.instance_uuid, "cell1")  # always on the api backend
    store.promote(ctx, second.instance_uuid, "cell2")  # its own backend with layout "two"
    cell1 = ctx.target_cell("cell1")
    move_ops.resize(store, cell1, first.instance_uuid, BIG, source_host="cmp-1")
    store.move_to_cell(cell1, first.instance_uuid, "cell2")
    store.resume_moves()
    cell2 = store.backend("cell2")
    documents = [
        cast(bytes, cell2.client.hget(cell2.keys.spec_key("cell2", str(u)), "doc"))
        for u in (first.instance_uuid, second.instance_uuid)
    ]
    assert all(isinstance(doc, bytes) and doc for doc in documents)
    store.close()
    spans = list(exporter.get_finished_spans())

    assert_created_in_the_api_store(spans, servers[0].port)

    promotes = spans_named(spans, "specstore.promote")
    assert [(s.attributes or {})["specstore.store"] for s in promotes] == ["cell1", "cell2"]
    assert all((s.attributes or {})["specstore.outcome"] == "ok" for s in promotes)
    assert children(spans, promotes[0]) == []  # one script on one backend
    moves = spans_named(spans, "specstore.move_to_cell")
    assert len(moves) == 1
    if layout == "one":
        assert children(spans, promotes[1]) == [] and children(spans, moves[0]) == []
    else:
        steps = ["specstore.move.begin", "specstore.move.adopt", "specstore.move.commit"]
        assert children(spans, promotes[1]) == steps
        assert children(spans, moves[0]) == steps
        adopt = next(s for s in spans if s.name == "specstore.move.adopt")
        assert (adopt.attributes or {})["server.port"] == servers[1].port
        assert (adopt.attributes or {})["specstore.backend"] == "cell2"
        promote_attributes = promotes[1].attributes or {}
        assert promote_attributes["server.port"] == servers[1].port
    resize = spans_named(spans, "specstore.save")
    assert resize and (resize[-1].attributes or {})["specstore.store"] == "cell1"
    assert spans_named(spans, "specstore.resume_moves")

    metrics = points(reader)
    operations = {
        (p.attributes["specstore.operation"], p.attributes["specstore.outcome"]): p.count
        for p in metrics["specstore.operation.duration"]
    }
    assert operations[("create", "ok")] == 2 and operations[("promote", "ok")] == 2
    assert total(reader, "specstore.moves.started") == 3
    assert total(reader, "specstore.moves.finished") == 3
    assert_nothing_secret(spans, caplog.records, documents)


def test_a_conflict_and_a_miss_are_recorded_as_such(
    servers: list[RedisServer], telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    exporter, reader = telemetry
    store = make_store(servers, "two")
    ctx = RequestContext(store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    store.save(ctx, spec, rev=1)
    with pytest.raises(ConflictError):
        store.save(ctx, spec, rev=1)
    with pytest.raises(SpecNotFoundError):
        store.get(ctx, uuid.uuid4())
    store.close()
    spans = list(exporter.get_finished_spans())
    saves = spans_named(spans, "specstore.save")
    assert [(s.attributes or {})["specstore.outcome"] for s in saves] == ["ok", "conflict"]
    assert (saves[1].attributes or {})["specstore.expected_rev"] == 1
    assert (saves[0].attributes or {})["specstore.rev"] == 2
    (get,) = spans_named(spans, "specstore.get")
    assert (get.attributes or {})["specstore.outcome"] == "not_found"
    assert total(reader, "specstore.cas.conflicts") == 1
    assert_nothing_secret(spans, [], [])


def test_instance_uuids_only_when_opted_in(servers: list[RedisServer]) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.configure(tracer_provider, record_instance_uuids=True)
    try:
        store = make_store(servers, "one")
        spec = typical_spec()
        store.create(RequestContext(store=store), spec)
        store.close()
    finally:
        observability.configure()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["specstore.instance_uuid"] == str(spec.instance_uuid)


def test_a_move_settled_by_resume_is_logged_and_counted(
    servers: list[RedisServer],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter, reader = telemetry

    def crash_after_begin(step: str, uid: str) -> None:
        if step == "begin":
            raise CrashError(step)

    crashing = make_store(servers, "two", move_lease_seconds=0.001, on_move_step=crash_after_begin)
    ctx = RequestContext(store=crashing)
    spec = typical_spec()
    crashing.create(ctx, spec)
    with pytest.raises(CrashError):
        crashing.promote(ctx, spec.instance_uuid, "cell2")
    time.sleep(0.01)
    caplog.set_level(logging.WARNING, logger="specstore")
    assert crashing.resume_moves() == {str(spec.instance_uuid): "rolled_back"}
    crashing.close()
    spans = list(exporter.get_finished_spans())
    (promote,) = spans_named(spans, "specstore.promote")
    assert (promote.attributes or {})["specstore.outcome"] == "error"
    (resume,) = spans_named(spans, "specstore.resume_moves")
    assert "specstore.move.settle" in children(spans, resume)
    assert total(reader, "specstore.moves.rolled_back") == 1
    assert total(reader, "specstore.moves.started") == 1
    assert total(reader, "specstore.moves.finished") == 0
    assert total(reader, "specstore.moves.pending") == 0
    (warning,) = [r for r in caplog.records if r.name == "specstore"]
    assert warning.levelno == logging.WARNING and "rolled_back" in warning.getMessage()
    assert_nothing_secret(spans, caplog.records, [])


def test_nothing_configured_records_nothing(real_store: SpecStore) -> None:
    observability.configure()
    assert observability._active() is None  # the global providers are the API's no-ops
    with observability.observe("save") as record:
        assert record is None
    spec = typical_spec()
    assert real_store.create(RequestContext(store=real_store), spec) == 1


def test_json_log_lines_hold_no_secret() -> None:
    from specstore.cli import JsonFormatter

    record = logging.LogRecord("specstore", logging.WARNING, __file__, 1, "m %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["logger"] == "specstore" and line["message"] == "m x"


def test_without_the_otel_extra_everything_works(tmp_path: Any) -> None:
    script = tmp_path / "absent.py"
    script.write_text(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if opentelemetry-api were not installed\n"
        "from specstore import RequestContext, SpecStore, observability\n"
        "from specstore.samples import typical_spec\n"
        "assert not observability.AVAILABLE\n"
        "store = SpecStore.from_url('memory://')\n"
        "ctx = RequestContext(store=store)\n"
        "spec = typical_spec()\n"
        "assert store.create(ctx, spec) == 1\n"
        "assert store.get(ctx, spec.instance_uuid).rev == 1\n"
        "store.promote(ctx, spec.instance_uuid, 'cell1')\n"
        "assert store.resume_moves() == {}\n"
        "try:\n"
        "    observability.configure(object())\n"
        "except RuntimeError as exc:\n"
        "    assert 'specstore[otel]' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('configure without the extra')\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_export_import_migrate_repair_batches(
    servers: list[RedisServer], telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    import io

    from specstore import bulk

    exporter, reader = telemetry
    store = make_store(servers, "two")
    ctx = RequestContext(store=store)
    specs = [typical_spec() for _ in range(5)]
    for spec in specs:
        spec.instance_uuid = uuid.uuid4()
    store.create_many(ctx, specs)
    out = io.BytesIO()
    assert bulk.export_specs(store, out, batch=2).exported == 5
    for client in (store.topology.api.client, store.topology.cells["cell2"].client):
        client.flushall()
    data = out.getvalue()
    summary = bulk.import_specs(store, lambda: io.BytesIO(data), "jsonl", batch=3)
    assert summary.created == 5
    bulk.migrate_documents(store, batch=10)
    bulk.repair(store, batch=10)
    store.close()
    spans = list(exporter.get_finished_spans())
    (create_many,) = spans_named(spans, "specstore.create_many")
    assert (create_many.attributes or {})["specstore.batch_size"] == 5
    exports = spans_named(spans, "specstore.export.batch")
    assert sum(cast(int, (s.attributes or {})["specstore.batch_size"]) for s in exports) == 5
    imports = spans_named(spans, "specstore.import.batch")
    assert [(s.attributes or {})["specstore.batch_size"] for s in imports] == [3, 2]
    assert spans_named(spans, "specstore.migrate.batch")
    assert spans_named(spans, "specstore.repair.batch")
    assert total(reader, "specstore.export.records") == 5
    assert total(reader, "specstore.import.records") == 5
    assert_nothing_secret(spans, [], [])


def test_corrupt_documents_are_counted_once(
    servers: list[RedisServer], telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    from specstore.errors import CorruptDocumentError

    exporter, reader = telemetry
    store = make_store(servers, "one")
    ctx = RequestContext(store=store)
    uid = str(uuid.uuid4())
    store.client.set(store.keys.spec_key(API, uid), "not a spec hash")
    with pytest.raises(CorruptDocumentError):
        store.get(ctx, uid)
    assert list(store.get_many(ctx, [uid]).corrupt) == [uid]
    store.close()
    (get,) = spans_named(list(exporter.get_finished_spans()), "specstore.get")
    assert (get.attributes or {})["specstore.outcome"] == "error"
    assert (get.attributes or {})["error.type"] == "CorruptDocumentError"
    assert total(reader, "specstore.documents.corrupt") == 2


def test_an_interrupt_inside_a_move_leaves_no_span_current(
    servers: list[RedisServer],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KeyboardInterrupt raised by a Redis call in the middle of a two-phase promote
    (found by review): the operation's and the step's spans end, and none stays current for
    the calls after it (their spans would be children of an ended one)."""
    from opentelemetry import trace

    from specstore.drivers import sync

    exporter, _ = telemetry
    store = make_store(servers, "two")
    ctx = RequestContext(store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    real = sync.execute
    calls: list[object] = []

    def interrupted(request: Any) -> Any:
        calls.append(request)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(request)

    monkeypatch.setattr(sync, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.promote(ctx, spec.instance_uuid, "cell2")
    monkeypatch.undo()
    assert trace.get_current_span() is trace.INVALID_SPAN
    ended = {s.name for s in exporter.get_finished_spans()}
    assert {"specstore.promote", "specstore.move.begin"} <= ended
