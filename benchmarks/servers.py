"""Throwaway redis-server processes (and a 3-master cluster) on free loopback ports, for the
benchmarks; like the test suite's fixtures, without pytest (benchmarks import nothing from
tests/). A server may be given another binary and modules (``--loadmodule``)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def require_binary(name: str) -> str:
    """Path of ``name``; RuntimeError when it is not on PATH."""
    path = shutil.which(name)
    if path:
        return path
    raise RuntimeError(f"{name} is not on PATH")


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
    binary: str | None = None
    wrapper: list[str] = field(default_factory=list)
    """A command the server runs under (``valgrind --tool=callgrind ...``)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = self.binary or require_binary("redis-server")
        args = [
            *self.wrapper,
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


def start_server(
    extra_args: list[str] | None = None,
    binary: str | None = None,
    wrapper: list[str] | None = None,
    timeout: float = 10.0,
) -> RedisServer:
    server = RedisServer(
        free_port(),
        Path(tempfile.mkdtemp(prefix="specstore-bench-redis-")),
        list(extra_args or []),
        binary=binary,
        wrapper=list(wrapper or []),
    )
    try:
        server.start(timeout)
    except BaseException:
        server.discard()
        raise
    return server


# -- a 3-master cluster ---------------------------------------------------------------------


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + 10000):  # the cluster bus listens on port + 10000
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and _port_pair_free(port):
            ports.append(port)
    return ports


@dataclass
class RedisClusterNodes:
    servers: list[RedisServer]
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def flush(self) -> None:
        for server in self.servers:
            client = server.client()
            client.flushall()
            client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_cluster(masters: int = 3, timeout: float = 30.0) -> RedisClusterNodes:
    cli = require_binary("redis-cli")
    workdir = Path(tempfile.mkdtemp(prefix="specstore-cluster-"))
    servers: list[RedisServer] = []
    for port in free_cluster_ports(masters):
        node_dir = workdir / str(port)
        node_dir.mkdir()
        server = RedisServer(
            port,
            node_dir,
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ],
        )
        server.start()
        servers.append(server)
    nodes = RedisClusterNodes(servers, workdir)
    try:
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{s.port}" for s in servers),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        _wait_ok(servers, timeout)
    except BaseException:
        nodes.stop()
        raise
    return nodes


def _wait_ok(servers: list[RedisServer], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for server in servers:
            client = redis.Redis(port=server.port)
            states.append(client.cluster("INFO").get("cluster_state") == "ok")
            client.close()
        if all(states):
            return
        time.sleep(0.2)
    raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
