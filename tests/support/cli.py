"""Run the installed ``specstore`` console script as a subprocess, as an operator does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def specstore_cmd() -> str:
    """The console script of the interpreter running the tests (its venv), else on PATH."""
    beside = Path(sys.executable).parent / "specstore"
    if beside.is_file():
        return str(beside)
    path = shutil.which("specstore")
    if path is None:
        pytest.fail("the specstore console script is not installed (pip install -e .)")
    return path


def clean_env(url: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without any SPECSTORE_* setting, plus ``url`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECSTORE_")}
    env["COLUMNS"] = "100"
    if url is not None:
        env["SPECSTORE_REDIS_URL"] = url
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``specstore *args``; no traceback may ever reach stderr."""
    result = subprocess.run(
        [specstore_cmd(), *args],
        input=stdin.decode(),
        env=clean_env(url, env),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result
