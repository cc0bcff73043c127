"""Figure 12: Redis's own work per call, as instructions counted by callgrind in redis-server.

Figure 10 counts the client's instructions; this counts the server's. A redis-server of the
figure's own runs under ``valgrind --tool=callgrind``; around :data:`CALLS` calls of each op,
``callgrind_control --dump`` writes the instructions counted since the previous dump, so an
op's count covers exactly its calls (the server's event loop, reading the commands, running
them, writing the replies). Unlike INFO commandstats' microseconds on a shared VM, the counts
repeat from run to run.

* save: ``store.save`` (save.lua), the bare checked write of figure 11 (save.lua's three
  commands with its keys and arguments, no checks) and a SET of the hand-rolled JSON;
* create: ``store.create`` of a new spec (create.lua) and a SET of its hand-rolled JSON;
* get: ``store.get`` (HGETALL) and a GET of the hand-rolled JSON.

Opt-in (``--figures 12``): redis-server under valgrind is slow. Without ``valgrind`` and
``callgrind_control`` on PATH the figure says so on stderr and yields no rows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.floors import BARE_CHECKED_WRITE, save_argv
from benchmarks.harness import Row
from benchmarks.latency import JSON_EXCLUDE
from benchmarks.servers import RedisServer, start_server
from benchmarks.workload import BASE_SPEC, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.core.keys import API
from specstore.store import SpecStore

FIGURE = 12
CALLS = 1_000
"""Measured calls per op (fixed, not scaled: the counts stay comparable from run to run)."""
WARMUP = 50
SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.M)


class CallgrindServer:
    """A redis-server under callgrind whose counts are read dump by dump."""

    def __init__(self, valgrind: str, control: str) -> None:
        self.control = control
        self.scratch = Path(tempfile.mkdtemp(prefix="specstore-server-callgrind-"))
        self.server: RedisServer = start_server(
            wrapper=[valgrind, "--tool=callgrind",
                     f"--callgrind-out-file={self.scratch}/callgrind.out"],
            timeout=120.0,
        )
        self.dumps = 0

    def instructions(self, op: Callable[[], object], calls: int) -> int:
        """Instructions the server spent on ``calls`` calls of ``op``."""
        self._dump()
        for _ in range(calls):
            op()
        return self._dump()

    def _dump(self) -> int:
        """Dump the counts since the last dump; their total."""
        process = self.server.process
        if process is None:
            raise RuntimeError("the callgrind redis-server is not running")
        subprocess.run([self.control, "--dump", str(process.pid)], capture_output=True,
                       timeout=120, check=True)
        self.dumps += 1
        path = self.scratch / f"callgrind.out.{self.dumps}"
        deadline = time.monotonic() + 60
        while not (path.exists() and SUMMARY.search(path.read_bytes())):
            if time.monotonic() > deadline:
                raise RuntimeError(f"callgrind wrote no dump {path}")
            time.sleep(0.05)
        found = SUMMARY.search(path.read_bytes())
        return int(found.group(1)) if found else 0

    def close(self) -> None:
        self.server.discard()
        shutil.rmtree(self.scratch, ignore_errors=True)


def figure_12(calls: int = CALLS) -> list[Row]:
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        print("[bench] figure 12: valgrind / callgrind_control not on PATH; no rows",
              file=sys.stderr)
        return []
    server = CallgrindServer(valgrind, control)
    try:
        per_call = _per_call(server, calls)
    finally:
        server.close()
    note = (f"Figure 12: instructions counted by valgrind's callgrind in redis-server over "
            f"{calls} calls per op after {WARMUP} warm-up calls (callgrind_control --dump "
            "around each op), divided by the calls: the server's event loop, command reading, "
            "running and reply writing included; the client is not counted. The bare checked "
            "write is figure 11's (save.lua's three commands, no checks). Counts repeat "
            "from run to run; copying a byte counts about one instruction under valgrind.")
    return [
        Row(FIGURE, "Redis instructions per save: save.lua vs bare checked write", "instr",
            per_call["save"], per_call["bare"], "bare checked write", note=note),
        Row(FIGURE, "Redis instructions per save: bare checked write vs SET", "instr",
            per_call["bare"], per_call["set"], "SET of the hand-rolled JSON"),
        Row(FIGURE, "Redis instructions per create: create.lua vs SET", "instr",
            per_call["create"], per_call["set_new"], "SET of a new key's hand-rolled JSON"),
        Row(FIGURE, "Redis instructions per get: HGETALL vs GET", "instr", per_call["get"],
            per_call["json_get"], "GET of the hand-rolled JSON"),
    ]


def _per_call(server: CallgrindServer, calls: int) -> dict[str, float]:
    client = server.server.client()
    prefix = "bench-server-instructions"
    store = SpecStore(client, keyspace=keyspace(prefix, "ss"))
    ctx = RequestContext(store=store)
    spec = BASE_SPEC.model_copy(deep=True)
    store.create(ctx, spec)
    uid = str(spec.instance_uuid)
    home = store.keys.home_keys(API, uid)
    argv = save_argv(spec)
    bare = client.script_load(BARE_CHECKED_WRITE)
    text = spec.model_dump_json(exclude=JSON_EXCLUDE)
    json_key = f"{prefix}:json:{{{uid}}}"
    client.set(json_key, text)
    fresh = iter(spec_copies(2 * (calls + WARMUP)))
    numbers = iter(range(10**9))
    ops: dict[str, Callable[[], object]] = {
        "set": lambda: client.set(json_key, text),
        "bare": lambda: client.evalsha(bare, 2, *home, *argv),
        "save": lambda: store.save(ctx, spec),
        "create": lambda: store.create(ctx, next(fresh)),
        "set_new": lambda: client.set(f"{prefix}:new:{next(numbers)}", text),
        "get": lambda: store.get(ctx, uid),
        "json_get": lambda: client.get(json_key),
    }
    try:
        for op in ops.values():
            for _ in range(WARMUP):
                op()
        return {name: server.instructions(op, calls) / calls for name, op in ops.items()}
    finally:
        client.close()
