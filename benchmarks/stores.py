"""The session stores under comparison, each with a counter of its round trips and bytes.

| key | store | a round trip is |
|---|---|---|
| ``mongodb`` | this library, embedded layout (default), managers from a factory on one client | a MongoDB command |
| ``mongodb-collection`` | this library, ``message_storage="collection"``, same set-up | a MongoDB command |
| ``file`` | strands' ``FileSessionManager`` on local disk | a file read, write or directory listing |
| ``s3`` | strands' ``S3SessionManager`` against moto's S3 server | an HTTP request |
| ``memory`` | no session manager: strands' own cost of the same turn | (none) |

Counting never changes what a store does: MongoDB is counted with pymongo command monitoring (the package's
``testing.CommandLog``), S3 with botocore event hooks, files with a ``FileSessionManager`` subclass that only
counts around the parent's file methods.
Bytes are payload bytes: BSON commands and replies; HTTP request/status lines, headers and bodies; file sizes.
For the MongoDB stores on the embedded server, the counters also read the server process's CPU time
(``server_cpu_ms``), and `StoreTimer` charges each ``append_message`` the server CPU spent while it ran.
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from strands.session.file_session_manager import FileSessionManager
from strands.session.repository_session_manager import RepositorySessionManager
from strands.session.s3_session_manager import S3SessionManager
from strands.session.session_manager import SessionManager
from strands.types.content import Message
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager import documents as docs
from mongodb_session_manager.pool import ConnectionCounter
from mongodb_session_manager.testing import CommandLog

from .conversation import AGENT_ID, assistant_message_closes_turn, make_agent

__all__ = [
    "EMBEDDED_NEVER_PROMOTES",
    "LARGEST_SHARED_SIZE",
    "CommandLogCounter",
    "Counter",
    "FileStore",
    "MemoryStore",
    "MongoStore",
    "S3Store",
    "Store",
    "stored_elements",
    "timed_store_calls",
]

_BULK_CHUNK = 500
_BULK_BYTES = 4 * 1024 * 1024

LARGEST_SHARED_SIZE = 5000
"""The largest history every store is measured at; longer ones run only where ``Store.max_messages`` allows."""
EMBEDDED_NEVER_PROMOTES = 1_000_000
"""``max_embedded_messages`` of the ``mongodb`` store: far above any history it is measured at, so its main-table
figures are the embedded layout's own cost (the library's default, 1,000, would move the agent out)."""

CpuClock = Callable[[], float]
"""Returns a server process's CPU seconds so far."""


class Counter:
    """Thread-safe counts of round trips and bytes, switched on only around a measured operation."""

    def __init__(self) -> None:
        """Start switched off with everything at zero."""
        self._lock = threading.Lock()
        self.active = False
        self.count_bytes = False
        self.round_trips = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.server_cpu: CpuClock | None = None
        """The server's CPU clock, when the store's server is a process of this run."""
        self._cpu_at_start = 0.0

    def start(self, count_bytes: bool) -> None:
        """Zero the counts and start counting (bytes too when ``count_bytes``: it costs CPU time)."""
        with self._lock:
            self.round_trips = self.bytes_sent = self.bytes_received = 0
            self.count_bytes = count_bytes
            self.active = True
        self._cpu_at_start = self.server_cpu() if self.server_cpu else 0.0

    def stop(self) -> dict[str, Any]:
        """Stop counting and return the counts (bytes are None when they were not counted).

        ``server_ms`` is the driver-measured time of the round trips (request sent to reply read), for stores
        that report it (``CommandLogCounter``: MongoDB command monitoring); None here. ``server_cpu_ms`` is the
        CPU time the server process used since `start`, where it can be read; None otherwise.
        """
        cpu_ms = self._server_cpu_ms()
        with self._lock:
            self.active = False
            counted = self.count_bytes
            return {
                "round_trips": self.round_trips,
                "bytes_sent": self.bytes_sent if counted else None,
                "bytes_received": self.bytes_received if counted else None,
                "server_ms": None,
                "server_cpu_ms": cpu_ms,
            }

    def _server_cpu_ms(self) -> float | None:
        """Server CPU ms since `start`, or None without a server clock."""
        if self.server_cpu is None:
            return None
        return round((self.server_cpu() - self._cpu_at_start) * 1000, 3)

    def add(self, round_trips: int = 0, sent: int = 0, received: int = 0) -> None:
        """Add to the counts when counting is on."""
        if not self.active:
            return
        with self._lock:
            self.round_trips += round_trips
            self.bytes_sent += sent
            self.bytes_received += received


class Store:
    """One session store: builds managers the way a stateless request would, and pre-populates sessions."""

    key = ""
    label = ""
    round_trip_unit = ""
    persistent = True
    max_messages: int | None = LARGEST_SHARED_SIZE
    """The longest history this store is measured at (None: every size asked for)."""
    server_cpu: CpuClock | None = None
    """The store's server process CPU clock, when this run started that process."""

    def __init__(self) -> None:
        """Create the store's counter."""
        self.counter = Counter()

    def measures(self, size: int) -> bool:
        """True when the store is measured at a history of ``size`` messages."""
        return self.max_messages is None or size <= self.max_messages

    def new_manager(self, session_id: str) -> SessionManager | None:
        """Build a session manager for ``session_id`` (what one request does); None for the memory baseline."""
        raise NotImplementedError

    def release(self, manager: SessionManager | None) -> None:
        """Let go of a manager at the end of a request."""

    def populate(self, session_id: str, messages: list[Message]) -> None:
        """Create the session and its agent, then store ``messages`` through the store's own message API."""
        raise NotImplementedError

    def stored_bytes(self, session_id: str) -> int | None:
        """Bytes the store holds for the session, when it can tell."""
        return None

    def set_window(self, session_id: str, removed_message_count: int) -> None:
        """Store the state strands' default ``SlidingWindowConversationManager`` leaves after trimming the history.

        Goes through the store's own ``read_agent``/``update_agent``.
        """
        manager = self.new_manager(session_id)
        assert isinstance(manager, RepositorySessionManager)
        try:
            repository = manager.session_repository
            agent = repository.read_agent(session_id, AGENT_ID)
            assert agent is not None
            agent.conversation_manager_state = {
                "__name__": "SlidingWindowConversationManager",
                "removed_message_count": removed_message_count,
                "model_call_count": 0,
            }
            repository.update_agent(session_id, agent)
        finally:
            self.release(manager)

    def close(self) -> None:
        """Release clients and temporary data."""

    def describe(self) -> dict[str, Any]:
        """Label, unit and the longest history measured, for the report."""
        return {
            "label": self.label,
            "round_trip_unit": self.round_trip_unit,
            "persistent": self.persistent,
            "max_messages": self.max_messages,
        }

    def _create_agent(self, session_id: str) -> SessionManager:
        """Create the session and an empty agent through a real ``Agent`` (the store's own code path)."""
        manager = self.new_manager(session_id)
        make_agent(manager)
        assert manager is not None
        return manager


# --------------------------------------------------------------------------------------------- MongoDB


class CommandLogCounter(Counter):
    """A ``Counter`` read from a ``CommandLog``: the MongoDB round trips, bytes and wire time since ``start``."""

    def __init__(self, log: CommandLog) -> None:
        """Count what ``log`` records (it watches every client of the store)."""
        super().__init__()
        self.log = log
        self._at_start = self._totals()

    def _totals(self) -> tuple[int, int, int, float]:
        log = self.log
        return log.round_trips, log.bytes_sent, log.reply_bytes, log.seconds

    def start(self, count_bytes: bool) -> None:
        """Note where the log stands and measure sizes too when ``count_bytes``."""
        self.log.count_bytes = count_bytes
        self._at_start = self._totals()
        super().start(count_bytes)

    def stop(self) -> dict[str, Any]:
        """Return what the log recorded since ``start`` (bytes are None when they were not counted)."""
        cpu_ms = self._server_cpu_ms()
        self.active = False
        counted = self.log.count_bytes
        self.log.count_bytes = False  # the set-up between measurements is not measured
        round_trips, sent, received, seconds = (
            now - then for now, then in zip(self._totals(), self._at_start, strict=True)
        )
        return {
            "round_trips": round_trips,
            "bytes_sent": sent if counted else None,
            "bytes_received": received if counted else None,
            "server_ms": round(seconds * 1000, 3),
            "server_cpu_ms": cpu_ms,
        }


def stored_elements(messages: list[Message], first_id: int = 0) -> list[dict[str, Any]]:
    """The array elements ``create_message`` stores for ``messages``, with the turn metrics the manager adds."""
    elements = []
    for offset, message in enumerate(messages):
        element = docs.message_document(SessionMessage.from_message(message, first_id + offset))
        if assistant_message_closes_turn(message):
            usage = message.get("metadata", {}).get("usage", {})
            element["event_loop_metrics"] = {
                "accumulated_metrics": {"latencyMs": 1},
                "accumulated_usage": {k: usage.get(k, 0) for k in ("inputTokens", "outputTokens", "totalTokens")},
            }
        elements.append(element)
    return elements


class MongoStore(Store):
    """This library: managers from a ``MongoDBSessionManagerFactory`` on one shared, monitored client.

    ``message_storage`` picks the layout of the store's agents: ``"embedded"`` (key ``mongodb``, with
    ``max_embedded_messages`` so high that no measured agent is moved out) or ``"collection"`` (key
    ``mongodb-collection``, measured at every size asked for, 20,000 messages included).
    """

    round_trip_unit = "MongoDB command"

    def __init__(
        self,
        uri: str,
        message_storage: str = docs.EMBEDDED,
        server_cpu: CpuClock | None = None,
        max_embedded_messages: int = EMBEDDED_NEVER_PROMOTES,
    ) -> None:
        """Connect one client for the whole run and build the factory on it.

        Args:
            uri: The MongoDB to measure.
            message_storage: The layout of the store's agents (``"embedded"`` or ``"collection"``).
            server_cpu: The server process's CPU clock (see ``servers.process_cpu_seconds``), when it can be read.
            max_embedded_messages: The embedded layout's promotion threshold for the store's managers.
        """
        super().__init__()
        self.message_storage = message_storage
        self.max_embedded_messages = max_embedded_messages
        if message_storage == docs.COLLECTION:
            self.key = "mongodb-collection"
            self.label = 'mongodb-session-manager, message_storage="collection" (one document per message)'
            self.max_messages = None
        else:
            self.key = "mongodb"
            self.label = "mongodb-session-manager, embedded layout (the default; never promoted in the size table)"
        self.uri = uri
        self.database_name = f"msm_bench_{uuid.uuid4().hex[:8]}"
        self.collection_name = "sessions"
        self.commands = CommandLog(count_bytes=False)
        self.counter = CommandLogCounter(self.commands)
        self.counter.server_cpu = server_cpu
        self.server_cpu = server_cpu
        self.connections = ConnectionCounter()
        self.client: MongoClient[Any] = MongoClient(
            uri, tz_aware=True, event_listeners=[self.commands, self.connections]
        )
        self.factory = MongoDBSessionManagerFactory(
            client=self.client, database_name=self.database_name, collection_name=self.collection_name
        )

    @property
    def sessions(self) -> Any:
        """The session collection (one document per session)."""
        return self.client[self.database_name][self.collection_name]

    @property
    def message_documents(self) -> Any:
        """The collection layout's message collection, ``<collection>.messages``."""
        return self.client[self.database_name][docs.messages_collection_name(self.collection_name)]

    def layout_options(self) -> dict[str, Any]:
        """The manager arguments that select this store's layout."""
        return {"message_storage": self.message_storage, "max_embedded_messages": self.max_embedded_messages}

    def new_manager(self, session_id: str, **options: Any) -> MongoDBSessionManager:
        """A manager from the factory (no new connection); ``options`` override the store's layout arguments."""
        return self.factory.create_session_manager(session_id, **{**self.layout_options(), **options})

    def new_own_connection_manager(self, session_id: str, connections: ConnectionCounter) -> MongoDBSessionManager:
        """A manager with its own client, as a naive stateless request would build it (closed on release)."""
        return MongoDBSessionManager(
            session_id,
            connection_string=self.uri,
            database_name=self.database_name,
            collection_name=self.collection_name,
            event_listeners=[self.commands, connections],
            **self.layout_options(),
        )

    def release(self, manager: SessionManager | None) -> None:
        """Close the manager (a borrowed client stays open)."""
        if isinstance(manager, MongoDBSessionManager):
            manager.close()

    def populate(self, session_id: str, messages: list[Message]) -> None:
        """Create session and agent through a real ``Agent``, then store the messages in a few bulk writes.

        The stored elements are what ``create_message`` writes (``documents.message_document``) plus the turn
        metrics the manager adds to each turn's closing assistant message: pushed onto the agent's array in
        chunks of 500 (embedded layout), or inserted as ``documents.message_row`` documents in chunks of 500
        (collection layout, whose agent the real ``Agent`` created with the marker). Writing them in chunks
        instead of one command per message only makes the set-up faster.
        """
        manager = self._create_agent(session_id)
        try:
            if self.message_storage == docs.COLLECTION:
                self.insert_rows(session_id, stored_elements(messages))
            else:
                self.push_elements(session_id, stored_elements(messages))
        finally:
            self.release(manager)

    def push_elements(
        self,
        session_id: str,
        elements: list[dict[str, Any]],
        max_count: int = _BULK_CHUNK,
        max_bytes: int = _BULK_BYTES,
    ) -> None:
        """Append stored message elements to the benchmark agent's array, in chunks of ``max_count`` / ``max_bytes``."""
        path = docs.messages_path(AGENT_ID)
        for chunk in _chunks(elements, max_count, max_bytes):
            result = self.sessions.update_one({"_id": session_id}, {"$push": {path: {"$each": chunk}}})
            if result.matched_count != 1:
                raise RuntimeError(f"session {session_id} was not created")

    def insert_rows(self, session_id: str, elements: list[dict[str, Any]]) -> None:
        """Insert stored message elements as message documents of the benchmark agent (collection layout)."""
        rows = [docs.message_row(session_id, AGENT_ID, element) for element in elements]
        for chunk in _chunks(rows, _BULK_CHUNK, _BULK_BYTES):
            self.message_documents.insert_many(chunk, ordered=True)

    def agent_layout(self, session_id: str, agent_id: str = AGENT_ID) -> str:
        """The layout the session document records for the agent: ``"collection"`` or ``"embedded"``."""
        path = docs.message_storage_path(agent_id)
        document = self.sessions.find_one({"_id": session_id}, {path: 1})
        return docs.COLLECTION if docs.get_path(document, path) == docs.COLLECTION else docs.EMBEDDED

    def message_count(self, session_id: str, agent_id: str = AGENT_ID) -> dict[str, int]:
        """How many messages the agent has in each layout (a check that every message is stored exactly once)."""
        path = docs.messages_path(agent_id)
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {"$project": {"n": {"$size": {"$ifNull": [f"${path}", []]}}}},
        ]
        row: dict[str, Any] = next(iter(self.sessions.aggregate(pipeline)), {})
        embedded = row.get("n", 0)
        documents = self.message_documents.count_documents({"session_id": session_id, "agent_id": agent_id})
        ids = self.message_documents.distinct("message_id", {"session_id": session_id, "agent_id": agent_id})
        return {"embedded": int(embedded), "documents": documents, "distinct_ids": len(ids)}

    def document_bytes(self, session_id: str) -> int | None:
        """The session document's BSON size."""
        raw = self.client[self.database_name].get_collection(
            self.collection_name, codec_options=CodecOptions(document_class=RawBSONDocument)
        )
        document = raw.find_one({"_id": session_id})
        return len(document.raw) if document is not None else None

    def stored_bytes(self, session_id: str) -> int | None:
        """The session document's BSON size plus that of the session's message documents."""
        document = self.document_bytes(session_id)
        if document is None:
            return None
        raw = self.message_documents.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        return document + sum(len(row.raw) for row in raw.find({"session_id": session_id}))

    def close(self) -> None:
        """Drop the benchmark database and close the client."""
        self.factory.close()
        try:
            self.client.drop_database(self.database_name)
        finally:
            self.client.close()


def _chunks(items: list[dict[str, Any]], max_count: int, max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split documents into chunks of at most ``max_count`` documents and about ``max_bytes`` of BSON."""
    chunks: list[list[dict[str, Any]]] = [[]]
    chunk_bytes = 0
    for item in items:
        size = len(bson.encode(item))
        if chunks[-1] and (len(chunks[-1]) >= max_count or chunk_bytes + size > max_bytes):
            chunks.append([])
            chunk_bytes = 0
        chunks[-1].append(item)
        chunk_bytes += size
    return [chunk for chunk in chunks if chunk]


# --------------------------------------------------------------------------------------------- files


class _CountingFileSessionManager(FileSessionManager):
    """strands' ``FileSessionManager``, counting its file reads, writes and directory listings."""

    def __init__(self, session_id: str, storage_dir: str, counter: Counter) -> None:
        self.counter = counter
        super().__init__(session_id, storage_dir=storage_dir)

    def _read_file(self, path: str) -> dict[str, Any]:
        if self.counter.active:
            self.counter.add(round_trips=1, received=os.path.getsize(path) if self.counter.count_bytes else 0)
        return super()._read_file(path)

    def _write_file(self, path: str, data: dict[str, Any]) -> None:
        super()._write_file(path, data)
        if self.counter.active:
            self.counter.add(round_trips=1, sent=os.path.getsize(path) if self.counter.count_bytes else 0)

    def list_messages(self, session_id: str, agent_id: str, *args: Any, **kwargs: Any) -> list[SessionMessage]:
        self.counter.add(round_trips=1)  # the directory listing; each message read counts itself
        return super().list_messages(session_id, agent_id, *args, **kwargs)


class FileStore(Store):
    """strands' ``FileSessionManager`` in a temporary directory on local disk."""

    key = "file"
    label = "strands FileSessionManager (local disk)"
    round_trip_unit = "file read, write or directory listing"

    def __init__(self, storage_dir: str) -> None:
        """Store sessions under ``storage_dir``."""
        super().__init__()
        self.storage_dir = storage_dir

    def new_manager(self, session_id: str) -> FileSessionManager:
        """A new ``FileSessionManager`` (cheap: no connection)."""
        return _CountingFileSessionManager(session_id, self.storage_dir, self.counter)

    def populate(self, session_id: str, messages: list[Message]) -> None:
        """Create session and agent through a real ``Agent``, then ``create_message`` each message."""
        manager = self._create_agent(session_id)
        assert isinstance(manager, FileSessionManager)
        for message_id, message in enumerate(messages):
            manager.create_message(session_id, AGENT_ID, SessionMessage.from_message(message, message_id))

    def stored_bytes(self, session_id: str) -> int | None:
        """Total size of the session's files."""
        root = os.path.join(self.storage_dir, f"session_{session_id}")
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


# --------------------------------------------------------------------------------------------- S3


class S3Store(Store):
    """strands' ``S3SessionManager`` against moto's S3 server on 127.0.0.1."""

    key = "s3"
    label = "strands S3SessionManager (moto S3 server)"
    round_trip_unit = "HTTP request"

    def __init__(self, endpoint_url: str) -> None:
        """Create the bucket; every manager gets its own client from one shared boto3 session."""
        super().__init__()
        self.endpoint_url = endpoint_url
        self.bucket = f"msm-bench-{uuid.uuid4().hex[:8]}"
        self.boto_session = boto3.Session(
            aws_access_key_id="benchmark", aws_secret_access_key="benchmark", region_name="us-east-1"
        )
        self.boto_session.events.register("before-send.s3", self._on_send)
        self.boto_session.events.register("needs-retry.s3", self._on_response)
        self.client = self.boto_session.client("s3", endpoint_url=endpoint_url)
        self.client.create_bucket(Bucket=self.bucket)

    def _on_send(self, request: Any, **kwargs: Any) -> None:
        counter = self.counter
        if not counter.active:
            return
        size = 0
        if counter.count_bytes:
            headers = request.headers
            size = len(f"{request.method} {request.url} HTTP/1.1\r\n") + 2
            size += sum(len(str(k)) + len(str(v)) + 4 for k, v in headers.items())
            size += int(headers.get("Content-Length") or 0)
        counter.add(round_trips=1, sent=size)

    def _on_response(self, response: Any = None, **kwargs: Any) -> None:
        counter = self.counter
        if not counter.active or not counter.count_bytes or response is None:
            return
        http = response[0]
        size = len(f"HTTP/1.1 {http.status_code}\r\n") + 2
        size += sum(len(str(k)) + len(str(v)) + 4 for k, v in http.headers.items())
        size += int(http.headers.get("content-length") or 0)
        counter.add(received=size)

    def new_manager(self, session_id: str) -> S3SessionManager:
        """A new ``S3SessionManager`` (it builds its own boto3 client, from the shared session)."""
        return S3SessionManager(
            session_id, bucket=self.bucket, boto_session=self.boto_session, endpoint_url=self.endpoint_url
        )

    def populate(self, session_id: str, messages: list[Message]) -> None:
        """Create session and agent through a real ``Agent``, then ``create_message`` each (8 in parallel)."""
        manager = self._create_agent(session_id)
        assert isinstance(manager, S3SessionManager)

        def put(item: tuple[int, Message]) -> None:
            manager.create_message(session_id, AGENT_ID, SessionMessage.from_message(item[1], item[0]))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, enumerate(messages)))

    def stored_bytes(self, session_id: str) -> int | None:
        """Total size of the session's objects."""
        total = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"session_{session_id}/"):
            total += sum(item["Size"] for item in page.get("Contents", []))
        return total

    def close(self) -> None:
        """Nothing to keep: the moto server process is discarded with its data."""
        self.client.close()


# --------------------------------------------------------------------------------------------- memory


class MemoryStore(Store):
    """No persistence: the same agent and turn with no session manager, to show strands' own cost."""

    key = "memory"
    label = "no session manager (strands' own cost)"
    round_trip_unit = "(none)"
    persistent = False
    max_messages = None

    def __init__(self) -> None:
        """Keep each session's message list in memory."""
        super().__init__()
        self.sessions: dict[str, list[Message]] = {}

    def new_manager(self, session_id: str) -> None:
        """No manager."""
        return None

    def populate(self, session_id: str, messages: list[Message]) -> None:
        """Keep the messages; the agent is given this list and appends to it."""
        self.sessions[session_id] = messages


# --------------------------------------------------------------------------------------------- timing


class StoreTimer:
    """Accumulates the time an agent spends inside its session manager's hook methods.

    ``append_message`` calls are also timed one by one and, given the server's CPU clock, charged the server CPU
    spent while each ran (the server answers a command before the call returns, so that is the CPU its commands
    cost, plus whatever background work the server did meanwhile). Their medians are the per-append figures: the
    first command after a resume also pays the embedded server's deferred clean-up of the resume's big read
    (tens of ms at 5,000 messages), a cost of the read that the turn's total ``server_cpu_ms`` keeps. Python's
    cyclic garbage collector is paused during an ``append_message`` call: strands' copies of a long history
    trigger full collections (100-400 ms each at 20,000 messages) that would otherwise land in whichever call
    allocates next; paused, they run right after the call, so the turn's totals are unchanged.
    """

    _METHODS = ("initialize", "append_message", "sync_agent", "redact_latest_message")

    def __init__(self, server_cpu: CpuClock | None = None) -> None:
        """Start at zero."""
        self.server_cpu = server_cpu
        self.reset()

    def reset(self) -> None:
        """Zero every total."""
        self.seconds = 0.0
        self.append_seconds: list[float] = []
        self.append_server_cpu: list[float] = []

    def wrap(self, manager: SessionManager | None) -> None:
        """Time every hook call of ``manager`` (instance attributes shadow the methods strands' hooks call)."""
        if manager is None:
            return
        for name in self._METHODS:
            setattr(manager, name, self._timed(getattr(manager, name), appends=name == "append_message"))

    def per_append(self) -> dict[str, float | None]:
        """Median store time and server CPU of the ``append_message`` calls (ms), None when not measured."""
        return {
            "append_ms": _ms(statistics.median(self.append_seconds)) if self.append_seconds else None,
            "server_cpu_per_append_ms": (
                _ms(statistics.median(self.append_server_cpu)) if self.append_server_cpu else None
            ),
        }

    def _timed(self, method: Callable[..., Any], appends: bool) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            collecting = appends and gc.isenabled()
            if collecting:
                gc.disable()
            cpu_before = self.server_cpu() if appends and self.server_cpu else 0.0
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds += elapsed
                if appends:
                    self.append_seconds.append(elapsed)
                    if self.server_cpu:
                        self.append_server_cpu.append(self.server_cpu() - cpu_before)
                if collecting:
                    gc.enable()

        return timed


def timed_store_calls(manager: SessionManager | None, server_cpu: CpuClock | None = None) -> StoreTimer:
    """Return a ``StoreTimer`` wrapped around ``manager``'s hook methods."""
    timer = StoreTimer(server_cpu)
    timer.wrap(manager)
    return timer


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
