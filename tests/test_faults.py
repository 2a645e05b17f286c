"""Bad input and faults: what a user sees when keys, values, ids, sizes or the server go wrong.

Every test runs against a real wire-protocol server (the embedded SecantusDB, or ``MONGODB_URI``)
unless it checks validation that happens before any I/O, where mongomock is used as well. Stored
documents are read back with a separate pymongo client, so the assertions do not depend on the
library's own read path.
"""

from __future__ import annotations

import gc
import random
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from strands import Agent
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from mongodb_session_manager import (
    DocumentTooLargeError,
    DuplicateMessageError,
    InvalidMetadataKeyError,
    MongoDBSessionManager,
    SessionDataError,
    StorageUnavailableError,
)
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
SESSION = "fault-session"
AGENT = "agent-1"
MB = 1024 * 1024
MONGODB_DOCUMENT_LIMIT = 16 * MB
HANG_GUARD_SECONDS = 10.0


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def reader(mongo_uri: str) -> Iterator[MongoClient]:
    """A separate client that reads documents back as raw BSON, independent of the library."""
    with MongoClient(mongo_uri, document_class=RawBSONDocument) as mongo_client:
        yield mongo_client


def _manager(client: Any, database_name: str, session_id: str = SESSION) -> MongoDBSessionManager:
    return MongoDBSessionManager(session_id, client=client, database_name=database_name, collection_name=COLLECTION)


def _raw(reader: MongoClient, database_name: str, session_id: str = SESSION) -> bytes:
    """The stored session document's exact bytes."""
    document = reader[database_name][COLLECTION].find_one({"_id": session_id})
    assert document is not None, f"session {session_id!r} is not stored"
    return bytes(document.raw)


def _stored(reader: MongoClient, database_name: str, session_id: str = SESSION) -> dict[str, Any]:
    """The stored session document decoded to plain Python values."""
    codec = CodecOptions(document_class=dict, tz_aware=True)
    document = reader[database_name].get_collection(COLLECTION, codec_options=codec).find_one({"_id": session_id})
    assert document is not None, f"session {session_id!r} is not stored"
    return document


def _stored_message_ids(reader: MongoClient, database_name: str, agent_id: str = AGENT) -> list[int]:
    """The ``message_id`` of every stored element of an agent's array, in stored order (no message bodies shipped)."""
    pipeline = [
        {"$match": {"_id": SESSION}},
        # $map, not "$agents.<id>.messages.message_id": the embedded server does not traverse arrays in
        # aggregation field paths.
        {"$project": {"_id": 0, "ids": {"$map": {"input": f"$agents.{agent_id}.messages", "in": "$$this.message_id"}}}},
    ]
    rows = list(reader[database_name][COLLECTION].aggregate(pipeline))
    assert rows, "session is not stored"
    return list(rows[0].get("ids") or [])


def _text_message(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}]}


def _session_message(message_id: Any, text: str) -> SessionMessage:
    return SessionMessage.from_message(_text_message(text), message_id)


def _create_agent(manager: MongoDBSessionManager, agent_id: str = AGENT) -> None:
    manager.session_repository.create_agent(
        manager.session_id, SessionAgent(agent_id=agent_id, state={}, conversation_manager_state={})
    )


def _agent(manager: MongoDBSessionManager, agent_id: str = AGENT) -> Agent:
    """A real strands Agent persisted by ``manager`` (its model is never called in these tests)."""
    return Agent(model=ScriptedModel([]), agent_id=agent_id, session_manager=manager, callback_handler=None)


def _closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _require_retryable_writes(client: MongoClient) -> None:
    """Retryable writes need a replica set or a sharded cluster; a standalone MongoDB never retries."""
    hello = client.admin.command("hello")
    if "setName" not in hello and hello.get("msg") != "isdbgrid":
        pytest.skip("the server is a standalone MongoDB: pymongo does not retry writes against it")


@contextmanager
def _fail_point(client: MongoClient, mode: Any, data: dict[str, Any]) -> Iterator[None]:
    """Enable the ``failCommand`` failpoint; skip when the server does not offer test commands."""
    try:
        client.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})
    except OperationFailure as error:
        pytest.skip(f"server rejects configureFailPoint (needs enableTestCommands): {error}")
    try:
        yield
    finally:
        client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


# --------------------------------------------------------------------------- 1. metadata keys and values


def test_dotted_metadata_key_updates_the_nested_field_and_keeps_its_siblings(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}, "user": "ana"})

    manager.update_metadata({"prefs.theme": "dark"})

    expected = {"prefs": {"theme": "dark", "lang": "en"}, "user": "ana"}
    assert _stored(reader, database_name)["metadata"] == expected
    assert manager.get_metadata() == {"metadata": expected}


def test_deleting_a_dotted_metadata_key_removes_only_that_nested_field(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}, "user": "ana"})

    manager.delete_metadata(["prefs.theme"])

    assert _stored(reader, database_name)["metadata"] == {"prefs": {"lang": "en"}, "user": "ana"}


BAD_KEYS: list[Any] = ["", "a..b", ".a", "a.", "$set", "a.$b", 1]


@pytest.mark.parametrize("bad_key", BAD_KEYS, ids=repr)
def test_invalid_metadata_key_is_refused_by_name_and_the_document_is_byte_for_byte_unchanged(
    client: MongoClient, database_name: str, reader: MongoClient, bad_key: Any
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}})
    before = _raw(reader, database_name)

    # A valid key beside the bad one proves nothing is half-written.
    with pytest.raises(InvalidMetadataKeyError) as raised:
        manager.update_metadata({"valid": "would be written", bad_key: "x"})

    assert isinstance(raised.value, ValueError)
    assert repr(bad_key) in str(raised.value)
    assert _raw(reader, database_name) == before


def test_overlapping_metadata_keys_in_one_update_are_refused_and_nothing_is_written(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}})
    before = _raw(reader, database_name)

    with pytest.raises(InvalidMetadataKeyError) as raised:
        manager.update_metadata({"prefs": {"theme": "blue"}, "prefs.theme": "dark"})

    assert "'prefs'" in str(raised.value)
    assert "'prefs.theme'" in str(raised.value)
    assert _raw(reader, database_name) == before


@pytest.mark.parametrize("bad_key", [*BAD_KEYS, None], ids=repr)
def test_delete_metadata_with_an_invalid_key_is_refused_by_name_and_nothing_is_removed(
    client: MongoClient, database_name: str, reader: MongoClient, bad_key: Any
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}, "user": "ana"})
    before = _raw(reader, database_name)

    with pytest.raises(InvalidMetadataKeyError) as raised:
        manager.delete_metadata(["user", bad_key])

    assert repr(bad_key) in str(raised.value)
    assert _raw(reader, database_name) == before


def test_delete_metadata_with_overlapping_keys_is_refused_and_nothing_is_removed(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}})
    before = _raw(reader, database_name)

    with pytest.raises(InvalidMetadataKeyError):
        manager.delete_metadata(["prefs.theme", "prefs"])

    assert _raw(reader, database_name) == before


@pytest.mark.parametrize("bad_key", ["a..b", "$set", 1], ids=repr)
def test_invalid_metadata_key_is_refused_before_any_command_is_sent_on_every_backend(
    any_client: Any, command_log: Any, bad_key: Any
) -> None:
    database_name = f"test_{uuid.uuid4().hex[:12]}"
    manager = _manager(any_client, database_name)
    manager.update_metadata({"user": "ana"})
    try:
        command_log.clear()  # records the wire client's commands; mongomock sends none
        with pytest.raises(InvalidMetadataKeyError):
            manager.update_metadata({bad_key: "x"})
        with pytest.raises(InvalidMetadataKeyError):
            manager.delete_metadata([bad_key])
        assert command_log.commands == []
        assert manager.get_metadata() == {"metadata": {"user": "ana"}}
    finally:
        any_client.drop_database(database_name)


@pytest.mark.parametrize("bad_value", [object(), {1, 2}], ids=["object", "set"])
def test_metadata_value_bson_cannot_store_raises_session_data_error_and_nothing_is_written(
    client: MongoClient, database_name: str, reader: MongoClient, bad_value: Any
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"user": "ana"})
    before = _raw(reader, database_name)

    with pytest.raises(SessionDataError) as raised:
        manager.update_metadata({"valid": 1, "bad": bad_value})

    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, SessionException)
    assert SESSION in str(raised.value)
    assert _raw(reader, database_name) == before


# --------------------------------------------------------------------------- 2. the 16 MB document limit


def _assert_names_session_and_size(error: DocumentTooLargeError) -> None:
    message = str(error)
    assert SESSION in message
    assert any(char.isdigit() for char in message.replace(SESSION, "")), f"no size in {message!r}"
    assert str(MONGODB_DOCUMENT_LIMIT) in message


def _fill_to_nearly_16_mb(manager: MongoDBSessionManager) -> None:
    """Store three ~5.56 MB messages: the document ends less than 100 KB below the 16 MB limit."""
    body = "x" * 5_560_000
    for message_id in range(3):
        manager.session_repository.create_message(SESSION, AGENT, _session_message(message_id, body))


def test_metadata_value_over_16_mb_raises_document_too_large_and_writes_nothing(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    manager.update_metadata({"user": "ana"})
    before = _raw(reader, database_name)

    with pytest.raises(DocumentTooLargeError) as raised:
        manager.update_metadata({"blob": "x" * (17 * MB)})

    _assert_names_session_and_size(raised.value)
    assert _raw(reader, database_name) == before
    assert manager.get_metadata() == {"metadata": {"user": "ana"}}


def test_message_over_16_mb_moves_the_agent_out_and_is_stored_whole(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    agent = _agent(manager)
    manager.append_message(_text_message("hello"), agent)

    manager.append_message(_text_message("x" * (17 * MB)), agent)

    stored_agent = _stored(reader, database_name)["agents"][AGENT]
    assert stored_agent["message_storage"] == "collection"
    assert "messages" not in stored_agent
    messages = manager.session_repository.list_messages(SESSION, AGENT)
    assert [message.message for message in messages] == [_text_message("hello"), _text_message("x" * (17 * MB))]


def test_small_metadata_update_that_grows_the_document_past_16_mb_raises_and_writes_nothing(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    _create_agent(manager)
    _fill_to_nearly_16_mb(manager)
    before = _raw(reader, database_name)
    assert MONGODB_DOCUMENT_LIMIT - len(before) < 200_000

    with pytest.raises(DocumentTooLargeError) as raised:
        manager.update_metadata({"notes": "y" * 200_000})

    _assert_names_session_and_size(raised.value)
    assert _raw(reader, database_name) == before
    assert _stored_message_ids(reader, database_name) == [0, 1, 2]


def test_small_message_append_that_grows_the_document_past_16_mb_moves_the_agent_out_and_keeps_every_message(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    manager = _manager(client, database_name)
    _create_agent(manager)
    _fill_to_nearly_16_mb(manager)

    manager.session_repository.create_message(SESSION, AGENT, _session_message(3, "y" * 200_000))

    assert _stored(reader, database_name)["agents"][AGENT]["message_storage"] == "collection"
    assert len(_raw(reader, database_name)) < 100_000
    messages = manager.session_repository.list_messages(SESSION, AGENT)
    assert [message.message_id for message in messages] == [0, 1, 2, 3]
    assert len(messages[1].message["content"][0]["text"]) == 5_560_000


# --------------------------------------------------------------------------- 3. duplicate message ids


def test_second_manager_appending_an_existing_message_id_gets_duplicate_message_error(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    first = _manager(client, database_name)
    _create_agent(first)
    second = _manager(client, database_name)
    first.session_repository.create_message(SESSION, AGENT, _session_message(5, "from first"))
    before = _raw(reader, database_name)

    with pytest.raises(DuplicateMessageError) as raised:
        second.session_repository.create_message(SESSION, AGENT, _session_message(5, "from second"))

    assert isinstance(raised.value, SessionException)
    message = str(raised.value)
    assert SESSION in message
    assert AGENT in message
    assert "5" in message
    assert _raw(reader, database_name) == before
    stored = _stored(reader, database_name)["agents"][AGENT]["messages"]
    assert [element["message_id"] for element in stored] == [5]
    assert stored[0]["message"] == _text_message("from first")


def test_racing_writers_store_every_message_id_exactly_once_and_every_loser_is_told(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    threads, ids_per_thread, stride = 8, 24, 2
    all_ids = sorted({stride * t + i for t in range(threads) for i in range(ids_per_thread)})
    managers = [_manager(client, database_name) for _ in range(threads)]
    _create_agent(managers[0])
    start = threading.Barrier(threads)
    won: dict[int, list[int]] = {t: [] for t in range(threads)}
    lost: dict[int, list[int]] = {t: [] for t in range(threads)}
    unexpected: list[BaseException] = []

    def writer(t: int) -> None:
        ids = [stride * t + i for i in range(ids_per_thread)]
        random.Random(t).shuffle(ids)
        repository = managers[t].session_repository
        start.wait()
        for message_id in ids:
            try:
                repository.create_message(SESSION, AGENT, _session_message(message_id, f"t{t}-m{message_id}"))
            except DuplicateMessageError:
                lost[t].append(message_id)
            except BaseException as error:
                unexpected.append(error)
            else:
                won[t].append(message_id)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a writer hung"

    assert unexpected == []
    winners = {message_id: t for t, ids in won.items() for message_id in ids}
    assert sorted(winners) == all_ids, "every id is created by exactly one writer"
    assert sum(len(ids) for ids in won.values()) == len(all_ids)
    assert sum(len(ids) for ids in lost.values()) == threads * ids_per_thread - len(all_ids)
    for t in range(threads):
        assert sorted(won[t] + lost[t]) == [stride * t + i for i in range(ids_per_thread)]

    stored = _stored(reader, database_name)["agents"][AGENT]["messages"]
    assert [element["message_id"] for element in stored] == all_ids
    for element in stored:
        message_id = element["message_id"]
        assert element["message"] == _text_message(f"t{winners[message_id]}-m{message_id}")


# --------------------------------------------------------------------------- 4. server unreachable


def test_manager_for_an_unreachable_server_raises_storage_unavailable_error() -> None:
    port = _closed_port()
    started = time.monotonic()

    with pytest.raises(StorageUnavailableError) as raised:
        MongoDBSessionManager("s", connection_string=f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=300)

    assert time.monotonic() - started < HANG_GUARD_SECONDS  # hang guard only
    assert isinstance(raised.value, SessionException)
    message = str(raised.value)
    assert "unreachable" in message
    assert f"127.0.0.1:{port}" in message


def test_manager_that_cannot_connect_closes_the_client_it_opened() -> None:
    port = _closed_port()
    gc.collect()  # earlier tests' garbage must not warn inside this test

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(StorageUnavailableError):
            MongoDBSessionManager("s", connection_string=f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=300)
        gc.collect()

    this_test = "test_manager_that_cannot_connect_closes_the_client_it_opened"
    unclosed = [
        str(warning.message)
        for warning in caught
        if "Unclosed MongoClient" in str(warning.message) and this_test in str(warning.message)
    ]
    assert unclosed == [], "the failed manager's own MongoClient was left open"


def test_keeping_the_connection_error_does_not_keep_a_client_polling_the_dead_server() -> None:
    port = _closed_port()
    before = set(threading.enumerate())
    kept: list[BaseException] = []  # e.g. a caller's retry loop remembering the last error

    try:
        MongoDBSessionManager("s", connection_string=f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=300)
    except StorageUnavailableError as error:
        kept.append(error)
    assert kept, "expected StorageUnavailableError"

    deadline = time.monotonic() + 5
    leftover = [thread for thread in threading.enumerate() if thread not in before]
    while leftover and time.monotonic() < deadline:
        time.sleep(0.05)
        leftover = [thread for thread in leftover if thread.is_alive()]
    assert [thread.name for thread in leftover] == [], "the failed manager's own MongoClient is still running"


# --------------------------------------------------------------------------- 5. retryable failures


@pytest.mark.parametrize(
    "failure",
    [
        {"errorCode": 91, "errorLabels": ["RetryableWriteError"]},
        {"closeConnection": True},
    ],
    ids=["retryable-error-code", "connection-closed"],
)
def test_one_retryable_write_failure_is_retried_transparently_and_the_message_is_stored_once(
    client: MongoClient, database_name: str, reader: MongoClient, command_log: Any, failure: dict[str, Any]
) -> None:
    _require_retryable_writes(client)
    manager = _manager(client, database_name)
    agent = _agent(manager)
    manager.append_message(_text_message("first"), agent)

    with _fail_point(client, {"times": 1}, {"failCommands": ["update"], **failure}):
        command_log.clear()
        manager.append_message(_text_message("second"), agent)
        sent = list(command_log.commands)

    assert sent.count("update") == 2, f"expected the update and one retry, sent {sent}"
    assert _stored_message_ids(reader, database_name) == [0, 1]
    stored = _stored(reader, database_name)["agents"][AGENT]["messages"]
    assert [element["message"] for element in stored] == [_text_message("first"), _text_message("second")]


def test_write_that_still_fails_after_its_retry_raises_storage_unavailable_error_and_stores_nothing(
    client: MongoClient, database_name: str, reader: MongoClient
) -> None:
    _require_retryable_writes(client)
    manager = _manager(client, database_name)
    agent = _agent(manager)
    manager.append_message(_text_message("first"), agent)
    before = _raw(reader, database_name)

    data = {"failCommands": ["update"], "errorCode": 91, "errorLabels": ["RetryableWriteError"]}
    with _fail_point(client, {"times": 2}, data), pytest.raises(StorageUnavailableError) as raised:
        manager.append_message(_text_message("second"), agent)

    assert SESSION in str(raised.value)
    assert _raw(reader, database_name) == before


# --------------------------------------------------------------------------- 6. server down mid-session


def test_writes_fail_clearly_while_the_server_is_down_and_earlier_messages_survive_a_restart(
    tmp_path: Path,
) -> None:
    secantus = pytest.importorskip("secantus")
    storage = tmp_path / "data"
    storage.mkdir()
    written = [_text_message(f"message {i}", role="user" if i % 2 == 0 else "assistant") for i in range(4)]

    server = secantus.SecantusDBServer(storage_path=str(storage), port=0)
    server.start()
    manager = MongoDBSessionManager(
        SESSION, connection_string=server.uri, database_name="faults", serverSelectionTimeoutMS=500
    )
    try:
        agent = _agent(manager)
        for message in written:
            manager.append_message(message, agent)
        server.stop()

        started = time.monotonic()
        with pytest.raises(StorageUnavailableError) as raised:
            manager.session_repository.create_message(SESSION, AGENT, _session_message(4, "lost"))
        assert time.monotonic() - started < HANG_GUARD_SECONDS  # hang guard only
        assert SESSION in str(raised.value)
        assert "unreachable" in str(raised.value)
    finally:
        manager.close()
        server.stop()

    restarted = secantus.SecantusDBServer(storage_path=str(storage), port=0)
    restarted.start()
    try:
        with MongoDBSessionManager(SESSION, connection_string=restarted.uri, database_name="faults") as reopened:
            restored = _agent(reopened)
            assert restored.messages == written
            stored = reopened.session_repository.list_messages(SESSION, AGENT)
            assert [message.message_id for message in stored] == [0, 1, 2, 3]
            assert reopened.session_repository.read_message(SESSION, AGENT, 4) is None
    finally:
        restarted.stop()


# --------------------------------------------------------------------------- 7. invalid ids


@pytest.mark.parametrize("bad_id", ["", None, 123], ids=repr)
def test_session_id_that_is_not_a_non_empty_string_is_refused_by_name(any_client: Any, bad_id: Any) -> None:
    with pytest.raises(ValueError) as raised:
        MongoDBSessionManager(bad_id, client=any_client, database_name="never_created")

    message = str(raised.value)
    assert "session_id" in message
    assert repr(bad_id) in message


@pytest.mark.parametrize("bad_message_id", ["3", 3.0, None, True], ids=repr)
def test_message_id_that_is_not_an_integer_is_refused_by_create_read_and_update(
    client: MongoClient, database_name: str, reader: MongoClient, bad_message_id: Any
) -> None:
    manager = _manager(client, database_name)
    _create_agent(manager)
    repository = manager.session_repository
    repository.create_message(SESSION, AGENT, _session_message(3, "three"))
    before = _raw(reader, database_name)

    with pytest.raises(ValueError) as raised:
        repository.create_message(SESSION, AGENT, _session_message(bad_message_id, "bad"))
    assert repr(bad_message_id) in str(raised.value)
    with pytest.raises(ValueError):
        repository.read_message(SESSION, AGENT, bad_message_id)
    with pytest.raises(ValueError):
        repository.update_message(SESSION, AGENT, _session_message(bad_message_id, "redacted"))

    assert _raw(reader, database_name) == before
