"""Traces, metrics and logs of what the store does (OpenTelemetry, optional).

With ``opentelemetry-api`` absent (``pip install specstore[otel]`` brings it), or with no tracer
or meter provider configured, every instrumented call goes straight to the function: no span,
no attribute, no clock read. Providers are the global ones (``trace.set_tracer_provider``,
``metrics.set_meter_provider``) or those given to :func:`configure`.

What is recorded: one span per store operation (``specstore.save``, ``specstore.promote``, ...),
one per step of a move between backends (``specstore.move.begin``, ``.freeze``, ``.adopt``,
``.commit``, ``.release``, ``.settle``, ``.seize``) as children of the operation's span, one per
export/import/migrate/repair batch; the metrics of :data:`METRICS`. Attributes follow the
OpenTelemetry database conventions (``db.system``, ``server.address``, ``server.port``) plus
``specstore.*``. Never a password (only host and port are read from a connection), never a
document; instance uuids only with ``configure(record_instance_uuids=True)`` or
``SPECSTORE_TRACE_INSTANCE_UUIDS=1``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from specstore.context import RequestContext
from specstore.core.keys import API
from specstore.core.records import StoredSpec
from specstore.core.results import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.errors import (
    ConflictError,
    CorruptDocumentError,
    MoveInProgressError,
    SpecExistsError,
    SpecNotFoundError,
    WrongStoreError,
)
from specstore.version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.metrics import NoOpMeterProvider, Observation
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Status, StatusCode

    try:
        from opentelemetry.metrics import _internal as _meters_module
        from opentelemetry.metrics._internal import _ProxyMeterProvider

        _IDLE_METERS: tuple[type, ...] = (NoOpMeterProvider, _ProxyMeterProvider)
    except ImportError:  # pragma: no cover - a future API moved it
        _IDLE_METERS = (NoOpMeterProvider,)
    _IDLE_TRACERS: tuple[type, ...] = (NoOpTracerProvider, ProxyTracerProvider)
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised without the otel extra
    AVAILABLE = False

logger = logging.getLogger("specstore")
logger.addHandler(logging.NullHandler())

P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")
S = TypeVar("S")

UUIDS_ENV = "SPECSTORE_TRACE_INSTANCE_UUIDS"
INSTRUMENTATION = "specstore"

METRICS = {
    "specstore.operation.duration": "histogram (s): each operation, by specstore.operation "
    "and specstore.outcome",
    "specstore.cas.conflicts": "counter: compare-and-set writes refused (ConflictError)",
    "specstore.documents.corrupt": "counter: corrupt documents met by reads, exports, migrate",
    "specstore.moves.started": "counter: moves begun",
    "specstore.moves.finished": "counter: moves finished (by their mover or by resume/repair)",
    "specstore.moves.rolled_back": "counter: moves given up and rolled back",
    "specstore.moves.pending": "gauge: moves the last resume_moves had to leave open",
    "specstore.export.records": "counter: records exported",
    "specstore.import.records": "counter: records imported, by specstore.outcome",
}


def outcome_of(exc: BaseException | None) -> str:
    """ok / conflict / not_found / wrong_store / moving / error."""
    if exc is None:
        return "ok"
    if isinstance(exc, ConflictError | SpecExistsError):
        return "conflict"
    if isinstance(exc, SpecNotFoundError):
        return "not_found"
    if isinstance(exc, WrongStoreError):
        return "wrong_store"
    if isinstance(exc, MoveInProgressError):
        return "moving"
    return "error"


class _Telemetry:
    """A tracer and the instruments, from one pair of providers."""

    def __init__(
        self, tracer_provider: TracerProvider, meter_provider: MeterProvider, uuids: bool
    ) -> None:
        self.tracing = not isinstance(tracer_provider, _IDLE_TRACERS)
        self.tracer = tracer_provider.get_tracer(INSTRUMENTATION, __version__)
        meter = meter_provider.get_meter(INSTRUMENTATION, __version__)
        self.uuids = uuids
        self.duration = meter.create_histogram(
            "specstore.operation.duration", unit="s", description="Store operation duration"
        )
        self.conflicts = meter.create_counter("specstore.cas.conflicts", unit="{write}")
        self.corrupt = meter.create_counter("specstore.documents.corrupt", unit="{document}")
        self.started = meter.create_counter("specstore.moves.started", unit="{move}")
        self.finished = meter.create_counter("specstore.moves.finished", unit="{move}")
        self.rolled_back = meter.create_counter("specstore.moves.rolled_back", unit="{move}")
        self.exported = meter.create_counter("specstore.export.records", unit="{record}")
        self.imported = meter.create_counter("specstore.import.records", unit="{record}")
        self.pending: int | None = None
        meter.create_observable_gauge(
            "specstore.moves.pending", callbacks=[self._observe_pending], unit="{move}"
        )

    def _observe_pending(self, _options: Any) -> Iterator[Observation]:
        if self.pending is not None:
            yield Observation(self.pending)


class _State:
    configured: _Telemetry | None = None
    """From :func:`configure`: used instead of the global providers."""
    cached: tuple[object, object, _Telemetry] | None = None
    """For the global providers, made once per pair."""


_state = _State()


def configure(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    *,
    record_instance_uuids: bool | None = None,
) -> None:
    """Use these providers (instead of the global ones) from now on; ``configure()`` with
    nothing goes back to the global ones. ``record_instance_uuids`` puts the instance uuid
    on spans (``specstore.instance_uuid``); off unless set here or in the environment."""
    _state.cached = None
    if not AVAILABLE:
        raise RuntimeError("tracing needs opentelemetry-api: pip install 'specstore[otel]'")
    uuids = _uuids_wanted() if record_instance_uuids is None else record_instance_uuids
    if tracer_provider is None and meter_provider is None:
        _state.configured = None
        if record_instance_uuids is not None:
            os.environ[UUIDS_ENV] = "1" if uuids else ""
        return
    _state.configured = _Telemetry(
        tracer_provider or NoOpTracerProvider(), meter_provider or NoOpMeterProvider(), uuids
    )


def _uuids_wanted() -> bool:
    return os.environ.get(UUIDS_ENV, "").lower() in {"1", "true", "yes", "on"}


def _active() -> _Telemetry | None:
    """The telemetry to record into, or None (nothing configured: record nothing)."""
    if _state.configured is not None:
        return _state.configured
    if not AVAILABLE:
        return None
    if (
        not _PROVIDERS_IN_ENVIRONMENT
        and getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN) is None
        and getattr(_meters_module, "_METER_PROVIDER", _UNKNOWN) is None
    ):
        # The fast path: no global provider was ever set, so the API hands out its no-op
        # proxies (get_tracer_provider() reads the same global, plus the environment).
        return None
    tracer_provider = _trace.get_tracer_provider()
    meter_provider = _metrics.get_meter_provider()
    if isinstance(tracer_provider, _IDLE_TRACERS) and isinstance(meter_provider, _IDLE_METERS):
        return None
    cached = _state.cached
    if cached is None or cached[0] is not tracer_provider or cached[1] is not meter_provider:
        cached = (
            tracer_provider,
            meter_provider,
            _Telemetry(tracer_provider, meter_provider, _uuids_wanted()),
        )
        _state.cached = cached
    return cached[2]


_UNKNOWN = object()
_PROVIDERS_IN_ENVIRONMENT = any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)
"""Providers named in the environment (read once): the API loads them on first use."""


# -- one operation --------------------------------------------------------------------------


@dataclass
class Record:
    """What an operation learns while it runs; read when its span ends."""

    telemetry: _Telemetry
    span: Span | None
    attributes: dict[str, Any] = field(default_factory=dict)
    began_move: bool = False

    def set(self, name: str, value: Any) -> None:
        """An attribute, put on the span when it ends (all at once: cheaper)."""
        if value is not None:
            self.attributes[name] = value

    def server(self, client: Any) -> None:
        """server.address / server.port of a redis-py client (never its password)."""
        for name, value in server_of(client).items():
            self.set(name, value)

    def instance(self, uid: Any) -> None:
        if self.telemetry.uuids and uid is not None:
            self.set("specstore.instance_uuid", str(uid))


_current: ContextVar[Record | None] = ContextVar("specstore_observation", default=None)


def server_of(client: Any) -> dict[str, Any]:
    """Host and port (or socket path) of a client; nothing else of its connection."""
    kwargs: Mapping[str, Any] = {}
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        kwargs = getattr(pool, "connection_kwargs", {}) or {}
    elif hasattr(client, "get_default_node"):  # a cluster client
        try:
            node = client.get_default_node()
            kwargs = {"host": node.host, "port": node.port}
        except Exception:  # pragma: no cover - best effort
            kwargs = {}
    found: dict[str, Any] = {}
    host, port, path = kwargs.get("host"), kwargs.get("port"), kwargs.get("path")
    if isinstance(host, str):
        found["server.address"] = host
    elif isinstance(path, str):
        found["server.address"] = path
    if isinstance(port, int) and isinstance(host, str):
        found["server.port"] = port
    return found


@contextmanager
def observe(operation: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Record | None]:
    """A span (and a duration sample) around a block; yields None when nothing records."""
    telemetry = _active()
    if telemetry is None:
        yield None
        return
    with _span(telemetry, operation, attributes or {}) as record:
        yield record


@contextmanager
def _span(telemetry: _Telemetry, operation: str, attributes: Mapping[str, Any]) -> Iterator[Record]:
    start = time.perf_counter()
    name = f"specstore.{operation}"
    base = {"db.system": "redis", "specstore.operation": operation, **attributes}
    with telemetry.tracer.start_as_current_span(
        name, attributes=base, record_exception=False, set_status_on_exception=False
    ) as span:
        record = Record(telemetry, span if span.is_recording() else None)
        token = _current.set(record)
        error: BaseException | None = None
        try:
            yield record
        except BaseException as exc:
            error = exc
            raise
        finally:
            _current.reset(token)
            outcome = outcome_of(error)
            record.set("specstore.outcome", outcome)
            if error is not None and outcome == "error":
                record.set("error.type", type(error).__name__)
                if record.span is not None:
                    record.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            if record.span is not None:
                record.span.set_attributes(record.attributes)
            if error is not None and record.began_move:
                telemetry.started.add(1)  # begun, not finished: resume/repair settle it
            if isinstance(error, ConflictError | CorruptDocumentError) and _first_sight(error):
                counter = (
                    telemetry.conflicts if isinstance(error, ConflictError) else telemetry.corrupt
                )
                counter.add(1, {"specstore.operation": operation})
            telemetry.duration.record(
                time.perf_counter() - start,
                {"specstore.operation": operation, "specstore.outcome": outcome},
            )


def _first_sight(error: BaseException) -> bool:
    """True the first time a span ends with this exception (nested spans count it once)."""
    if getattr(error, "_specstore_counted", False):
        return False
    with suppress(AttributeError):  # an exception type with __slots__: counted again
        error._specstore_counted = True  # type: ignore[attr-defined]
    return True


def current() -> Record | None:
    """The record of the innermost operation running, if something records."""
    return _current.get()


# -- store operations -----------------------------------------------------------------------


def operation(
    name: str, *, after: Callable[[Any], None] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a :class:`~specstore.store.SpecStore` method: a span named ``specstore.NAME``
    with the store, its backend's address, the rev or batch size, and the outcome.
    ``after(result)`` runs whether or not anything records (logging)."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(method):
            return cast(Callable[P, R], _async_operation(name, after, method))

        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            telemetry = _active()
            if telemetry is None:
                result = method(*args, **kwargs)
            else:
                with _operation_span(telemetry, name, args, kwargs) as described:
                    result = described(method(*args, **kwargs))
            if after is not None:
                after(result)
            return result

        return wrapper

    return decorate


def _async_operation(
    name: str,
    after: Callable[[Any], None] | None,
    method: Callable[P, Coroutine[Any, Any, Any]],
) -> Any:
    """:func:`operation` for an ``async def`` method (of the asyncio store)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        telemetry = _active()
        if telemetry is None:
            result = await method(*args, **kwargs)
        else:
            with _operation_span(telemetry, name, args, kwargs) as described:
                result = described(await method(*args, **kwargs))
        if after is not None:
            after(result)
        return result

    return wrapper


@contextmanager
def _operation_span(
    telemetry: _Telemetry, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Iterator[Callable[[R], R]]:
    """The span of one store operation; yields what records (and passes on) its result."""
    with _span(telemetry, name, {}) as record:
        _describe_call(record, name, args, kwargs)

        def described(result: R) -> R:
            _describe_result(record, name, result)
            return result

        yield described


def _describe_call(
    record: Record, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    store, rest = args[0], list(args[1:])
    target: str | None = None
    if rest and isinstance(rest[0], RequestContext):
        target = rest.pop(0).store_name
    if name in {"promote", "move_to_cell"} and len(rest) >= 2:
        record.set("specstore.source", target)
        target = rest[1]
    if name in {"get", "destroy", "locate", "promote", "move_to_cell"} and rest:
        record.instance(rest[0])
    elif name in {"save", "create"} and rest:
        record.instance(getattr(rest[0], "instance_uuid", None))
    if name in {"create_many", "get_many"} and rest and isinstance(rest[0], Sequence):
        record.set("specstore.batch_size", len(rest[0]))
    rev = kwargs.get("rev", rest[1] if name in {"save", "destroy"} and len(rest) > 1 else None)
    if isinstance(rev, int):
        record.set("specstore.expected_rev", rev)
    target = target or API
    record.set("specstore.store", target)
    try:
        backend = store.backend(target)
    except Exception:  # an unknown store: the call itself says so
        return
    record.set("specstore.backend", backend.name)
    record.server(backend.client)


def _describe_result(record: Record, name: str, result: Any) -> None:
    telemetry = record.telemetry
    if isinstance(result, int) and not isinstance(result, bool):
        record.set("specstore.rev", result)
    elif isinstance(result, StoredSpec):
        record.set("specstore.rev", result.rev)
    elif isinstance(result, Promotion):
        record.set("specstore.rev", result.rev)
        record.set("specstore.moved", result.moved)
        if result.moved:
            telemetry.started.add(1)
            telemetry.finished.add(1)
    elif isinstance(result, BatchRead):
        if result.corrupt:
            telemetry.corrupt.add(len(result.corrupt), {"specstore.operation": name})
    elif isinstance(result, BatchCreate | BatchDestroy):
        if isinstance(result, BatchDestroy):
            size = len(result.destroyed) + len(result.missing) + len(result.elsewhere)
            record.set("specstore.batch_size", size + len(result.moving) + len(result.failed))
    elif isinstance(result, str) and name == "locate":
        record.set("specstore.located", result)
    elif isinstance(result, dict) and name == "resume_moves":
        telemetry.pending = sum(1 for o in result.values() if o in {"unreachable", "corrupt"})
        record.set("specstore.batch_size", len(result))


def log_settled(outcomes: Mapping[str, str]) -> None:
    """What resume_moves settled: one warning each (an operator must know)."""
    for uid, outcome in sorted(outcomes.items()):
        if outcome in {"unreachable", "corrupt"}:
            logger.warning("move of instance %s left open by resume_moves: %s", uid, outcome)
        else:
            logger.warning("move of instance %s settled by resume_moves: %s", uid, outcome)


# -- the steps of a move between backends ---------------------------------------------------


def step(
    name: str,
) -> Callable[[Callable[P, Generator[Y, S, R]]], Callable[P, Generator[Y, S, R]]]:
    """Decorate a two-phase step ``f(route, ...)`` (a generator of :mod:`specstore.core.calls`,
    run by a driver): a child span ``specstore.move.NAME`` around its calls."""

    def decorate(function: Callable[P, Generator[Y, S, R]]) -> Callable[P, Generator[Y, S, R]]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Y, S, R]:
            if _active() is None:
                return function(*args, **kwargs)
            return _traced_step(name, function(*args, **kwargs), args[0])

        return wrapper

    return decorate


def _traced_step(name: str, steps: Generator[Y, S, R], route: Any) -> Generator[Y, S, R]:
    with move_step(name, route) as record:
        result = yield from steps
        if record is not None and isinstance(result, str):
            record.set("specstore.settled", result)
            _count_settled(record.telemetry, result)
        return result


@contextmanager
def move_step(name: str, route: Any) -> Iterator[Record | None]:
    """A span for one step of the move of ``route`` (a :class:`two_phase.Route`)."""
    telemetry = _active()
    if telemetry is None:
        yield None
        return
    parent = current()
    attributes = {"specstore.store": route.cell, "specstore.source": route.source or None}
    with _span(telemetry, f"move.{name}", {k: v for k, v in attributes.items() if v}) as record:
        backend = route.api
        if name in {"adopt", "fence"}:
            backend = route.cell_backend
        elif name in {"freeze", "release"}:
            backend = route.source_backend or route.api
        record.set("specstore.backend", backend.name)
        record.server(backend.client)
        record.instance(route.uid)
        yield record
    if name == "begin" and parent is not None:
        parent.began_move = True  # counted as started when the operation ends moved or failed


def _count_settled(telemetry: _Telemetry, outcome: str) -> None:
    if outcome == "finished":
        telemetry.finished.add(1)
    elif outcome == "rolled_back":
        telemetry.rolled_back.add(1)


# -- batches of export, import, migrate, repair ---------------------------------------------


@contextmanager
def batch(name: str, size: int, backend: Any = None) -> Iterator[Record | None]:
    """A span ``specstore.NAME.batch`` for one batch of a bulk operation."""
    telemetry = _active()
    if telemetry is None:
        yield None
        return
    with _span(telemetry, f"{name}.batch", {"specstore.batch_size": size}) as record:
        if backend is not None:
            record.set("specstore.backend", backend.name)
            record.server(backend.client)
        yield record


def count_records(name: str, count: int, outcome: str = "ok") -> None:
    """Records exported or imported (a no-op when nothing records)."""
    telemetry = _active()
    if telemetry is None or count <= 0:
        return
    counter = telemetry.exported if name == "export" else telemetry.imported
    counter.add(count, {"specstore.outcome": outcome})


def count_corrupt(operation: str, count: int) -> None:
    telemetry = _active()
    if telemetry is not None and count > 0:
        telemetry.corrupt.add(count, {"specstore.operation": operation})
