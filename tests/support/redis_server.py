"""Start and stop throwaway redis-server processes on free loopback ports.

A free port can be taken by someone else between choosing it and the server binding it. So a
server counts as ready only when the process answering on the port is the one we started
(``INFO server`` ``process_id``), and every client handed out checks the answering server's
``run_id`` first: a fixture never points at -- let alone flushes -- a server it did not start.
"""

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
    run_id: str | None = None
    """``INFO server`` run_id of the process we started (None while it is not running)."""

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
        """Wait until *our* process answers on the port (another one answering does not count)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client = self.connect()
        try:
            while True:
                try:
                    info = client.info("server")
                    if info.get("process_id") == self.process.pid and client.ping():
                        self.run_id = str(info["run_id"])  # ping: refused while loading
                        return
                except redis.RedisError:
                    pass
                if self.process.poll() is not None:
                    log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server on port {self.port} exited early: {log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} not ready")
                time.sleep(0.05)
        finally:
            client.close()

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
        self.run_id = None

    def connect(self) -> redis.Redis:
        """A client of whatever answers on the port (subclasses change how to connect)."""
        return redis.Redis(port=self.port, socket_connect_timeout=1.0)

    def client(self) -> redis.Redis:
        """A client of this server; refuses when the port is answered by another server."""
        client = self.connect()
        answering = client.info("server").get("run_id")
        if self.run_id is None or answering != self.run_id:
            client.close()
            raise RuntimeError(
                f"port {self.port} is answered by redis run_id {answering}, not by the server "
                f"this fixture started ({self.run_id}); refusing to use it"
            )
        return client

    def discard(self, kill: bool = False) -> None:
        """Stop the server for good and remove its working directory."""
        self.stop(kill=kill)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_server(extra_args: list[str] | None = None, attempts: int = 5) -> RedisServer:
    """A redis-server of ours on a free port (another port is tried when one is lost)."""
    workdir = Path(tempfile.mkdtemp(prefix="specstore-redis-"))
    for attempt in range(attempts):
        server = RedisServer(free_port(), workdir, list(extra_args or []))
        try:
            server.start()
        except RuntimeError:
            server.stop(kill=True)
            if attempt + 1 == attempts:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
            continue
        return server
    raise AssertionError("unreachable")
