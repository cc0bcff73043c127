"""The console script's logs (-v/--verbose, --log-format json, before or after the
subcommand) and ``stats --format prometheus``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import redis

from specstore import RequestContext, SpecStore
from tests.factories import typical_spec
from tests.support.cli import run_cli

pytestmark = pytest.mark.redis


def fill(url: str, count: int) -> None:
    with SpecStore.from_url(url) as store:
        ctx = RequestContext(store=store)
        for _ in range(count):
            store.create(ctx, typical_spec())


def test_stats_in_the_prometheus_text_format(url: str) -> None:
    fill(url, 3)
    result = run_cli("stats", "--format", "prometheus", url=url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "# TYPE specstore_specs gauge" in lines
    assert 'specstore_specs{store="api"} 3' in lines
    assert any(re.fullmatch(r'specstore_specs_by_schema\{store="api",schema="[^"]+"\} 3', line)
               for line in lines)
    assert any(line.startswith('specstore_memory_estimated_bytes{store="api"} ') for line in lines)
    for line in lines:
        assert line.startswith("# ") or re.fullmatch(r"specstore_\w+\{[^}]*\} \d+", line), line
    as_json = run_cli("stats", "--format", "json", url=url)
    assert json.loads(as_json.stdout)["api"]["count"] == 3


def test_quiet_by_default_verbose_before_or_after_the_subcommand(url: str) -> None:
    fill(url, 1)
    quiet = run_cli("stats", "--json", url=url)
    assert quiet.returncode == 0 and "store api on" not in quiet.stderr
    before = run_cli("-v", "stats", "--json", url=url)
    after = run_cli("stats", "--json", "--verbose", url=url)
    for result in (before, after):
        assert result.returncode == 0, result.stderr
        assert "INFO: specstore.cli: store api on redis://127.0.0.1:" in result.stderr


def test_a_foreign_key_skipped_is_a_warning_in_json(url: str, tmp_path: Path) -> None:
    fill(url, 1)
    client = redis.Redis.from_url(url)
    foreign = "specstore:api:spec:{6f1a5c2e-0d1b-4a36-9b55-0c3f6a9e2b11}"
    client.set(foreign, "not ours")
    client.close()
    for args in (
        ["export", "-o", str(tmp_path / "out.jsonl"), "--log-format", "json"],
        ["--log-format", "json", "export", "-o", str(tmp_path / "out.jsonl")],
    ):
        result = run_cli(*args, url=url)
        logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        (warning,) = [line for line in logged if line["level"] == "warning"]
        assert warning["logger"] == "specstore" and foreign in warning["message"]
        assert set(warning) == {"time", "level", "logger", "message"}
