"""``MongoDBStorage``: strands' unified storage on MongoDB, with the SDK subsystems that consume it.

strands' own protocol and snapshot-session tests run against it in ``tests/contract/test_storage_contract.py``;
these tests cover what they cannot: other processes, other event loops, big blobs, concurrent writers, an
outage, the commands sent, and the library's own options (compression, TTL, borrowed clients).
"""

import asyncio
import copy
import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient, MongoClient, monitoring
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from strands import Agent
from strands.session import SnapshotSessionManager
from strands.storage import InMemoryStorage
from strands.storage.search.keyword import KeywordSearchStrategy
from strands.types.exceptions import StorageError
from strands.vended_memory_stores.file_memory_store import FileMemoryStore

from mongodb_session_manager import MongoDBSessionRepository, MongoDBStorage
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "strands_storage"
MB = 1024 * 1024
CALCULATOR_SCRIPT = [{"tool": "calculator", "input": {"expression": "6 * 7"}, "id": "call-1"}, "It is 42."]


class Commands(monitoring.CommandListener):
    """Records every command a client sends (name and body), from any thread."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in {"hello", "isMaster", "ismaster", "ping", "endSessions"}:
            return
        with self._lock:
            self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sent]


class Pools(monitoring.ConnectionPoolListener):
    """Counts connection pools opened and closed (one pool per client and server)."""

    def __init__(self) -> None:
        self.created = 0
        self.closed = 0

    def pool_created(self, event: Any) -> None:
        self.created += 1

    def pool_closed(self, event: Any) -> None:
        self.closed += 1

    def pool_ready(self, event: Any) -> None: ...
    def pool_cleared(self, event: Any) -> None: ...
    def connection_created(self, event: Any) -> None: ...
    def connection_ready(self, event: Any) -> None: ...
    def connection_closed(self, event: Any) -> None: ...
    def connection_check_out_started(self, event: Any) -> None: ...
    def connection_check_out_failed(self, event: Any) -> None: ...
    def connection_checked_out(self, event: Any) -> None: ...
    def connection_checked_in(self, event: Any) -> None: ...


@pytest.fixture
def storage_for(mongo_uri: str, database_name: str) -> Callable[..., MongoDBStorage]:
    """Build a ``MongoDBStorage`` on this test's database (options as keyword arguments)."""

    def build(**options: Any) -> MongoDBStorage:
        return MongoDBStorage(mongo_uri, database_name=database_name, **options)

    return build


@pytest.fixture
def documents(client: MongoClient, database_name: str) -> Any:
    """The storage collection, read with a plain client (what a user sees in MongoDB)."""
    return client[database_name][COLLECTION]


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- the SDK on MongoDBStorage


@pytest.mark.slow
def test_a_snapshot_agent_with_tools_resumes_in_a_fresh_process(mongo_uri, database_name, storage_for):
    manager = SnapshotSessionManager("s-resume", storage=storage_for())
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel(CALCULATOR_SCRIPT),
        tools=[calculator],
        session_manager=manager,
        callback_handler=None,
    )
    agent("What is 6 * 7?")
    agent.state.set("favourite_number", 42)
    manager.sync_agent(agent)

    child = textwrap.dedent(
        """
        import json, sys
        from strands import Agent
        from strands.session import SnapshotSessionManager
        from mongodb_session_manager import MongoDBStorage
        from mongodb_session_manager.demo_model import calculator
        from mongodb_session_manager.testing import ScriptedModel

        uri, database = sys.argv[1:3]
        manager = SnapshotSessionManager("s-resume", storage=MongoDBStorage(uri, database_name=database))
        model = ScriptedModel(["You asked for 6 * 7."])
        agent = Agent(agent_id="assistant", model=model, tools=[calculator], session_manager=manager,
                      callback_handler=None)
        print(json.dumps({"messages": agent.messages, "state": agent.state.get()}))
        agent("What did I ask?")
        print(json.dumps([message["role"] for message in model.calls[0]]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child, mongo_uri, database_name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    restored, roles = (json.loads(line) for line in result.stdout.splitlines())
    assert restored == {"messages": _json(agent.messages), "state": {"favourite_number": 42}}
    assert roles == ["user", "assistant", "user", "assistant", "user"]


def test_snapshot_trigger_checkpoints_are_listed_and_restored(storage_for, documents):
    manager = SnapshotSessionManager(
        "s-trigger", storage=storage_for(), snapshot_trigger=lambda *, agent_data, **_: True
    )
    agent = Agent(
        agent_id="a", model=ScriptedModel(["one", "two", "three"]), session_manager=manager, callback_handler=None
    )
    history = []
    for prompt in ("first", "second", "third"):
        agent(prompt)
        history.append(copy.deepcopy(agent.messages))

    ids = asyncio.run(manager.list_snapshot_ids(agent))
    assert len(ids) == 3
    prefix = "session/s-trigger/scopes/agent/a/snapshots/"
    assert sorted(document["_id"] for document in documents.find({}, {"_id": 1})) == [
        *(f"{prefix}immutable_history/snapshot_{snapshot_id}.json" for snapshot_id in ids),
        f"{prefix}snapshot_latest.json",
    ]

    assert asyncio.run(manager.restore_snapshot(agent, snapshot_id=ids[0])) is True
    assert agent.messages == history[0]
    other_manager = SnapshotSessionManager("s-trigger", storage=storage_for())
    other = Agent(agent_id="a", model=ScriptedModel([]), session_manager=other_manager, callback_handler=None)
    assert other.messages == history[2]
    assert asyncio.run(other_manager.restore_snapshot(other, snapshot_id=ids[1])) is True
    assert other.messages == history[1]


@pytest.mark.asyncio
async def test_file_memory_store_on_mongodb_stores_and_finds_memories(storage_for, documents):
    store = FileMemoryStore(name="agent-memory", storage=storage_for())
    await store.add("# User preferences\nPrefers dark mode in every editor.")
    await store.add("# Deployment\nWe deploy with blue green releases.")
    await store.add("# User preferences\nWrites Python.")

    found = await FileMemoryStore(name="agent-memory", storage=storage_for()).search("which editor mode")

    assert [entry.content for entry in found] == [
        "# User preferences\nPrefers dark mode in every editor.\nWrites Python."
    ]
    assert found[0].metadata == {"path": "user-preferences.md", "score": 2.0}
    assert sorted(document["_id"] for document in documents.find({}, {"_id": 1})) == [
        "memory/agent-memory/deployment.md",
        "memory/agent-memory/user-preferences.md",
    ]


def test_agent_level_storage_routes_the_session_and_the_context_stash_to_mongodb(storage_for, documents):
    agent = Agent(
        agent_id="a1",
        model=ScriptedModel(CALCULATOR_SCRIPT),
        tools=[calculator],
        storage=storage_for(),
        session_manager=SnapshotSessionManager("s-agent"),
        context_manager="auto",
        callback_handler=None,
    )
    agent("What is 6 * 7?")

    keys = sorted(document["_id"] for document in documents.find({}, {"_id": 1}))
    assert "session/s-agent/scopes/agent/a1/snapshots/snapshot_latest.json" in keys
    stash = [key for key in keys if key.startswith("context/s-agent/scopes/agent/a1/")]
    assert "context/s-agent/scopes/agent/a1/call-1_0" in stash  # the calculator's result, kept for retrieval
    assert len(stash) >= 3  # and the text blocks of the conversation

    resumed = Agent(
        agent_id="a1",
        model=ScriptedModel([]),
        storage=storage_for(),
        session_manager=SnapshotSessionManager("s-agent"),
        context_manager="auto",
        callback_handler=None,
    )
    assert resumed.messages == agent.messages
    assert asyncio.run(resumed.context_manager.stash.retrieve("call-1_0")) == {"text": "42"}


# --------------------------------------------------------------------------- blobs


@pytest.mark.asyncio
async def test_a_40_mb_blob_round_trips_through_gridfs_and_its_file_goes_with_it(storage_for, documents, client):
    storage = storage_for()
    blob = os.urandom(40 * MB)
    await storage.write("big/blob.bin", blob)

    assert await storage.read("big/blob.bin") == blob
    document = documents.find_one({"_id": "big/blob.bin"})
    assert "data" not in document and document["length"] == 40 * MB
    files = client[documents.database.name][f"{COLLECTION}.files"]
    assert [file["_id"] for file in files.find()] == [document["file_id"]]

    await storage.write("big/blob.bin", b"small again")
    assert await storage.read("big/blob.bin") == b"small again"
    assert files.count_documents({}) == 0
    assert client[documents.database.name][f"{COLLECTION}.chunks"].count_documents({}) == 0


@pytest.mark.slow
def test_two_writers_replacing_one_key_never_produce_a_torn_read(storage_for):
    first, second = b"A" * (16 * MB), b"B" * (16 * MB)
    asyncio.run(storage_for().write("shared", first))
    done = threading.Event()

    def writer(value: bytes) -> None:
        async def replace_repeatedly() -> None:
            storage = storage_for()
            for _ in range(4):
                await storage.write("shared", value)

        asyncio.run(replace_repeatedly())

    async def read_until_done() -> list[bytes | None]:
        storage = storage_for()
        seen = []
        while not done.is_set():
            seen.append(await storage.read("shared"))
        seen.append(await storage.read("shared"))
        return seen

    writers = [threading.Thread(target=writer, args=(value,)) for value in (first, second)]
    for thread in writers:
        thread.start()

    def finish() -> None:
        for thread in writers:
            thread.join()
        done.set()

    finisher = threading.Thread(target=finish)
    finisher.start()
    reads = asyncio.run(read_until_done())
    finisher.join()

    assert reads and all(value in (first, second) for value in reads)


@pytest.mark.asyncio
async def test_a_reader_whose_gridfs_file_is_replaced_under_it_returns_the_new_value(storage_for):
    old, new = b"o" * (16 * MB), b"n" * (16 * MB)
    await storage_for().write("k", old)

    class ReplaceOnFileLookup(Commands):
        """Lets another writer replace the key after the reader read its pointer, before it opens the file."""

        replaced = False

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            super().started(event)
            if event.command_name == "find" and event.command["find"] == f"{COLLECTION}.files" and not self.replaced:
                self.replaced = True
                thread = threading.Thread(target=asyncio.run, args=(storage_for().write("k", new),))
                thread.start()
                thread.join()

    log = ReplaceOnFileLookup()
    reader = storage_for(event_listeners=[log])

    assert await reader.read("k") == new
    assert log.replaced
    key_lookups = [body for name, body in log.sent if name == "find" and body["find"] == COLLECTION]
    assert len(key_lookups) == 2  # the pointer was read again after the old file vanished


@pytest.mark.asyncio
@pytest.mark.parametrize("compress", ["gzip", "zstd"])
async def test_compressed_blobs_are_smaller_in_mongodb_and_read_back_by_any_storage(storage_for, documents, compress):
    text = b"the same sentence, over and over again. " * 5000
    await storage_for(compress=compress).write("notes.txt", text)

    document = documents.find_one({"_id": "notes.txt"})
    assert document["compression"] == compress and len(document["data"]) < len(text) / 10
    assert await storage_for().read("notes.txt") == text
    assert [result.key for result in await storage_for().search("sentence")] == ["notes.txt"]


@pytest.mark.asyncio
async def test_incompressible_blobs_are_stored_as_given(storage_for, documents):
    blob = os.urandom(4096)
    await storage_for(compress="gzip").write("random.bin", blob)
    document = documents.find_one({"_id": "random.bin"})
    assert "compression" not in document and document["data"] == blob


@pytest.mark.asyncio
async def test_zstd_without_zstandard_fails_with_how_to_install_it(storage_for, monkeypatch):
    await storage_for(compress="zstd").write("k", b"zstd " * 1000)
    monkeypatch.setitem(sys.modules, "zstandard", None)

    with pytest.raises(ImportError, match=r'pip install "mongodb-session-manager\[zstd\]"'):
        storage_for(compress="zstd")
    with pytest.raises(StorageError, match="Failed to read 'k'") as failure:
        await storage_for().read("k")
    assert isinstance(failure.value.__cause__, ImportError)


# --------------------------------------------------------------------------- expiry


@pytest.mark.asyncio
async def test_ttl_sets_expires_at_on_each_write_with_a_ttl_index(storage_for, documents):
    before = datetime.now(UTC)
    await storage_for(ttl=timedelta(minutes=5)).write("k", b"v")
    after = datetime.now(UTC)

    expires_at = documents.find_one({"_id": "k"})["expires_at"].replace(tzinfo=UTC)
    assert before + timedelta(minutes=5) <= expires_at + timedelta(milliseconds=1)
    assert expires_at <= after + timedelta(minutes=5)
    index = documents.index_information()["expires_at"]
    assert index["key"] == [("expires_at", 1)] and index["expireAfterSeconds"] == 0


@pytest.mark.asyncio
async def test_an_expired_key_is_not_read_listed_or_found_before_the_ttl_monitor_removes_it(storage_for, documents):
    storage = storage_for(ttl=60)
    await storage.write("notes/old.md", b"dark mode")
    await storage.write("notes/new.md", b"dark mode")
    documents.update_one({"_id": "notes/old.md"}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})

    assert await storage.read("notes/old.md") is None
    assert await storage.list("notes/") == ["notes/new.md"]
    assert [result.key for result in await storage.search("dark")] == ["notes/new.md"]


@pytest.mark.asyncio
async def test_a_gridfs_blob_with_a_ttl_expires_with_its_file_and_chunks(storage_for, client, database_name):
    await storage_for(ttl=300).write("big", b"x" * (16 * MB))
    database = client[database_name]
    file = database[f"{COLLECTION}.files"].find_one()
    assert file["metadata"]["key"] == "big" and "expires_at" in file["metadata"]
    assert database[f"{COLLECTION}.chunks"].count_documents({"expires_at": {"$exists": False}}) == 0
    assert database[f"{COLLECTION}.files"].index_information()["expires_at"]["expireAfterSeconds"] == 0
    assert database[f"{COLLECTION}.chunks"].index_information()["expires_at"]["expireAfterSeconds"] == 0


# --------------------------------------------------------------------------- failures


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_server_outage_raises_storage_error_after_server_selection_times_out(tmp_path):
    secantus = pytest.importorskip("secantus")
    server = secantus.SecantusDBServer(storage_path=str(tmp_path), port=0)
    server.start()
    storage = MongoDBStorage(server.uri, database_name="outage", serverSelectionTimeoutMS=500)
    stopped = False

    async def scenario() -> list[StorageError]:
        nonlocal stopped
        await storage.write("k", b"v")
        server.stop()
        stopped = True
        failures = []
        for operation in (
            storage.write("k", b"w"),
            storage.read("k"),
            storage.delete("k"),
            storage.list(""),
            storage.search("anything"),
        ):
            with pytest.raises(StorageError) as failure:
                await operation
            failures.append(failure.value)
        return failures

    try:
        failures = asyncio.run(scenario())
    finally:
        if not stopped:
            server.stop()

    assert [str(failure).split(" '")[0] for failure in failures] == [
        "Failed to write",
        "Failed to read",
        "Failed to delete",
        "Failed to list keys with prefix",
        "Failed to search",
    ]
    assert all(isinstance(failure.__cause__, ConnectionFailure) for failure in failures)
    timeouts = [failure.__cause__ for failure in failures if isinstance(failure.__cause__, ServerSelectionTimeoutError)]
    assert timeouts and all("Timeout: 0.5s" in str(timeout) for timeout in timeouts)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["", "///", "a/../b", "../etc/passwd", "a\\b"])
async def test_invalid_keys_fail_as_in_strands_own_backends(storage_for, key):
    with pytest.raises(StorageError) as expected:
        await InMemoryStorage().write(key, b"v")
    storage = storage_for()
    for operation in (storage.write(key, b"v"), storage.read(key), storage.delete(key)):
        with pytest.raises(StorageError) as failure:
            await operation
        assert str(failure.value) == str(expected.value)


def test_construction_checks_options_and_sends_nothing(storage_for):
    log = Commands()
    storage_for(event_listeners=[log], serverSelectionTimeoutMS=500, compress="gzip", ttl=5)
    assert log.sent == []
    with pytest.raises(TypeError, match="unexpected keyword argument 'colection_name'; did you mean 'collection_name'"):
        storage_for(colection_name="x")
    with pytest.raises(ValueError, match="compress must be one of"):
        storage_for(compress="lz4")
    with pytest.raises(ValueError, match="ttl must be a positive"):
        storage_for(ttl=0)


def test_the_default_database_is_the_librarys():
    import inspect

    def default(function: Callable[..., Any]) -> Any:
        return inspect.signature(function).parameters["database_name"].default

    assert default(MongoDBStorage.__init__) == default(MongoDBSessionRepository.__init__)


# --------------------------------------------------------------------------- commands sent


@pytest.mark.asyncio
async def test_each_operation_is_one_command_and_list_scans_an_id_range(storage_for, client, database_name):
    log = Commands()
    storage = storage_for(event_listeners=[log])
    await storage.write("notes/a.md", b"alpha")
    assert log.names == ["createIndexes", "findAndModify"]
    await storage.write("notes/b.md", b"beta")
    await storage.write("other/c.md", b"gamma")

    log.sent.clear()
    assert await storage.read("notes/a.md") == b"alpha"
    assert await storage.list("notes/") == ["notes/a.md", "notes/b.md"]
    await storage.delete("notes/b.md")
    await storage.write("notes/a.md", b"alpha 2")
    assert log.names == ["find", "find", "findAndModify", "findAndModify"]

    listing = log.sent[1][1]
    assert listing["filter"]["_id"] == {"$gte": "notes/", "$lt": "notes0"}
    assert "$regex" not in json.dumps(listing, default=str)
    explained = client[database_name].command(
        "explain", {key: listing[key] for key in ("find", "filter", "projection", "sort", "hint")}
    )
    assert '"IXSCAN"' in json.dumps(explained["queryPlanner"]["winningPlan"], default=str)
    assert '"keyPattern": {"_id": 1}' in json.dumps(explained["queryPlanner"]["winningPlan"], default=str)


@pytest.mark.asyncio
async def test_search_is_one_aggregation_over_the_word_indexes(storage_for, client, database_name):
    log = Commands()
    storage = storage_for(event_listeners=[log])
    await storage.write("notes/dark-mode.md", b"enable dark mode in settings")
    await storage.write("notes/deploy.md", b"deploy to production")

    log.sent.clear()
    results = await storage.namespace("notes").search("the dark mode")

    assert [(result.key, result.score, result.data) for result in results] == [
        ("dark-mode.md", 2.0, b"enable dark mode in settings")
    ]
    assert log.names == ["aggregate"]
    assert {"terms", "key_terms", "scan"} <= set(client[database_name][COLLECTION].index_information())


@pytest.mark.asyncio
async def test_search_finds_text_in_gridfs_blobs_by_reading_them(storage_for):
    storage = storage_for()
    await storage.write("big.txt", b"haystack " * (2 * MB) + b"needle")
    await storage.write("small.txt", b"a needle and a haystack")

    results = await storage.search("needle haystack")

    assert [(result.key, result.score) for result in results] == [("big.txt", 2.0), ("small.txt", 2.0)]


# --------------------------------------------------------------------------- event loops and clients


def test_one_storage_serves_many_event_loops_and_closes_each_loops_client(storage_for):
    pools = Pools()
    storage = storage_for(event_listeners=[pools])

    async def write_and_read(key: str) -> bytes | None:
        await storage.write(key, key.encode())
        return await storage.read(key)

    assert [asyncio.run(write_and_read(f"k{index}")) for index in range(3)] == [b"k0", b"k1", b"k2"]
    threads = [threading.Thread(target=asyncio.run, args=(write_and_read(f"t{index}"),)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert asyncio.run(storage.list("")) == ["k0", "k1", "k2", "t0", "t1"]
    assert pools.created == 6  # one client per loop, reused for all the loop's operations
    assert pools.closed == 6  # each closed as its loop ended


@pytest.mark.asyncio
async def test_a_borrowed_client_serves_its_own_loop_and_is_never_closed(mongo_uri, database_name):
    pools = Pools()
    client = AsyncMongoClient(mongo_uri, event_listeners=[pools])
    try:
        await client.admin.command("ping")  # the application's client, running on this loop
        storage = MongoDBStorage(client=client, database_name=database_name)
        await storage.write("k", b"v")
        assert pools.created == 1  # this loop's operations went through the borrowed client

        # A synchronous agent call runs in a fresh loop: it gets its own client, closed with that loop.
        assert await asyncio.to_thread(asyncio.run, storage.read("k")) == b"v"
        assert (pools.created, pools.closed) == (2, 1)

        async with storage:
            pass
        with pytest.raises(StorageError, match="closed"):
            await storage.read("k")
        assert await client[database_name][COLLECTION].find_one({"_id": "k"}, {"_id": 1}) == {"_id": "k"}
        assert pools.closed == 1
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_closing_closes_the_loops_client_and_every_view(storage_for):
    pools = Pools()
    storage = storage_for(event_listeners=[pools])
    view = storage.namespace("memory")
    await view.write("k", b"v")

    await storage.close()

    assert pools.created == pools.closed == 1
    with pytest.raises(StorageError, match="MongoDBStorage is closed"):
        await view.read("k")


# --------------------------------------------------------------------------- same answers as strands' backends

_KEY_CHARACTERS = st.sampled_from(["a", "b", "z", "/", ".", "-", "é", "\x7f", "\ud7ff", "\U0010ffff"])
_KEYS = st.text(_KEY_CHARACTERS, min_size=1, max_size=6)
_WORDS = ["dark", "mode", "deploy", "notes", "the", "blue", "green", "md"]


def _valid(key: str) -> bool:
    try:
        asyncio.run(InMemoryStorage().write(key, b""))
    except StorageError:
        return False
    return True


@pytest.fixture(scope="module")
def shared_storage(mongo_uri: str) -> Iterator[MongoDBStorage]:
    """One storage for the property tests: each example works in a namespace of its own."""
    name = f"test_properties_{os.getpid()}"
    yield MongoDBStorage(mongo_uri, database_name=name)
    with MongoClient(mongo_uri) as client:
        client.drop_database(name)


_examples = iter(range(10**9))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(_KEYS, max_size=6), prefixes=st.lists(_KEYS, max_size=4))
def test_list_returns_what_in_memory_storage_returns(shared_storage, keys, prefixes):
    keys = [key for key in keys if _valid(key)]

    async def compare() -> None:
        ours, theirs = shared_storage.namespace(f"list-{next(_examples)}"), InMemoryStorage()
        for key in keys:
            await ours.write(key, b"")
            await theirs.write(key, b"")
        for prefix in ["", *prefixes]:
            try:
                expected = await theirs.list(prefix)
            except StorageError as error:
                with pytest.raises(StorageError) as failure:
                    await ours.list(prefix)
                assert str(failure.value) == str(error)
                continue
            assert await ours.list(prefix) == expected, prefix

    asyncio.run(compare())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.dictionaries(
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3).map(lambda words: "/".join(words) + ".md"),
        st.lists(st.sampled_from([*_WORDS, "Dark", "modes"]), max_size=6).map(" ".join),
        max_size=6,
    ),
    query=st.lists(st.sampled_from([*_WORDS, "DARK", "what"]), max_size=4).map(" ".join),
)
def test_search_returns_what_the_keyword_strategy_returns(shared_storage, entries, query):
    async def compare() -> None:
        ours = shared_storage.namespace(f"dark/mode/search-{next(_examples)}")
        theirs = InMemoryStorage()
        for key, content in entries.items():
            await ours.write(key, content.encode())
            await theirs.write(key, content.encode())
        expected = await KeywordSearchStrategy().search(theirs, query)
        found = await ours.search(query)
        assert [(r.key, r.score, r.data) for r in found] == [(r.key, float(r.score), r.data) for r in expected]

    asyncio.run(compare())


def test_gzip_blobs_are_plain_gzip(storage_for, documents):
    text = b"interoperable " * 1000
    asyncio.run(storage_for(compress="gzip").write("k", text))
    assert gzip.decompress(documents.find_one({"_id": "k"})["data"]) == text
