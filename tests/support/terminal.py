"""Run the console script with some of its standard streams on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.cli import clean_env, specstore_cmd

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class TerminalRun:
    returncode: int
    terminal: str
    """Everything written to the terminal, ANSI control sequences removed."""
    stdout: bytes
    """stdout when it was not the terminal."""


def run_on_terminal(
    *args: str,
    url: str | None,
    tmp_path: Path,
    stdout_on_terminal: bool = False,
    stdin_on_terminal: bool = False,
    typed: bytes = b"",
    timeout: float = 120,
) -> TerminalRun:
    """Run ``specstore *args`` with stderr (and optionally stdout/stdin) on a pty."""
    master, slave = pty.openpty()
    out_path = tmp_path / "stdout.bin"
    env = clean_env(url, {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
    with out_path.open("wb") as out_file:
        process = subprocess.Popen(
            [specstore_cmd(), *args],
            stdin=slave if stdin_on_terminal else subprocess.DEVNULL,
            stdout=slave if stdout_on_terminal else out_file,
            stderr=slave,
            env=env,
            close_fds=True,
        )
    os.close(slave)
    if typed:
        time.sleep(0.5)
        os.write(master, typed)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    text = _ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return TerminalRun(returncode, text, out_path.read_bytes())
