"""Start and stop a throwaway 3-master Redis Cluster on loopback."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from tests.support.redis_server import RedisServer, require_binary
from tests.support.tcp_proxy import TcpProxy


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

    def node_id(self, server: RedisServer) -> str:
        return str(_cluster(server, "MYID"), "ascii")

    def announced_port(self, server: RedisServer) -> int:
        """The port the cluster tells clients to reach ``server`` on (CLUSTER SLOTS, MOVED)."""
        return server.port

    def owner(self, slot: int) -> RedisServer:
        """The master serving ``slot`` (asked of the first node)."""
        for start, end, (_, port, *_) in _cluster(self.servers[0], "SLOTS"):
            if start <= slot <= end:
                return next(s for s in self.servers if self.announced_port(s) == int(port))
        raise LookupError(f"slot {slot} is not served")

    def slot_ranges(self, server: RedisServer) -> list[tuple[int, int]]:
        """The (first, last) slot ranges ``server`` serves (asked of the first node)."""
        port = self.announced_port(server)
        return [
            (int(start), int(end))
            for start, end, (_, owner, *_) in _cluster(self.servers[0], "SLOTS")
            if int(owner) == port
        ]

    def other_master(self, server: RedisServer) -> RedisServer:
        return next(s for s in self.servers if s is not server)

    @contextlib.contextmanager
    def migrating(self, slot: int, target: RedisServer) -> Iterator[SlotMigration]:
        """``slot`` opened for migration to ``target`` (IMPORTING / MIGRATING); on leaving the
        block every key still left is moved and the slot is handed over (SETSLOT NODE), so a
        failing test never leaves the session cluster half resharded."""
        source = self.owner(slot)
        if source is target:
            raise ValueError("the slot already lives on the target")
        migration = SlotMigration(self, slot, source, target)
        _cluster(target, "SETSLOT", slot, "IMPORTING", self.node_id(source))
        _cluster(source, "SETSLOT", slot, "MIGRATING", self.node_id(target))
        try:
            yield migration
        finally:
            migration.move_all()
            target_id = self.node_id(target)
            for server in (target, source, *(s for s in self.servers if s not in (source, target))):
                _cluster(server, "SETSLOT", slot, "NODE", target_id)
            self._wait_slot_agreed(slot, target)

    def move_slot(self, slot: int, target: RedisServer) -> None:
        """Reshard ``slot`` (and its keys) to ``target``, as ``redis-cli --cluster reshard``."""
        with self.migrating(slot, target):
            pass

    def _wait_slot_agreed(self, slot: int, target: RedisServer, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = set()
            for server in self.servers:
                for start, end, (_, port, *_) in _cluster(server, "SLOTS"):
                    if start <= slot <= end:
                        owners.add(int(port))
            if owners == {self.announced_port(target)}:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the masters do not agree that slot {slot} moved")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class SlotMigration:
    """A slot between CLUSTER SETSLOT IMPORTING/MIGRATING and SETSLOT NODE."""

    cluster: RedisClusterNodes
    slot: int
    source: RedisServer
    target: RedisServer

    def move_keys(self, keys: list[str]) -> int:
        """MIGRATE those of ``keys`` that still live on the source; how many there were.

        (The source answers ASK for any key it no longer holds, so it is not asked which.)
        """
        client = self.source.client()
        try:
            before = int(command(client, "CLUSTER", "COUNTKEYSINSLOT", self.slot))
            command(client, "MIGRATE", "127.0.0.1", self.target.port, "", 0, 5000, "KEYS", *keys)
            return before - int(command(client, "CLUSTER", "COUNTKEYSINSLOT", self.slot))
        finally:
            client.close()

    def move_all(self) -> None:
        client = self.source.client()
        try:
            while keys := command(client, "CLUSTER", "GETKEYSINSLOT", self.slot, 100):
                self.move_keys([k.decode() for k in keys])
        finally:
            client.close()


@dataclass
class ProxiedCluster(RedisClusterNodes):
    """A cluster whose every node sits behind its own :class:`TcpProxy` and announces the
    proxy's address (``cluster-announce-ip``/``-port``; the cluster bus stays direct), so each
    connection a cluster client opens -- to the startup node, to the nodes CLUSTER SLOTS names,
    after a MOVED -- goes through a proxy. Tests talk to the nodes directly (:meth:`admin`)."""

    proxies: list[TcpProxy] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.proxies[0].port}"

    def announced_port(self, server: RedisServer) -> int:
        return self.proxy_of(server).port

    def proxy_of(self, server: RedisServer) -> TcpProxy:
        return self.proxies[self.servers.index(server)]

    def admin(self) -> RedisCluster:
        """A cluster client reaching the nodes directly (the proxies' ports mapped back)."""
        direct = {self.announced_port(s): s.port for s in self.servers}
        return RedisCluster(
            host="127.0.0.1",
            port=self.servers[0].port,
            address_remap=lambda address: (address[0], direct.get(address[1], address[1])),
        )

    def wait_ok(self, timeout: float = 15.0) -> None:
        """Until every node says cluster_state:ok (a restarted master waits about 2 s)."""
        _wait_ok(self.servers, timeout)

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        super().stop()


def command(client: redis.Redis | Any, *args: object) -> Any:
    """One raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)


def _cluster(server: RedisServer, *args: object) -> Any:
    client = server.client()
    try:
        return command(client, "CLUSTER", *args)
    finally:
        client.close()


def uuids_in_slot(slot: int, count: int) -> list[str]:
    """``count`` random instance UUIDs whose hash tag falls in ``slot``."""
    found: list[str] = []
    while len(found) < count:
        candidate = str(uuid.uuid4())
        if key_slot(candidate.encode()) == slot:
            found.append(candidate)
    return found


def slot_of(instance_uuid: str) -> int:
    """The slot every key of the instance hashes to (its hash tag is the UUID)."""
    return key_slot(instance_uuid.encode())


def start_cluster(masters: int = 3, timeout: float = 30.0) -> RedisClusterNodes:
    workdir = Path(tempfile.mkdtemp(prefix="specstore-cluster-"))
    servers = [_node(port, workdir, []) for port in free_cluster_ports(masters)]
    return _create(RedisClusterNodes(servers, workdir), timeout)


def start_proxied_cluster(
    masters: int = 3, extra_args: list[str] | None = None, timeout: float = 30.0
) -> ProxiedCluster:
    """A cluster of :class:`ProxiedCluster` (``extra_args``: more redis-server options)."""
    workdir = Path(tempfile.mkdtemp(prefix="specstore-cluster-"))
    proxies: list[TcpProxy] = []
    servers: list[RedisServer] = []
    try:
        for _ in range(masters):  # listening first, so that no node port is taken by them
            proxies.append(TcpProxy(0))
        for port, proxy in zip(free_cluster_ports(masters), proxies, strict=True):
            proxy.upstream = ("127.0.0.1", port)
            announce = [
                "--cluster-announce-ip",
                "127.0.0.1",
                "--cluster-announce-port",
                str(proxy.port),
                "--cluster-announce-bus-port",  # (else it would be the proxy's port + 10000)
                str(port + 10000),
            ]
            servers.append(_node(port, workdir, [*announce, *(extra_args or [])]))
    except BaseException:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return _create(ProxiedCluster(servers, workdir, proxies), timeout)


def _node(port: int, workdir: Path, extra_args: list[str]) -> RedisServer:
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
            *extra_args,
        ],
    )
    server.start()
    return server


_Nodes = TypeVar("_Nodes", bound=RedisClusterNodes)


def _create(nodes: _Nodes, timeout: float) -> _Nodes:
    """``redis-cli --cluster create`` over the started nodes (stopped again on failure)."""
    try:
        cli = require_binary("redis-cli")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{s.port}" for s in nodes.servers),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        _wait_ok(nodes.servers, timeout)
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
