"""Snapshot sessions: strands' ``SnapshotSessionManager`` saving and restoring one agent on three ``Storage`` backends.

| key | storage | a round trip is |
|---|---|---|
| ``mongodb`` | this library's ``MongoDBStorage`` on the benchmark's MongoDB | a MongoDB command |
| ``file`` | strands' ``LocalFileStorage`` in a temporary directory | a file read, write, listing or deletion |
| ``s3`` | strands' ``S3Storage`` against moto's S3 server | an HTTP request |

For each history size an agent with that many messages (the scripted conversation) is saved and restored:

* **save**: ``SnapshotSessionManager.sync_agent(agent)``, the write strands makes after each turn of a
  synchronous agent call: capture the agent, serialize it to JSON, overwrite ``snapshot_latest``;
* **restore**: a new manager and a new ``Agent`` restoring the latest snapshot (what a stateless request does).

strands runs both in a fresh event loop (``run_async``), so ``MongoDBStorage`` opens a client for each of them
(it keeps one ``AsyncMongoClient`` per loop); that connection is part of the measured time, not of the round trips
(the handshake is not an application command). Counting never changes what a storage does: MongoDB through
command monitoring on the client handed to ``MongoDBStorage(client=...)`` (its per-loop copies share the
listener), S3 through the botocore hooks of `benchmarks.stores.S3Store`, files through a ``LocalFileStorage``
subclass that counts around the parent's methods.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import AsyncMongoClient
from strands.session import SnapshotSessionManager
from strands.storage import LocalFileStorage, S3Storage
from strands.storage.storage import Storage
from strands.types.content import Message

from mongodb_session_manager import MongoDBStorage
from mongodb_session_manager.testing import CommandLog

from .conversation import AGENT_ID, history, make_agent
from .stores import LARGEST_SHARED_SIZE, CommandLogCounter, Counter, CpuClock, S3Store

__all__ = [
    "FileSnapshots",
    "MongoSnapshots",
    "S3Snapshots",
    "SnapshotBackend",
    "measure_snapshots",
    "snapshot_key",
]

Log = Callable[[str], None]

_PER_PASS = ("time_ms", "round_trips", "server_ms", "server_cpu_ms")
"""Figures of every timed pass (medians reported); bytes come from the counting pass."""


def snapshot_key(session_id: str) -> str:
    """The raw storage key of the benchmark agent's ``snapshot_latest`` (strands' key layout)."""
    return f"session/{session_id}/scopes/agent/{AGENT_ID}/snapshots/snapshot_latest.json"


class SnapshotBackend:
    """One ``Storage`` under comparison, with the counter of its round trips and bytes."""

    key = ""
    label = ""
    round_trip_unit = ""

    def __init__(self, storage: Storage, counter: Counter) -> None:
        """Measure ``storage`` with ``counter``."""
        self.storage = storage
        self.counter = counter

    def manager(self, session_id: str) -> SnapshotSessionManager:
        """A new ``SnapshotSessionManager`` on this storage (strands' defaults: save after each invocation)."""
        return SnapshotSessionManager(session_id, storage=self.storage)

    def stored_bytes(self, session_id: str) -> int:
        """Size of the stored snapshot (read back through the storage, not counted)."""
        data = asyncio.run(self.storage.read(snapshot_key(session_id)))
        if data is None:
            raise AssertionError(f"{self.key}: no snapshot stored for {session_id}")
        return len(data)

    def close(self) -> None:
        """Release clients."""

    def describe(self) -> dict[str, Any]:
        """Label and unit, for the report."""
        return {"label": self.label, "round_trip_unit": self.round_trip_unit}


class MongoSnapshots(SnapshotBackend):
    """``MongoDBStorage`` on a borrowed ``AsyncMongoClient`` watched by a ``CommandLog``."""

    key = "mongodb"
    label = "this library's MongoDBStorage"
    round_trip_unit = "MongoDB command"

    def __init__(self, uri: str, server_cpu: CpuClock | None, database_name: str = "benchmark_snapshots") -> None:
        """Borrow one client (never bound to a loop: each loop strands runs gets a copy with the same listener)."""
        self.log = CommandLog(count_bytes=False)
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, event_listeners=[self.log])
        storage = MongoDBStorage(database_name=database_name, client=self.client)
        counter = CommandLogCounter(self.log)
        counter.server_cpu = server_cpu
        super().__init__(storage, counter)
        self.database_name = database_name

    def close(self) -> None:
        """Drop the benchmark database and close the storage's own clients."""

        async def drop() -> None:
            assert isinstance(self.storage, MongoDBStorage)
            client: AsyncMongoClient[dict[str, Any]] = self.client._duplicate()
            try:
                await client.drop_database(self.database_name)
            finally:
                await client.close()
            await self.storage.close()

        asyncio.run(drop())


class _CountingLocalFileStorage(LocalFileStorage):
    """strands' ``LocalFileStorage``, counting each read, write, listing and deletion (and the bytes moved)."""

    def __init__(self, base_dir: str, counter: Counter) -> None:
        super().__init__(base_dir)
        self.counter = counter

    async def write(self, key: str, data: bytes) -> None:
        await super().write(key, data)
        self.counter.add(round_trips=1, sent=len(data) if self.counter.count_bytes else 0)

    async def read(self, key: str) -> bytes | None:
        data = await super().read(key)
        self.counter.add(round_trips=1, received=len(data or b"") if self.counter.count_bytes else 0)
        return data

    async def delete(self, key: str) -> None:
        await super().delete(key)
        self.counter.add(round_trips=1)

    async def list(self, query: str = "") -> builtins.list[str]:
        keys = await super().list(query)
        self.counter.add(round_trips=1)
        return keys


class FileSnapshots(SnapshotBackend):
    """strands' ``LocalFileStorage`` in a temporary directory."""

    key = "file"
    label = "strands LocalFileStorage (local disk)"
    round_trip_unit = "file read, write, listing or deletion"

    def __init__(self, base_dir: str) -> None:
        """Store snapshots under ``base_dir``."""
        counter = Counter()
        super().__init__(_CountingLocalFileStorage(base_dir, counter), counter)


class _EndpointSession:
    """A boto3 session whose clients talk to ``endpoint_url`` (``S3Storage`` takes a session, not an endpoint)."""

    def __init__(self, session: Any, endpoint_url: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.client(*args, endpoint_url=self._endpoint_url, **kwargs)


class S3Snapshots(SnapshotBackend):
    """strands' ``S3Storage`` on moto's S3 server, counted by an `S3Store`'s botocore hooks (its own bucket)."""

    key = "s3"
    label = "strands S3Storage (moto S3 server)"
    round_trip_unit = "HTTP request"

    def __init__(self, endpoint_url: str) -> None:
        """Create a bucket and a counting boto3 session pointed at ``endpoint_url``."""
        self.s3 = S3Store(endpoint_url)
        storage = S3Storage(self.s3.bucket, boto_session=_EndpointSession(self.s3.boto_session, endpoint_url))
        super().__init__(storage, self.s3.counter)

    def close(self) -> None:
        """Close the bucket's admin client."""
        self.s3.close()


# --------------------------------------------------------------------------------------------- measuring


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _median(values: Sequence[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _save(backend: SnapshotBackend, manager: SnapshotSessionManager, agent: Any, count_bytes: bool) -> dict[str, Any]:
    """Overwrite ``snapshot_latest`` as strands does after a turn; measure it."""
    gc.collect()
    backend.counter.start(count_bytes)
    started = time.perf_counter()
    manager.sync_agent(agent)
    elapsed = time.perf_counter() - started
    return {"time_ms": _ms(elapsed), **backend.counter.stop()}


def _restore(backend: SnapshotBackend, session_id: str, expected: int, count_bytes: bool) -> dict[str, Any]:
    """A new manager and ``Agent`` restoring the latest snapshot; measure both."""
    gc.collect()
    backend.counter.start(count_bytes)
    started = time.perf_counter()
    agent = make_agent(backend.manager(session_id))
    elapsed = time.perf_counter() - started
    measured = {"time_ms": _ms(elapsed), **backend.counter.stop()}
    if len(agent.messages) != expected:
        raise AssertionError(
            f"{backend.key}: restored {len(agent.messages)} messages from a snapshot, expected {expected}"
        )
    return measured


def _summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the timed passes; bytes from the counting pass (samples[0])."""
    counting, timed = samples[0], samples[1:]
    summary: dict[str, Any] = {key: _median([s.get(key) for s in timed]) for key in _PER_PASS}
    summary["bytes_sent"] = counting["bytes_sent"]
    summary["bytes_received"] = counting["bytes_received"]
    summary["samples_ms"] = [s["time_ms"] for s in timed]
    return summary


def _populated_agent(backend: SnapshotBackend, session_id: str, messages: list[Message]) -> tuple[Any, Any]:
    """An agent holding ``messages`` under a new manager on ``backend`` (nothing stored yet), and its manager."""
    manager = backend.manager(session_id)
    agent = make_agent(manager, messages=copy.deepcopy(messages))
    return manager, agent


def measure_snapshots(
    backends: Sequence[SnapshotBackend], sizes: Sequence[int], repeats: Callable[[int], int], log: Log
) -> dict[str, Any]:
    """Snapshot save and restore per backend and history size (sizes up to 5,000 messages).

    Each size: one counting pass (bytes counted), then ``repeats(size)`` timed passes, backends interleaved.
    """
    figures: dict[str, dict[str, dict[str, Any]]] = {
        "snapshot_save": {b.key: {} for b in backends},
        "snapshot_restore": {b.key: {} for b in backends},
    }
    for size in [n for n in sizes if n <= LARGEST_SHARED_SIZE]:
        started = time.perf_counter()
        messages = history(size)
        session_id = f"snap{size}-{time.time_ns()}"
        agents = {b.key: _populated_agent(b, session_id, messages) for b in backends}
        passes = 1 + repeats(size)
        saves: dict[str, list[dict[str, Any]]] = {b.key: [] for b in backends}
        restores: dict[str, list[dict[str, Any]]] = {b.key: [] for b in backends}
        for index in range(passes):
            for backend in backends:
                manager, agent = agents[backend.key]
                saves[backend.key].append(_save(backend, manager, agent, count_bytes=index == 0))
            for backend in backends:
                restores[backend.key].append(_restore(backend, session_id, size, count_bytes=index == 0))
        for backend in backends:
            stored = backend.stored_bytes(session_id)
            figures["snapshot_save"][backend.key][str(size)] = {
                **_summarize(saves[backend.key]),
                "snapshot_bytes": stored,
            }
            restore = _summarize(restores[backend.key])
            figures["snapshot_restore"][backend.key][str(size)] = {**restore, "snapshot_bytes": stored}
        log(f"size {size}: snapshots, {passes} passes ({passes - 1} timed) in {time.perf_counter() - started:.1f} s")
    return figures
