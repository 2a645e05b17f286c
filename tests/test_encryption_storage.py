"""``MongoDBStorage(encryption=...)``: blobs and snapshots the database never sees in clear, erasure by session.

strands' own storage and snapshot tests also run with encryption on (``tests/contract/test_storage_contract.py``,
the ``encrypted`` parametrisation); these cover what they cannot: the raw documents, the search index, erasure,
a storage without keys, mixed collections, GridFS and the key-vault round trips.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import bson
import pytest
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.session import SnapshotSessionManager
from strands.types.exceptions import StorageError

from mongodb_session_manager import (
    EncryptionKeyError,
    EncryptionSettings,
    MongoDBSessionRepository,
    MongoDBStorage,
    SessionKeyErasedError,
)
from mongodb_session_manager.encryption import KEY_ID_FIELD, generate_local_key, is_encrypted
from mongodb_session_manager.storage.sealed_blobs import storage_session
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "strands_storage"
MB = 1024 * 1024
SECRET = "SECRET-marigold-tundra"
ANSWER = "ANSWER-obsidian-wharf"


class KeyVaultFinds(monitoring.CommandListener):
    """Counts the commands sent to each collection, from any thread."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        with self._lock:
            self.sent.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""

    def on(self, collection: str) -> list[str]:
        return [name for name, target in self.sent if target == collection]


@pytest.fixture
def settings(database_name: str) -> EncryptionSettings:
    return EncryptionSettings.local(generate_local_key(), key_vault_namespace=f"{database_name}.keyvault")


@pytest.fixture
def storages(mongo_uri: str, database_name: str) -> Any:
    """Builds storages on the test's database; all are closed at the end."""
    built: list[MongoDBStorage] = []

    def build(**options: Any) -> MongoDBStorage:
        built.append(MongoDBStorage(mongo_uri, database_name=database_name, collection_name=COLLECTION, **options))
        return built[-1]

    yield build

    async def close_all() -> None:
        for storage in built:
            await storage.close()

    asyncio.run(close_all())


def raw_bytes(client: MongoClient, database_name: str) -> bytes:
    """Every document of every collection but the key vault (GridFS chunks included), as BSON bytes."""
    database = client[database_name]
    names = sorted(name for name in database.list_collection_names() if name != "keyvault")
    return b"".join(bson.encode(document) for name in names for document in database[name].find())


def keys_in_vault(client: MongoClient, database_name: str) -> list[str]:
    return sorted(name for key in client[database_name]["keyvault"].find() for name in key.get("keyAltNames", []))


@pytest.mark.parametrize(
    ("key", "session"),
    [
        ("session/s-1/scopes/agent/a/snapshots/snapshot_latest.json", "s-1"),
        ("session/s-1", "session"),
        ("memories/user-1.json", "memories"),
        ("notes.txt", "notes.txt"),
    ],
)
def test_the_storage_session_of_a_key(key, session):
    assert storage_session(key) == session


@pytest.mark.asyncio
async def test_blobs_are_stored_as_ciphertext_and_read_back_equal(client, database_name, settings, storages):
    storage = storages(encryption=settings, compress="gzip")
    small = f"{SECRET} in a small blob".encode()
    compressible = (f"{SECRET} again and again. " * 5000).encode()
    binary = bytes(range(256)) * 64
    await storage.write("session/s-1/a.json", small)
    await storage.write("session/s-1/b.json", compressible)
    await storage.write("memories/user-1.json", binary)

    assert await storage.read("session/s-1/a.json") == small
    assert await storage.read("session/s-1/b.json") == compressible
    assert await storage.read("memories/user-1.json") == binary
    assert SECRET.encode() not in raw_bytes(client, database_name)
    stored = {document["_id"]: document for document in client[database_name][COLLECTION].find()}
    assert all(is_encrypted(document["data"]) for document in stored.values())
    assert stored["session/s-1/b.json"]["compression"] == "gzip"  # compressed before it was encrypted
    assert all("terms" not in document and document["scan"] is True for document in stored.values())
    assert stored["session/s-1/a.json"][KEY_ID_FIELD] == stored["session/s-1/b.json"][KEY_ID_FIELD]
    assert stored["memories/user-1.json"][KEY_ID_FIELD] != stored["session/s-1/a.json"][KEY_ID_FIELD]
    assert keys_in_vault(client, database_name) == ["storage:memories", "storage:s-1"]
    assert await storage.list("session/") == ["session/s-1/a.json", "session/s-1/b.json"]


@pytest.mark.asyncio
async def test_a_blob_in_gridfs_holds_only_ciphertext(client, database_name, settings, storages):
    storage = storages(encryption=settings)
    blob = SECRET.encode() + bytes(16 * MB)
    await storage.write("session/big/blob.bin", blob)

    document = client[database_name][COLLECTION].find_one({"_id": "session/big/blob.bin"})
    assert "data" not in document and document["file_id"] is not None
    assert SECRET.encode() not in raw_bytes(client, database_name)
    assert await storages(encryption=settings).read("session/big/blob.bin") == blob


@pytest.mark.asyncio
async def test_search_finds_encrypted_content_without_indexing_its_words(client, database_name, settings, storages):
    storage = storages(encryption=settings)
    await storage.write("notes/a.md", b"the quartz lantern glows")
    await storage.write("notes/b.md", b"a lantern")
    await storage.write("notes/zebra.md", b"nothing here")

    results = await storage.search("quartz lantern")

    assert [(result.key, result.score, result.data) for result in results] == [
        ("notes/a.md", 2.0, b"the quartz lantern glows"),
        ("notes/b.md", 1.0, b"a lantern"),
    ]
    assert [result.key for result in await storage.namespace("notes").search("zebra")] == ["zebra.md"]  # key words
    stored = raw_bytes(client, database_name)
    assert b"quartz" not in stored and b"lantern" not in stored


@pytest.mark.asyncio
async def test_a_snapshot_session_is_encrypted_and_erasure_makes_only_it_unreadable(
    client, mongo_uri, database_name, settings, storages
):
    storage = storages(encryption=settings)
    for session_id in ("erased", "kept"):
        manager = SnapshotSessionManager(session_id, storage=storage)
        agent = Agent(agent_id="a", model=ScriptedModel([ANSWER]), session_manager=manager, callback_handler=None)
        await agent.invoke_async(SECRET)
    assert SECRET.encode() not in raw_bytes(client, database_name)
    assert ANSWER.encode() not in raw_bytes(client, database_name)
    await storage.write("notes/erased.md", b"a note about the erased lantern")

    repository = MongoDBSessionRepository(client=client, database_name=database_name, encryption=settings)
    assert repository.erase_session_keys("erased") == 1  # the storage key (the repository never saw the session)

    latest = "session/{}/scopes/agent/a/snapshots/snapshot_latest.json"
    for reader in (storage, storages(encryption=settings)):  # this process, and a storage that never had the key
        with pytest.raises(StorageError, match="session_id=<erased>") as raised:
            await reader.read(latest.format("erased"))
        assert isinstance(raised.value.__cause__, SessionKeyErasedError)
        assert ANSWER.encode() in await reader.read(latest.format("kept"))
        assert latest.format("erased") in await reader.list("session/")  # listing still works
        assert [result.key for result in await reader.search("lantern")] == ["notes/erased.md"]  # erased: left out
    with pytest.raises(StorageError) as raised:
        await storage.write(latest.format("erased"), b"{}")
    assert isinstance(raised.value.__cause__, SessionKeyErasedError)
    restored = Agent(
        agent_id="a",
        model=ScriptedModel([]),
        session_manager=SnapshotSessionManager("kept", storage=storages(encryption=settings)),
        callback_handler=None,
    )
    assert [message["role"] for message in restored.messages] == ["user", "assistant"]


@pytest.mark.asyncio
async def test_the_storages_own_erasure_deletes_the_session_keys(client, database_name, settings, storages):
    storage = storages(encryption=settings)
    await storage.write("session/s-1/a.json", b"{}")
    assert keys_in_vault(client, database_name) == ["storage:s-1"]

    assert await storage.erase_session_keys("s-1") == 1
    assert await storage.erase_session_keys("s-1") == 0
    assert keys_in_vault(client, database_name) == []
    with pytest.raises(StorageError):
        await storages(encryption=settings).read("session/s-1/a.json")
    with pytest.raises(ValueError, match="needs a MongoDBStorage with encryption"):
        await storages().erase_session_keys("s-1")


@pytest.mark.asyncio
async def test_without_settings_or_with_a_wrong_key_an_encrypted_blob_is_a_typed_error(
    database_name, settings, storages
):
    await storages(encryption=settings).write("session/s-1/a.json", SECRET.encode())
    wrong = EncryptionSettings.local(generate_local_key(), key_vault_namespace=settings.key_vault_namespace)

    for reader, message in ((storages(), "no encryption settings"), (storages(encryption=wrong), "cannot be used")):
        with pytest.raises(StorageError, match=message) as raised:
            await reader.read("session/s-1/a.json")
        assert type(raised.value.__cause__) is EncryptionKeyError


@pytest.mark.asyncio
async def test_clear_and_encrypted_blobs_share_a_collection(client, database_name, settings, storages):
    await storages().write("notes/clear.md", b"a clear lantern")
    encrypted = storages(encryption=settings)
    await encrypted.write("notes/secret.md", b"a secret lantern")

    assert await encrypted.read("notes/clear.md") == b"a clear lantern"
    assert [result.key for result in await encrypted.search("lantern")] == ["notes/clear.md", "notes/secret.md"]
    stored = {document["_id"]: document for document in client[database_name][COLLECTION].find()}
    assert "lantern" in stored["notes/clear.md"]["terms"] and KEY_ID_FIELD not in stored["notes/clear.md"]
    assert KEY_ID_FIELD in stored["notes/secret.md"]


@pytest.mark.asyncio
async def test_writes_and_reads_ask_the_key_vault_once_per_session(mongo_uri, database_name, settings, storages):
    listener = KeyVaultFinds()
    storage = storages(encryption=settings, event_listeners=[listener])
    await storage.write("session/s-1/a.json", b"one")  # creates the key (and the key vault's index)
    await storage.read("session/s-1/a.json")  # libmongocrypt fetches the key once, then caches it
    listener.sent.clear()

    for index in range(5):
        await storage.write(f"session/s-1/{index}.json", b"more")
        assert await storage.read(f"session/s-1/{index}.json") == b"more"

    assert listener.on("keyvault") == []
    assert listener.on(COLLECTION).count("findAndModify") == 5  # the same single write as a clear blob
    assert listener.on(COLLECTION).count("find") == 5


def test_encryption_must_be_settings(mongo_uri, database_name):
    with pytest.raises(TypeError, match="encryption must be an EncryptionSettings"):
        MongoDBStorage(mongo_uri, database_name=database_name, encryption={"local": {"key": b"x"}})
