"""The ``specstore`` command: demo, inspect, export, import, migrate, repair, gc, stats.

Exit codes: 0 ok; 1 partial (something was skipped, rejected, missing or corrupt);
2 usage, configuration or connection error; 130 interrupted (Ctrl-C). Expected failures print
one line on stderr. Only ``demo`` runs on the embedded store by default; every other command
needs a Redis URL (``memory://`` must be asked for).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import IO, Annotated, Any, BinaryIO, NoReturn, cast
from urllib.parse import urlsplit

import msgpack
import redis
import typer
import typer.core
import typer.main
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from specstore import bulk, config
from specstore.bulk import gc as gc_ops
from specstore.bulk.import_plan import dry_run_import
from specstore.connection import redact
from specstore.context import RequestContext
from specstore.core.keys import API, normalize_uuid, validate_store_name
from specstore.core.records import reply_text
from specstore.drivers.scanning import node_clients, scan_batches
from specstore.errors import (
    BackendError,
    ConfigurationError,
    InvalidInputError,
    InvalidUUIDError,
    SpecNotFoundError,
    SpecStoreError,
    UnknownStoreError,
)
from specstore.serializers import json_codec
from specstore.store import SpecStore
from specstore.topology import Backend, Topology

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    name="specstore",
    help="Persist cloud scheduling request specs in Redis: inspect, export, import, migrate, "
    "repair and count them, or run the demo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class ExportFormat(str, Enum):
    """Formats ``export`` writes."""

    jsonl = "jsonl"
    msgpack = "msgpack"


class ImportFormat(str, Enum):
    """Formats ``import`` reads (``auto``: from the file name and first bytes)."""

    auto = "auto"
    jsonl = "jsonl"
    msgpack = "msgpack"
    nova_tsv = "nova-tsv"


# -- global options (accepted before and after the subcommand) ---------------------------------

RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        metavar="URL",
        show_default=False,
        help="Redis of the api store and of cells without their own: "
        "redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://..., unix:///PATH, "
        "redis+cluster://HOST:PORT, or memory:// (in-process, gone when the command ends). "
        "Env: SPECSTORE_REDIS_URL.",
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        metavar="PREFIX",
        show_default=False,
        help="Key prefix [default: specstore]. Env: SPECSTORE_PREFIX.",
    ),
]
CellUrlsOption = Annotated[
    str | None,
    typer.Option(
        "--cell-urls",
        metavar="CELL=URL,...",
        show_default=False,
        help="Cells on their own Redis, e.g. cell1=redis://h1:6379/0. Env: SPECSTORE_CELL_URLS.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        show_default=False,
        help="TOML config file (see the README). Env: SPECSTORE_CONFIG.",
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")
]
BatchOption = Annotated[
    int,
    typer.Option(min=1, max=10_000, metavar="N", help="Keys read or written per round trip."),
]

VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="Log more on stderr: -v info, -vv debug (warnings are always shown).",
    ),
]


class StatsFormat(str, Enum):
    table = "table"
    json = "json"
    prometheus = "prometheus"


class LogFormat(str, Enum):
    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        show_default=False,
        help="Log lines on stderr as text [default] or json (one object a line).",
    ),
]

log = logging.getLogger("specstore.cli")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, sort_keys=True)


_LOG_HANDLER_NAME = "specstore-cli"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: int, log_format: LogFormat | None) -> None:
    """Send the ``specstore`` loggers to stderr: warnings always, -v info, -vv debug."""
    root = logging.getLogger("specstore")
    handler = next((h for h in root.handlers if h.get_name() == _LOG_HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        handler.set_name(_LOG_HANDLER_NAME)
        root.addHandler(handler)
    if log_format == LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("specstore: %(levelname)s: %(name)s: %(message)s"))
    root.setLevel(
        logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    )


@dataclass(frozen=True)
class Settings:
    """The global options as given (None: not given; the environment or config decides)."""

    redis_url: str | None = None
    prefix: str | None = None
    cell_urls: str | None = None
    config_path: Path | None = None
    verbose: int = 0
    log_format: LogFormat | None = None

    def over(self, base: Settings) -> Settings:
        """These settings, falling back to ``base`` for what is not given here."""
        return Settings(
            self.redis_url or base.redis_url,
            self.prefix or base.prefix,
            self.cell_urls if self.cell_urls is not None else base.cell_urls,
            self.config_path or base.config_path,
            self.verbose + base.verbose,
            self.log_format or base.log_format,
        )


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("specstore")
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
            from specstore.version import __version__ as version
        typer.echo(f"specstore {version}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options may also be given after the subcommand."""
    ctx.obj = Settings(redis_url, prefix, cell_urls, config_file, verbose, log_format)
    setup_logging(verbose, log_format)


def _settings(
    ctx: typer.Context,
    redis_url: str | None,
    prefix: str | None,
    cell_urls: str | None,
    config_file: Path | None,
    verbose: int = 0,
    log_format: LogFormat | None = None,
) -> Settings:
    base = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    settings = Settings(redis_url, prefix, cell_urls, config_file, verbose, log_format).over(base)
    setup_logging(settings.verbose, settings.log_format)
    return settings


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    stderr.print(f"specstore: error: {message}", markup=False)
    raise typer.Exit(code)


def note(message: str) -> None:
    stderr.print(message, markup=False)


NO_REDIS_HINT = (
    "no Redis configured: pass --redis-url redis://HOST:6379/0 (or set SPECSTORE_REDIS_URL, "
    "or redis_url in a --config file); --redis-url memory:// runs on a throwaway in-process "
    "store that is gone when the command ends"
)


# -- one command run: settings, the store, and what its errors mean -----------------------------


class Run:
    """Opens the store for one command and turns expected failures into one line on stderr.

    ``writes`` says whether the command writes, so a failure can say whether anything was
    written; ``written`` (set by import) counts what was written before a failure.
    """

    def __init__(self, settings: Settings, *, writes: bool, embedded_default: bool = False):
        self.settings = settings
        self.writes = writes
        self.embedded_default = embedded_default
        self.store: SpecStore | None = None
        self.urls: dict[str, str] = {}
        self.written: int | None = None

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.store is not None:
            self.store.close()
        if isinstance(exc, KeyboardInterrupt):
            again = " (run the same command again: it is safe to repeat)" if self.writes else ""
            fail(f"interrupted{again}", EXIT_INTERRUPTED)
        if isinstance(exc, BackendError):
            fail(self.explain(exc))
        if isinstance(exc, (InvalidInputError, UnknownStoreError)):
            fail(str(exc))
        if isinstance(exc, SpecStoreError):
            fail(str(exc), EXIT_PARTIAL)

    def open(self) -> SpecStore:
        s = self.settings
        mapping = config.resolve(
            redis_url=s.redis_url,
            prefix=s.prefix,
            cell_urls=s.cell_urls,
            config_path=s.config_path,
            default_url=config.DEFAULT_URL if self.embedded_default else None,
        )
        if "redis_url" not in mapping:
            raise ConfigurationError(NO_REDIS_HINT)
        self.urls = {API: str(mapping["redis_url"])}
        for name, cell in dict(mapping.get("cells", {})).items():
            if isinstance(cell, dict) and isinstance(cell.get("redis_url"), str):
                self.urls[name] = cell["redis_url"]
        self.store = SpecStore(Topology.from_config(mapping))
        for name, url in sorted(self.urls.items()):
            log.info("store %s on %s", name, redact(url))
        return self.store

    @property
    def api_url(self) -> str:
        return self.urls.get(API, "")

    @property
    def in_memory(self) -> bool:
        return self.api_url.lower().startswith("memory:")

    def describe(self) -> str:
        """The configured stores, passwords hidden: ``redis://h:6379/0`` (+ cells)."""
        parts = [redact(self.api_url)]
        parts += [f"{name}={redact(url)}" for name, url in self.urls.items() if name != API]
        return ", ".join(parts)

    def command_line(self, *args: str) -> str:
        """A ``specstore`` command reaching the same stores (password shown as ***)."""
        s = self.settings
        words = ["specstore", "--redis-url", redact(self.api_url)]
        if s.prefix:
            words += ["--prefix", s.prefix]
        if s.cell_urls:
            words += ["--cell-urls", redact(s.cell_urls)]
        if s.config_path:
            words += ["--config", str(s.config_path)]
        return shlex.join([*words, *args])

    def explain(self, exc: BackendError) -> str:
        """What happened, in words, naming the Redis by host:port (password redacted)."""
        cause: BaseException = exc.__cause__ or exc
        where = API
        if self.store is not None:
            failing = _probe(self.store.topology)
            if failing is not None:
                where, cause = failing
        url = self.urls.get(where, self.api_url)
        label = "the api store" if where == API else f"cell {where}"
        reason, connecting = _reason(cause)
        verb = "cannot connect to" if connecting else "failed talking to"
        text = f"{verb} Redis at {_host_port(url)} ({redact(url)}, {label}): {reason}"
        if self.written:
            text += (
                f"; {self.written} records were written before the failure: run the same "
                "command again to resume"
            )
        elif self.writes:
            text += (
                " (a write may have landed: run the same command again, it is safe to repeat)"
                if exc.may_have_written
                else " (nothing was written)"
            )
        return text


def _probe(topology: Topology[Backend]) -> tuple[str, BaseException] | None:
    """The first store whose backend fails a PING, with the failure."""
    named: list[tuple[str, Backend]] = [(API, topology.api), *topology.cells.items()]
    for name, backend in named:
        try:
            backend.client.ping()
        except redis.RedisError as exc:
            return name, exc
    return None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        return parts.path or url
    try:
        port = parts.port or 6379
    except ValueError:
        return redact(url)
    return f"{parts.hostname or 'localhost'}:{port}"


_AUTH_REQUIRED = (
    "authentication required: the server wants a password (redis://[USER]:PASSWORD@HOST:PORT)"
)
_REASONS: list[tuple[str, str, bool]] = [
    # (lower-case text in the error chain, what to say, happened while connecting)
    ("wrongpass", "wrong user name or password", True),
    ("invalid username-password", "wrong user name or password", True),
    ("invalid password", "wrong password", True),
    ("without any password configured", "a password was given but the server has none", True),
    ("noauth", _AUTH_REQUIRED, True),
    ("authentication required", _AUTH_REQUIRED, True),
    ("called with the client already authenticated", _AUTH_REQUIRED, True),
    ("connection refused", "connection refused (is redis-server running and listening?)", True),
    ("timed out", "timed out", True),
    ("timeout", "timed out", True),
    ("name or service not known", "unknown host name", True),
    ("nodename nor servname", "unknown host name", True),
    ("temporary failure in name resolution", "unknown host name", True),
    ("certificate verify failed", "the server's TLS certificate could not be verified", True),
    ("wrong version number", "TLS was asked for but the server does not speak it", True),
    ("noperm", "permission denied by the server's ACL", False),
    ("connection reset", "the connection was reset", False),
    ("closed by server", "the server closed the connection", False),
    ("connection closed", "the server closed the connection", False),
    ("oom command not allowed", "the server is out of memory (maxmemory)", False),
    ("readonly", "the server is a read-only replica", False),
]


def _reason(exc: BaseException) -> tuple[str, bool]:
    """(what happened in words, whether it happened while connecting)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 6:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(item) for item in chain).lower()
    for needle, said, connecting in _REASONS:
        if needle in text:
            return said, connecting
    if any(isinstance(item, redis.AuthenticationError) for item in chain):
        return "authentication failed", True
    innermost = str(chain[-1]) or "unknown error"
    return re.sub(r"\s+", " ", innermost).strip().rstrip("."), "connecting to" in text


class Interrupts:
    """Ctrl-C, taken at the next progress step instead of wherever Python happens to be (a
    KeyboardInterrupt inside a pydantic or msgpack callback would surface as a data error).
    A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    def wrap(self, advance: Callable[[int], None]) -> Callable[[int], None]:
        """``advance``, checking for Ctrl-C first."""

        def checked(count: int) -> None:
            self.check()
            advance(count)

        return checked


# -- progress -----------------------------------------------------------------------------------


def show_progress(quiet: bool, data_on_stdout: bool = False) -> bool:
    """A bar only on a terminal stderr, never over data written to a terminal stdout."""
    if quiet or not stderr.is_terminal:
        return False
    return not (data_on_stdout and sys.stdout.isatty())


@contextlib.contextmanager
def progress_bar(
    label: str, show: bool, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A bar on stderr counting items (``total`` may be an estimate); a no-op unless ``show``."""
    if not show:
        yield lambda _n: None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if total is not None and done > total:
                bar.update(task, total=done)
            bar.update(task, completed=done)

        yield advance


def estimate_specs(store: SpecStore, stores: list[str] | None) -> int | None:
    """About how many spec keys (of ``stores``) there are: DBSIZE of each node, times the
    share of spec keys in one sample SCAN. Exact on small databases; None if unknown."""
    total = 0
    for backend in store.topology.backends():
        try:
            nodes = node_clients(backend.client)
            for node in nodes:
                size = int(node.dbsize())
                if not size:
                    continue
                _, sample = node.scan(cursor=0, count=1000)
                hits = 0
                for raw in sample:
                    parsed = backend.keys.parse_spec_key(reply_text(raw))
                    if parsed is None or (stores is not None and parsed[0] not in stores):
                        continue
                    if store.topology.backend_for(parsed[0]) is backend:
                        hits += 1
                if sample:
                    total += round(size * hits / len(sample)) if len(sample) < size else hits
        except redis.RedisError:
            return None
    return total or None


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the demo's spec in the store, to inspect it.")
    ] = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Run the lifecycle: boot, api store, schedule, promote, resize/revert/migrate/evacuate
    under the same constraints, export. Runs on the embedded memory:// unless told otherwise."""
    from specstore.demo import run_demo

    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with Run(settings, writes=True, embedded_default=True) as run:
        store = run.open()

        def kept(uid: str) -> str:
            if run.in_memory:
                return (
                    f"kept in {redact(run.api_url)}, which ends with this process: nothing is "
                    "left to inspect. To keep it: specstore demo --keep --redis-url "
                    "redis://HOST:6379/0"
                )
            hint = " (put the password back in place of ***)" if "***" in run.describe() else ""
            return f"kept: inspect it with `{run.command_line('inspect', uid)}`{hint}"

        run_demo(store, run.describe(), print_line=typer.echo, keep=keep, kept_hint=kept)


# -- inspect ------------------------------------------------------------------------------------


def parse_uuid(text: str) -> str:
    """Any spelling :class:`uuid.UUID` accepts (braces, urn:uuid:, upper case, no dashes)."""
    try:
        if not text.isascii():  # int() would take other scripts' digits
            raise ValueError(text)
        return normalize_uuid(uuid.UUID(text.strip()))
    except ValueError:
        raise InvalidUUIDError(text) from None


@app.command()
def inspect(
    ctx: typer.Context,
    instance_uuid: Annotated[
        str,
        typer.Argument(
            metavar="UUID", help="Instance UUID (any spelling: braces, upper case, no dashes)."
        ),
    ],
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Where the spec lives, its key, rev and metadata, then the decoded document (JSON)."""
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with Run(settings, writes=False) as run:
        uid = parse_uuid(instance_uuid)
        store = run.open()
        home = store.locate(uid)
        if home is None:
            raise SpecNotFoundError(uid)
        request = RequestContext(store=store)
        if home != API:
            request = request.target_cell(home)
        backend = store.backend(home)
        stored = store.get(request, uid)
        output = {
            "store": home,
            "key": backend.keys.spec_key(home, uid),
            "location_key": backend.keys.location_key(uid),
            "rev": stored.rev,
            "instance_uuid": uid,
            "schema": stored.schema,
            "project_id": stored.project_id,
            "user_id": stored.user_id,
            "created_at": stored.created_at,
            "updated_at": stored.updated_at,
            "document": json_codec.to_json_document(stored.spec, store.codec, fresh=True),
        }
    typer.echo(json.dumps(output, indent=2))


# -- export -------------------------------------------------------------------------------------


def check_stores(store: SpecStore, names: list[str] | None) -> list[str] | None:
    """``names`` checked: malformed is an error, and so is a store that is neither configured
    nor holding any spec."""
    if not names:
        return None
    topology = store.topology
    for name in names:
        validate_store_name(name)
        if name == API or name in topology.cells:
            continue
        if topology.only_listed_cells:
            raise UnknownStoreError(
                f"unknown store {name!r} (configured: {', '.join([API, *sorted(topology.cells)])})"
            )
        backend = topology.backend_for(name)
        pattern = backend.keys.spec_pattern(name)
        if not any(keys for keys, _ in scan_batches(backend.client, pattern, 1000)):
            held = sorted(
                {k.store for _, keys, _ in bulk.spec_key_batches(store, None, 1000) for k in keys}
                | {API}
            )
            raise UnknownStoreError(
                f"unknown store {name!r}: not configured and holds no specs "
                f"(stores: {', '.join(held)})"
            )
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def _open_output(path: str) -> Iterator[BinaryIO]:
    """Standard output, or a temporary file beside ``path`` renamed to it on success (an
    interrupted or failed export leaves nothing that looks complete)."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        fail(f"cannot write {path}: is a directory")
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed or removed below
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False
        )
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    temporary = Path(handle.name)
    try:
        with handle:
            yield cast(BinaryIO, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the exit-time flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@app.command()
def export(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE (atomically), or - for stdout."
        ),
    ] = "-",
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help="jsonl (one JSON object a line) or msgpack (binary)."),
    ] = ExportFormat.jsonl,
    stores: Annotated[
        list[str] | None,
        typer.Option(
            "--store", metavar="STORE", help="Only this store (api or a cell name); repeatable."
        ),
    ] = None,
    batch: BatchOption = 500,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Decode every document through the model (slower); by default documents are "
            "checked (marker, schema, version, one whole value, instance) and written as stored.",
        ),
    ] = False,
    quiet: QuietOption = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Stream every spec as JSON lines or msgpack (SCAN + pipelined reads; bounded memory)."""
    if fmt is ExportFormat.msgpack and output == "-" and sys.stdout.isatty():
        fail("refusing to write binary msgpack to a terminal: use -o FILE or redirect stdout")
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    show = show_progress(quiet, data_on_stdout=output == "-")
    with Run(settings, writes=False) as run:
        store = run.open()
        chosen = check_stores(store, stores)
        total = estimate_specs(store, chosen) if show else None
        try:
            with (
                Interrupts() as interrupts,
                _open_output(output) as out,
                progress_bar("exporting", show, total) as advance,
            ):
                summary = bulk.export_specs(
                    store, out, fmt.value, chosen, batch, interrupts.wrap(advance), validate
                )
                interrupts.check()
        except BrokenPipeError:
            _silence_stdout()  # the reader (e.g. `head`) has what it wanted
            raise typer.Exit(EXIT_OK) from None
        except KeyboardInterrupt:
            where = "standard output is incomplete" if output == "-" else f"{output} not written"
            fail(f"interrupted: export stopped, {where}", EXIT_INTERRUPTED)
    for problem in summary.problems:
        note(f"skipped {problem}")
    if not quiet:
        to = "" if output == "-" else f" to {output}"
        note(
            f"exported {summary.exported} specs ({summary.bytes_written} bytes){to}, "
            f"skipped {summary.skipped}"
        )
    raise typer.Exit(EXIT_PARTIAL if summary.skipped else EXIT_OK)


# -- import -------------------------------------------------------------------------------------

_NOVA_ROW = re.compile(rb"\s*[0-9a-fA-F-]{32,36}\t")


def detect_format(path: Path, shown: str) -> str:
    """The import format from the name, else from the first bytes; an error if unclear."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "nova-tsv"
    if suffix in (".msgpack", ".mpk"):
        return "msgpack"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        return "jsonl"  # empty: no records, whatever the format
    if head.startswith(b"instance_uuid\t") or _NOVA_ROW.match(head):
        return "nova-tsv"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    if _looks_like_msgpack_record(head):
        return "msgpack"
    raise InvalidInputError(
        f"cannot tell the format of {shown}: it looks like neither JSON lines, msgpack nor a "
        "Nova request_specs table; pass --format jsonl, msgpack or nova-tsv"
    )


_SNIFF_BYTES = 64 * 1024


def _looks_like_msgpack_record(head: bytes) -> bool:
    """True if ``head`` starts with a msgpack map holding an ``instance_uuid`` (or is cut
    short inside a map: records can be larger than what was read)."""
    if not (0x80 <= head[0] <= 0x8F or head[0] in (0xDE, 0xDF)):
        return False
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(head) + 1)
    unpacker.feed(head)
    try:
        first = unpacker.unpack()
    except msgpack.OutOfData:
        return len(head) >= _SNIFF_BYTES
    except (ValueError, msgpack.UnpackException):
        return False
    return isinstance(first, dict) and "instance_uuid" in first


class _CountingReader(io.RawIOBase):
    """A raw reader that reports the bytes it hands out."""

    def __init__(self, raw: BinaryIO, advance: Callable[[int], None]) -> None:
        super().__init__()
        self._raw = raw
        self._advance = advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._advance(count)
        return cast(int, count)

    def close(self) -> None:
        self._raw.close()
        super().close()


class ImportProgress:
    """Bars on stderr by bytes of the input: one while validating, one while writing."""

    def __init__(self, show: bool, size: int, labels: tuple[str, ...]) -> None:
        self.show, self.size, self.labels = show, size, labels
        self.passes = 0
        columns: list[ProgressColumn] = [
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
        ]
        self.bar = Progress(*columns, console=stderr, transient=True) if show else None

    def __enter__(self) -> ImportProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def opener(self, path: Path, interrupts: Interrupts) -> Callable[[], BinaryIO]:
        """Opens ``path`` for one pass, its reads advancing that pass's bar."""

        def open_source() -> BinaryIO:
            raw = cast(BinaryIO, path.open("rb", buffering=0))
            label = self.labels[min(self.passes, len(self.labels) - 1)]
            self.passes += 1
            advance: Callable[[int], None] = lambda _n: None  # noqa: E731
            if self.bar is not None:
                bar, task = self.bar, self.bar.add_task(label, total=self.size)
                advance = lambda n: bar.advance(task, n)  # noqa: E731
            counting = _CountingReader(raw, interrupts.wrap(advance))
            return cast(BinaryIO, io.BufferedReader(counting))

        return open_source


@app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="An export (jsonl or msgpack), a Nova request_specs TSV, or -."
        ),
    ],
    fmt: Annotated[
        ImportFormat,
        typer.Option("--format", help="Input format; auto guesses from the name and content."),
    ] = ImportFormat.auto,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate and report what would be done; write nothing."),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace specs already stored in the same store.")
    ] = False,
    nova_store: Annotated[
        str,
        typer.Option(metavar="STORE", help="Store the Nova table's rows go to (api or a cell)."),
    ] = API,
    batch: BatchOption = 500,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Write every msgpack record's document anew from its model (JSON lines and "
            "Nova rows always are); by default a msgpack record's document is checked (marker, "
            "schema, version, one whole value, instance, owners, the model's validation) and "
            "stored as it is.",
        ),
    ] = False,
    quiet: QuietOption = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Load an export (or Nova's request_specs table), validating every record first.

    Existing specs are kept unless --overwrite; re-running an interrupted import resumes it
    (records already written count as unchanged)."""
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with contextlib.ExitStack() as stack:
        shown = source
        if source == "-":
            shown = "standard input"
            if sys.stdin.isatty():
                note("reading standard input (end it with Ctrl-D; Ctrl-C to cancel)")
            spool = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".import"))
            try:
                shutil.copyfileobj(sys.stdin.buffer, spool)
            except KeyboardInterrupt:
                fail("interrupted while reading standard input: nothing was written", 130)
            spool.flush()
            path = Path(spool.name)
        else:
            path = Path(source)
            if path.is_dir():
                fail(f"cannot import {source}: is a directory")
            if not path.exists():
                fail(f"cannot import {source}: no such file")
            if not path.is_file():
                fail(f"cannot import {source}: not a regular file (use - for a pipe)")
        with Run(settings, writes=not dry_run) as run:
            chosen = detect_format(path, shown) if fmt is ImportFormat.auto else fmt.value
            validate_store_name(nova_store)
            store = run.open()
            labels = ("checking",) if dry_run else ("validating", "importing")
            bars = stack.enter_context(
                ImportProgress(show_progress(quiet), path.stat().st_size, labels)
            )
            run.written = 0 if not dry_run else None

            def wrote(count: int) -> None:
                run.written = (run.written or 0) + count
                interrupts.check()

            interrupts = stack.enter_context(Interrupts())
            try:
                if dry_run:
                    summary = dry_run_import(
                        store,
                        bars.opener(path, interrupts),
                        cast(bulk.ImportFormat, chosen),
                        overwrite=overwrite,
                        batch=batch,
                        nova_store=nova_store,
                        validate=validate,
                    )
                else:
                    summary = bulk.import_specs(
                        store,
                        bars.opener(path, interrupts),
                        cast(bulk.ImportFormat, chosen),
                        overwrite=overwrite,
                        batch=batch,
                        nova_store=nova_store,
                        progress=wrote,
                        validate=validate,
                    )
                interrupts.check()
            except KeyboardInterrupt:
                bars.__exit__(None, None, None)
                if not run.written:
                    stage = (
                        "while checking"
                        if dry_run
                        else "while validating"
                        if bars.passes < 2
                        else "before the first batch was written"
                    )
                    fail(f"interrupted {stage}: nothing was written", EXIT_INTERRUPTED)
                fail(
                    f"interrupted after writing {run.written} records: run the same import "
                    "again to resume (records already written count as unchanged)",
                    EXIT_INTERRUPTED,
                )
    _print_import_summary(summary, dry_run, quiet)
    raise typer.Exit(EXIT_OK if summary.complete else EXIT_PARTIAL)


def _print_import_summary(summary: bulk.ImportSummary, dry_run: bool, quiet: bool) -> None:
    for problem in summary.problems:
        note(problem)
    if not quiet:
        head = f"read {summary.read} records: {summary.valid} valid, {summary.rejected} rejected"
        if dry_run:
            note(
                f"{head}; a real run would create {summary.created}, replace "
                f"{summary.replaced}, leave {summary.unchanged} unchanged and keep "
                f"{summary.existing} as they are (dry run: nothing was written)"
            )
        else:
            note(
                f"{head}; imported {summary.created + summary.replaced} "
                f"({summary.created} created, {summary.replaced} replaced, "
                f"{summary.unchanged} unchanged, {summary.existing} kept as they were)"
            )


# -- migrate ------------------------------------------------------------------------------------


@app.command()
def migrate(
    ctx: typer.Context,
    batch: BatchOption = 500,
    cursor: Annotated[
        str | None,
        typer.Option(metavar="CURSOR", help="Resume from the cursor an earlier run printed."),
    ] = None,
    max_batches: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Stop after N batches (and print a cursor)."),
    ] = None,
    quiet: QuietOption = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Rewrite documents of older schema versions to the current one, in resumable batches."""
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with Run(settings, writes=True) as run:
        store = run.open()
        show = show_progress(quiet)
        total = estimate_specs(store, None) if show and cursor is None else None
        with progress_bar("migrating", show, total) as advance:
            summary = bulk.migrate_documents(
                store, batch=batch, cursor=cursor, max_batches=max_batches, progress=advance
            )
    for problem in summary.problems:
        note(f"failed {problem}")
    typer.echo(
        f"scanned {summary.scanned}: rewrote {summary.rewritten}, already current "
        f"{summary.current}, newer {summary.newer}, failed {summary.failed}"
    )
    if summary.cursor is not None:
        typer.echo(f"not finished: resume with --cursor {summary.cursor}")
    raise typer.Exit(EXIT_PARTIAL if summary.failed else EXIT_OK)


# -- repair -------------------------------------------------------------------------------------


@app.command()
def repair(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what needs repair; change nothing.")
    ] = False,
    quiet: QuietOption = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Fix specs with more than one home or a disagreeing location record.

    The rule: settle interrupted moves; drop location records that point at nothing; keep the
    copy with the highest rev (ties: the one the location record names, then a cell copy over
    the api copy) and remove the others. Exit 1 if a key was skipped (it holds something that
    is not a spec) or, with --dry-run, if anything needs repair.
    """
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with Run(settings, writes=not dry_run) as run:
        store = run.open()
        show = show_progress(quiet)
        total = estimate_specs(store, None) if show else None
        with progress_bar("checking", show, total) as advance:
            report = bulk.repair(store, dry_run=dry_run, progress=advance)
    for plan in report.plans:
        typer.echo(f"{plan.instance_uuid}: {plan.describe()}")
    for problem in report.problems:
        note(f"skipped {problem}")
    verb = "need repair" if dry_run else "repaired"
    typer.echo(
        f"checked {report.checked} instances: {report.found} {verb}, {report.skipped} skipped"
    )
    partial = report.skipped or (dry_run and report.found)
    raise typer.Exit(EXIT_PARTIAL if partial else EXIT_OK)


# -- gc -----------------------------------------------------------------------------------------


def read_live_file(source: str) -> set[str]:
    """Instance uuids, one a line (any spelling; blank lines and ``#`` comments skipped), from
    a file or ``-`` (standard input). A malformed line is a usage error naming it."""
    if source == "-":
        if sys.stdin.isatty():
            note("reading live instance uuids from standard input (end it with Ctrl-D)")
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(source)
        if not path.is_file():
            fail(f"cannot read --live-file {source}: no such file")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read --live-file {source}: {exc}")
    live: set[str] = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            live.add(parse_uuid(text))
        except InvalidUUIDError:
            fail(f"--live-file {source}, line {number}: not an instance uuid: {text!r}")
    return live


@app.command()
def gc(
    ctx: typer.Context,
    live_file: Annotated[
        str | None,
        typer.Option(
            "--live-file",
            metavar="FILE",
            show_default=False,
            help="The instances that exist, one uuid a line (- for standard input); api-store "
            "specs of others are orphans.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report the orphans; remove nothing.")
    ] = False,
    min_age: Annotated[
        float,
        typer.Option(
            "--min-age",
            min=0,
            metavar="SECONDS",
            help="Never remove a spec younger than this (a boot in flight).",
        ),
    ] = gc_ops.DEFAULT_MIN_AGE_SECONDS,
    unpromoted_older_than: Annotated[
        float | None,
        typer.Option(
            "--unpromoted-older-than",
            min=0,
            metavar="SECONDS",
            show_default=False,
            help="Also remove api-store specs older than this, live or not (never promoted).",
        ),
    ] = None,
    batch: BatchOption = 500,
    quiet: QuietOption = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Remove api-store specs whose instance is gone or was never scheduled.

    A spec is removed when its instance is not in --live-file and it is older than --min-age,
    or (with --unpromoted-older-than) when it is older than that. Removal is compare-and-set:
    a spec written, promoted or being moved since it was read is skipped. Exit 1 if a spec was
    skipped or, with --dry-run, if there are orphans.
    """
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    if live_file is None and unpromoted_older_than is None:
        fail("give --live-file FILE (the instances that exist), --unpromoted-older-than, or both")
    live: gc_ops.Live
    if live_file is None:
        live = lambda uids: uids  # noqa: E731  (no list: only the time-to-live applies)
    else:
        live = read_live_file(live_file)
        if not live:
            fail(
                f"--live-file {live_file} lists no instance: refusing to treat every spec as an "
                "orphan (use --unpromoted-older-than alone for a time-to-live run)"
            )
    with Run(settings, writes=not dry_run) as run:
        store = run.open()
        show = show_progress(quiet)
        total = estimate_specs(store, [API]) if show else None
        with progress_bar("checking", show, total) as advance:
            report = gc_ops.collect_orphans(
                store,
                live,
                dry_run=dry_run,
                min_age_seconds=min_age,
                unpromoted_older_than=unpromoted_older_than,
                batch=batch,
                progress=advance,
            )
    verb = "would remove" if dry_run else "removed"
    for uid in report.orphans:
        typer.echo(f"{uid}: orphan (instance not live), {verb}")
    for uid in report.unpromoted:
        typer.echo(f"{uid}: never promoted within the time-to-live, {verb}")
    for skipped in report.skipped:
        note(f"skipped {skipped.instance_uuid}: {skipped.reason}")
    removed = "would be removed" if dry_run else "removed"
    if not quiet:
        typer.echo(
            f"checked {report.checked} api-store specs: {report.orphan_count} orphans, "
            f"{report.unpromoted_count} unpromoted, "
            f"{report.orphan_count + report.unpromoted_count if dry_run else report.removed} "
            f"{removed}, {report.young} too young, {report.skipped_count} skipped"
        )
    partial = report.skipped_count or (dry_run and (report.orphan_count or report.unpromoted_count))
    raise typer.Exit(EXIT_PARTIAL if partial else EXIT_OK)


# -- stats --------------------------------------------------------------------------------------


@app.command()
def stats(
    ctx: typer.Context,
    sample: Annotated[
        int,
        typer.Option(min=0, metavar="N", help="Keys per store sampled with MEMORY USAGE."),
    ] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output instead of a table.")] = (
        False
    ),
    output_format: Annotated[
        StatsFormat | None,
        typer.Option(
            "--format",
            show_default=False,
            help="table [default], json (as --json) or prometheus (text exposition format, "
            "for a textfile collector).",
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    cell_urls: CellUrlsOption = None,
    config_file: ConfigOption = None,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = None,
) -> None:
    """Spec counts per store and per schema version, and memory used (sampled)."""
    settings = _settings(ctx, redis_url, prefix, cell_urls, config_file, verbose, log_format)
    with Run(settings, writes=False) as run:
        store = run.open()
        result = bulk.collect_stats(store, sample=sample)
    rows: dict[str, Any] = {
        name: {
            "count": s.count,
            "schemas": dict(s.schemas),
            "sampled": s.sampled,
            "estimated_bytes": s.estimated_bytes,
        }
        for name, s in sorted(result.items())
    }
    if output_format == StatsFormat.prometheus:
        typer.echo(prometheus_text(rows), nl=False)
        return
    if as_json or output_format == StatsFormat.json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table("store", "specs", "schema versions", "memory (est.)")
    for name, row in rows.items():
        versions = ", ".join(f"{k}: {v}" for k, v in sorted(row["schemas"].items()))
        memory = "n/a" if row["estimated_bytes"] is None else f"{row['estimated_bytes']:,} B"
        table.add_row(name, str(row["count"]), versions, memory)
    Console(file=cast(IO[str], sys.stdout)).print(table)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(rows: dict[str, Any]) -> str:
    """The stats in Prometheus' text exposition format (gauges, one sample per store)."""
    families: list[tuple[str, str, list[tuple[str, int]]]] = [
        (
            "specstore_specs",
            "Specs stored, per store.",
            [(f'store="{_label(n)}"', r["count"]) for n, r in rows.items()],
        ),
        (
            "specstore_specs_by_schema",
            "Specs stored, per store and schema version.",
            [
                (f'store="{_label(n)}",schema="{_label(k)}"', v)
                for n, r in rows.items()
                for k, v in sorted(r["schemas"].items())
            ],
        ),
        (
            "specstore_sampled_keys",
            "Keys sampled with MEMORY USAGE for the memory estimate, per store.",
            [(f'store="{_label(n)}"', r["sampled"]) for n, r in rows.items()],
        ),
        (
            "specstore_memory_estimated_bytes",
            "Memory the specs use, estimated from the sample, per store.",
            [
                (f'store="{_label(n)}"', r["estimated_bytes"])
                for n, r in rows.items()
                if r["estimated_bytes"] is not None
            ],
        ),
    ]
    lines: list[str] = []
    for name, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{labels}}} {int(value)}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def build_command() -> Any:
    """The click command behind ``app``; arguments with a metavar (UUID, FILE) show only it,
    not also their Python type."""
    command = typer.main.get_command(app)
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if isinstance(param, typer.core.TyperArgument) and param.metavar:
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
                usage = str(param.metavar) if param.required else f"[{param.metavar}]"
                param._usage_display_name = lambda usage=usage: usage  # type: ignore[method-assign,misc]
    return command


def main() -> None:
    """The console script."""
    build_command()(prog_name="specstore")
