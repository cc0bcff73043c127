"""Fixtures: stores on fakeredis and on a real redis-server started for the session."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator

import pytest
from hypothesis import core, settings

from specstore import RequestContext, SpecStore
from tests.support.redis_cluster import RedisClusterNodes, start_cluster
from tests.support.redis_server import RedisServer, start_server
from tests.support.through_async import ThroughAsync

_memory_names = itertools.count()

SEED_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Give hypothesis a fresh seed per run when the loaded profile is derandomized (its
    ``ci`` profile, loaded automatically under CI, would replay the same examples on every
    run); ``HYPOTHESIS_SEED`` fixes the seed (to replay a failed run) anywhere. Otherwise
    hypothesis draws its own seeds and keeps its example database."""
    if config.getoption("hypothesis_seed", None) is not None:
        config.stash[SEED_KEY] = f"{config.getoption('hypothesis_seed')} (--hypothesis-seed)"
        return
    chosen = os.environ.get("HYPOTHESIS_SEED", "").strip()
    current = settings.get_profile(settings.get_current_profile_name())
    if not chosen and not current.derandomize:
        config.stash[SEED_KEY] = "random per test (set HYPOTHESIS_SEED=<n> to fix one)"
        return
    seed = int(chosen) if chosen else random.SystemRandom().randrange(2**32)
    settings.register_profile("specstore-seeded", current, derandomize=False)
    settings.load_profile("specstore-seeded")
    core.global_force_seed = seed  # type: ignore[assignment]  # what --hypothesis-seed sets
    config.stash[SEED_KEY] = f"{seed} (replay with HYPOTHESIS_SEED={seed})"


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis seed: {config.stash.get(SEED_KEY, 'unset')}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, no persistence; flushed per test."""
    server = start_server()
    yield server
    server.discard()


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server, emptied for the test."""
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def real_store(url: str) -> Iterator[SpecStore]:
    store = SpecStore.from_url(url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A real 3-master Redis Cluster on loopback; flushed per test."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_store(redis_cluster: RedisClusterNodes) -> Iterator[SpecStore]:
    redis_cluster.flush()
    store = SpecStore.from_url(redis_cluster.url)
    yield store
    store.close()


@pytest.fixture
def memory_store() -> SpecStore:
    return SpecStore.from_url(f"memory://test-{next(_memory_names)}")


@pytest.fixture
def memory_async_store() -> Iterator[SpecStore]:
    store = ThroughAsync.on(f"memory://test-{next(_memory_names)}")
    yield store
    store.close()


@pytest.fixture
def real_async_store(url: str) -> Iterator[SpecStore]:
    store = ThroughAsync.on(url)
    yield store
    store.close()


@pytest.fixture
def cluster_async_store(redis_cluster: RedisClusterNodes) -> Iterator[SpecStore]:
    redis_cluster.flush()
    store = ThroughAsync.on(redis_cluster.url)
    yield store
    store.close()


STORE_FIXTURES = {
    "fakeredis": "memory_store",
    "redis": "real_store",
    "cluster": "cluster_store",
    "fakeredis-async": "memory_async_store",
    "redis-async": "real_async_store",
    "cluster-async": "cluster_async_store",
}
"""Store kinds -> their fixtures; an ``-async`` kind is the AsyncSpecStore (driven through
:class:`tests.support.through_async.ThroughAsync`)."""

BOTH_STORES = [
    "fakeredis",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.cluster),
    "fakeredis-async",
    pytest.param("redis-async", marks=pytest.mark.redis),
    pytest.param("cluster-async", marks=pytest.mark.cluster),
]
"""The params of a suite that runs against both the sync and the asyncio store."""


def store_of_kind(request: pytest.FixtureRequest) -> SpecStore:
    result: SpecStore = request.getfixturevalue(STORE_FIXTURES[request.param])
    return result


@pytest.fixture(
    params=[
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
def store(request: pytest.FixtureRequest) -> SpecStore:
    """The same store tests run on fakeredis, a real redis-server and a real Redis Cluster."""
    return store_of_kind(request)


@pytest.fixture
def ctx(store: SpecStore) -> RequestContext:
    return RequestContext(project_id="project-1", user_id="user-1", store=store)
