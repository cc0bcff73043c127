"""Start and stop a throwaway 3-master Redis Cluster on loopback."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer, require_binary


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
