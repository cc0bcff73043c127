"""The ``specstore`` command: demo, inspect, export, import, migrate, repair, stats.

Exit codes: 0 ok; 1 partial (something was skipped, rejected, missing or corrupt);
2 usage, configuration or connection error. Expected failures print one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, BinaryIO, NoReturn, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serializers import json_codec
from specstore import bulk, config
from specstore.connection import redact
from specstore.context import RequestContext
from specstore.errors import BackendError, InvalidInputError, SpecNotFoundError, SpecStoreError
from specstore.keys import normalize_uuid
from specstore.store import SpecStore
from specstore.topology import Topology

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="specstore",
    help="Persist cloud scheduling request specs in Redis: inspect, export, import, migrate, "
    "repair and count them, or run the demo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class Settings:
    redis_url: str | None
    prefix: str | None
    cell_urls: str | None
    config_path: Path | None

    def open_store(self) -> SpecStore:
        mapping = config.resolve(
            redis_url=self.redis_url,
            prefix=self.prefix,
            cell_urls=self.cell_urls,
            config_path=self.config_path,
        )
        return SpecStore(Topology.from_config(mapping))

    def describe(self) -> str:
        mapping = config.resolve(
            redis_url=self.redis_url,
            prefix=self.prefix,
            cell_urls=self.cell_urls,
            config_path=self.config_path,
        )
        return redact(str(mapping["redis_url"]))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    stderr.print(f"specstore: error: {message}", markup=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def expected_errors() -> Iterator[None]:
    """Expected failures become one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except (InvalidInputError, BackendError) as exc:
        fail(str(exc), EXIT_USAGE)
    except SpecNotFoundError as exc:
        fail(str(exc), EXIT_PARTIAL)
    except SpecStoreError as exc:
        fail(str(exc), EXIT_PARTIAL)


@app.callback()
def options(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Redis URL of the api store (memory://, redis://, rediss://, "
            "redis+cluster://). Env: SPECSTORE_REDIS_URL. Default: the embedded memory://.",
        ),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Key prefix. Env: SPECSTORE_PREFIX. Default: specstore.")
    ] = None,
    cell_urls: Annotated[
        str | None,
        typer.Option(
            "--cell-urls",
            help="Cells on their own Redis: cell1=URL,cell2=URL. Env: SPECSTORE_CELL_URLS.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML config file. Env: SPECSTORE_CONFIG.")
    ] = None,
) -> None:
    ctx.obj = Settings(redis_url, prefix, cell_urls, config_file)


def settings(ctx: typer.Context) -> Settings:
    return cast(Settings, ctx.obj)


@contextlib.contextmanager
def progress_bar(
    label: str, quiet: bool, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; silent when piped or ``quiet``."""
    if quiet or not stderr.is_terminal:
        yield lambda _n: None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option(help="Leave the demo's specs in the store.")] = False,
) -> None:
    """Run the lifecycle: boot, api store, schedule, promote, resize/revert/migrate/evacuate
    under the same constraints, export."""
    from specstore.demo import run_demo

    with expected_errors():
        store = settings(ctx).open_store()
        try:
            run_demo(store, settings(ctx).describe(), print_line=_stdout_line, keep=keep)
        finally:
            store.close()


def _stdout_line(text: str = "") -> None:
    typer.echo(text)


# -- inspect ------------------------------------------------------------------------------------


@app.command()
def inspect(
    ctx: typer.Context,
    instance_uuid: Annotated[str, typer.Argument(help="Instance UUID.")],
) -> None:
    """Where the spec lives, its metadata and the decoded document, as JSON."""
    with expected_errors():
        uid = normalize_uuid(instance_uuid)
        store = settings(ctx).open_store()
        try:
            home = store.locate(uid)
            if home is None:
                raise SpecNotFoundError(uid)
            request = RequestContext(store=store)
            if home != "api":
                request = request.target_cell(home)
            backend = store.backend(home)
            stored = store.get(request, uid)
            output = {
                "instance_uuid": uid,
                "store": home,
                "key": backend.keys.spec_key(home, uid),
                "location_key": backend.keys.location_key(uid),
                "rev": stored.rev,
                "schema": stored.schema,
                "project_id": stored.project_id,
                "user_id": stored.user_id,
                "created_at": stored.created_at,
                "updated_at": stored.updated_at,
                "document": json_codec.to_json_document(stored.spec, store.codec),
            }
        finally:
            store.close()
    typer.echo(json.dumps(output, indent=2, sort_keys=True))


# -- export -------------------------------------------------------------------------------------


@app.command()
def export(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="File, or - for stdout.")] = "-",
    fmt: Annotated[str, typer.Option("--format", help="jsonl or msgpack.")] = "jsonl",
    stores: Annotated[
        list[str] | None,
        typer.Option("--store", help="Only this store (api or a cell name); repeatable."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
) -> None:
    """Stream every spec as JSON lines or msgpack (SCAN + pipelined reads; bounded memory)."""
    if fmt not in ("jsonl", "msgpack"):
        fail(f"--format must be jsonl or msgpack, not {fmt!r}")
    with expected_errors():
        store = settings(ctx).open_store()
        try:
            with _open_output(output) as out, progress_bar("exporting", quiet) as advance:
                summary = bulk.export_specs(
                    store, out, cast(bulk.ExportFormat, fmt), stores, batch, advance
                )
        finally:
            store.close()
    for problem in summary.problems:
        stderr.print(f"skipped {problem}", markup=False)
    if not quiet:
        stderr.print(
            f"exported {summary.exported} specs ({summary.bytes_written} bytes), "
            f"skipped {summary.skipped}",
            markup=False,
        )
    raise typer.Exit(EXIT_PARTIAL if summary.skipped else EXIT_OK)


@contextlib.contextmanager
def _open_output(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    with handle:
        yield handle


# -- import -------------------------------------------------------------------------------------


def _detect_format(path: Path) -> str:
    if path.suffix in (".tsv", ".tab"):
        return "nova-tsv"
    if path.suffix in (".msgpack", ".mpk"):
        return "msgpack"
    with path.open("rb") as handle:
        head = handle.read(64)
    if head.startswith(b"instance_uuid\t"):
        return "nova-tsv"
    return "jsonl" if head.lstrip().startswith(b"{") or not head else "msgpack"


@app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Export file, Nova request_specs TSV, or -.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, jsonl, msgpack or nova-tsv.")
    ] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace specs already stored in the same store.")
    ] = False,
    nova_store: Annotated[str, typer.Option(help="Store that Nova table rows go to.")] = "api",
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Load an export (or Nova's request_specs table), validating every record first."""
    with contextlib.ExitStack() as stack:
        path = Path(source)
        if source == "-":
            spool = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".import"))
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.flush()
            path = Path(spool.name)
        elif not path.is_file():
            fail(f"no such file: {source}")
        chosen = _detect_format(path) if fmt == "auto" else fmt
        if chosen not in ("jsonl", "msgpack", "nova-tsv"):
            fail(f"--format must be auto, jsonl, msgpack or nova-tsv, not {fmt!r}")
        with expected_errors():
            store = stack.enter_context(contextlib.closing(settings(ctx).open_store()))
            advance = stack.enter_context(progress_bar("importing", quiet))
            summary = bulk.import_specs(
                store,
                lambda: path.open("rb"),
                cast(bulk.ImportFormat, chosen),
                dry_run=dry_run,
                overwrite=overwrite,
                batch=batch,
                nova_store=nova_store,
                progress=advance,
            )
    for problem in summary.problems:
        stderr.print(problem, markup=False)
    if not quiet:
        verb = "would import" if dry_run else "imported"
        stderr.print(
            f"read {summary.read} records: {summary.valid} valid, {summary.rejected} rejected; "
            f"{verb} {summary.valid if dry_run else summary.created + summary.replaced}"
            + (
                ""
                if dry_run
                else f" ({summary.created} created, {summary.replaced} replaced, "
                f"{summary.unchanged} unchanged, {summary.existing} kept as they were)"
            ),
            markup=False,
        )
    raise typer.Exit(EXIT_OK if summary.complete else EXIT_PARTIAL)


# -- migrate ------------------------------------------------------------------------------------


@app.command()
def migrate(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    cursor: Annotated[str | None, typer.Option(help="Resume from this cursor.")] = None,
    max_batches: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many batches.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Rewrite documents of older schema versions to the current one, in resumable batches."""
    with expected_errors():
        store = settings(ctx).open_store()
        try:
            with progress_bar("migrating", quiet) as advance:
                summary = bulk.migrate_documents(
                    store, batch=batch, cursor=cursor, max_batches=max_batches, progress=advance
                )
        finally:
            store.close()
    for problem in summary.problems:
        stderr.print(f"failed {problem}", markup=False)
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only.")] = False,
) -> None:
    """Fix specs with more than one home or a disagreeing location record.

    The rule: settle interrupted moves; drop location records that point at nothing; keep the
    copy with the highest rev (ties: the one the location record names, then a cell copy over
    the api copy) and remove the others. Exit 1 if a key was skipped
    (it holds something that is not a spec) or, with --dry-run, if anything needs repair.
    """
    with expected_errors():
        store = settings(ctx).open_store()
        try:
            report = bulk.repair(store, dry_run=dry_run)
        finally:
            store.close()
    for plan in report.plans:
        typer.echo(f"{plan.instance_uuid}: {plan.describe()}")
    for problem in report.problems:
        stderr.print(f"skipped {problem}", markup=False)
    verb = "need repair" if dry_run else "repaired"
    typer.echo(
        f"checked {report.checked} instances: {report.found} {verb}, {report.skipped} skipped"
    )
    partial = report.skipped or (dry_run and report.found)
    raise typer.Exit(EXIT_PARTIAL if partial else EXIT_OK)


# -- stats --------------------------------------------------------------------------------------


@app.command()
def stats(
    ctx: typer.Context,
    sample: Annotated[
        int, typer.Option(min=0, help="Keys per store sampled with MEMORY USAGE.")
    ] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Spec counts per store and per schema version, and memory used (sampled)."""
    with expected_errors():
        store = settings(ctx).open_store()
        try:
            result = bulk.collect_stats(store, sample=sample)
        finally:
            store.close()
    rows: dict[str, Any] = {
        name: {
            "count": s.count,
            "schemas": dict(s.schemas),
            "sampled": s.sampled,
            "estimated_bytes": s.estimated_bytes,
        }
        for name, s in sorted(result.items())
    }
    if as_json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table("store", "specs", "schema versions", "memory (est.)")
    for name, row in rows.items():
        versions = ", ".join(f"{k}: {v}" for k, v in sorted(row["schemas"].items()))
        memory = "n/a" if row["estimated_bytes"] is None else f"{row['estimated_bytes']:,} B"
        table.add_row(name, str(row["count"]), versions, memory)
    Console(file=cast(IO[str], sys.stdout)).print(table)


def main() -> None:
    app()
