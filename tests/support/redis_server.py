"""Start and stop throwaway redis-server processes on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis


def require_binary(name: str) -> str:
    """Path of ``name``; in CI a missing binary fails the test, elsewhere it skips it."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH; tests that need a real Redis cannot run"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A redis-server we started (and so may flush, kill and restart)."""

    port: int
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = require_binary("redis-server")
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "no",
            "--logfile",
            str(self.workdir / "redis.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while True:
            try:
                if client.ping():
                    client.close()
                    return
            except redis.RedisError:
                pass
            if self.process is not None and self.process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited early: {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} not ready")
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def discard(self, kill: bool = False) -> None:
        """Stop the server for good and remove its working directory."""
        self.stop(kill=kill)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_server(extra_args: list[str] | None = None) -> RedisServer:
    server = RedisServer(
        free_port(), Path(tempfile.mkdtemp(prefix="specstore-redis-")), list(extra_args or [])
    )
    server.start()
    return server
