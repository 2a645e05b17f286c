"""Client-side field-level encryption: nothing readable in the database, everything back ``==``, erasure by key.

Every test runs on the embedded wire-protocol server (or ``MONGODB_URI``) with a local master key; the key
vault lives in the test's own database. Raw documents are read back as BSON bytes through a separate client
and searched for the plaintext of every encrypted field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    EncryptionKeyError,
    EncryptionSettings,
    InvalidIdError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionDataError,
    SessionException,
    SessionKeyErasedError,
    close_global_factory,
    create_mongodb_session_manager,
    initialize_global_factory,
)
from mongodb_session_manager.encryption import (
    KEY_ID_FIELD,
    generate_local_key,
    is_encrypted,
    load_local_key,
    save_local_key,
)
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
AGENT = "agent-1"
CHILD = Path(__file__).parent / "encryption_child.py"
MB = 1024 * 1024
STAMP = "2025-01-01T00:00:00+00:00"

SECRETS = {
    "question": "QUESTION-mauve-heron",
    "answer": "ANSWER-silent-quartz",
    "state": "STATE-copper-lantern",
    "prompt": "PROMPT-velvet-anchor",
    "comment": "COMMENT-amber-fjord",
    "address": "ADDRESS-12-hidden-lane",
    "customer": "CUSTOMER-c42-orchid",
    "graph": "GRAPH-STATE-cobalt-pine",
    "redacted": "REDACTED-ivory-comet",
}


class StandInMultiAgent:
    """The two members of a strands ``MultiAgentBase`` that the session code uses."""

    def __init__(self, multi_agent_id: str, state: dict[str, Any]) -> None:
        self.id = multi_agent_id
        self.state = state

    def serialize_state(self) -> dict[str, Any]:
        return self.state

    def deserialize_state(self, payload: dict[str, Any]) -> None:
        self.state = payload


class KeyVaultCommands(monitoring.CommandListener):
    """Records every command as ``(name, database, collection)``: which ones went to the key vault."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.seen.append((event.command_name, event.database_name, target if isinstance(target, str) else None))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""

    def clear(self) -> None:
        self.seen.clear()

    def on(self, database: str, collection: str, name: str | None = None) -> list[str]:
        return [c for c, d, target in self.seen if d == database and target == collection and name in (None, c)]

    def off_key_vault(self, database: str) -> list[str]:
        return [c for c, d, target in self.seen if d == database and target != "keyvault"]


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def key() -> bytes:
    return generate_local_key()


@pytest.fixture
def settings(key: bytes, database_name: str) -> EncryptionSettings:
    """Local-key settings whose key vault is in the test's database; one random and one queryable field."""
    return EncryptionSettings.local(
        key,
        key_vault_namespace=f"{database_name}.keyvault",
        deterministic_metadata_fields=["customer"],
        random_metadata_fields=["address"],
    )


@pytest.fixture
def reader(mongo_uri: str) -> Iterator[MongoClient]:
    """A separate client: reading raw documents adds nothing to the clients under test."""
    with MongoClient(mongo_uri) as mongo_client:
        yield mongo_client


@pytest.fixture
def fresh_client(mongo_uri: str) -> Iterator[Any]:
    """Builds clients of their own: each one a new "process" as far as key caches go."""
    clients: list[MongoClient] = []

    def make(*listeners: monitoring.CommandListener) -> MongoClient:
        clients.append(MongoClient(mongo_uri, tz_aware=True, event_listeners=list(listeners)))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


def repository(client: MongoClient, database_name: str, **options: Any) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **options)


def manager(client: MongoClient, database_name: str, session_id: str = "s-1", **options: Any) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        session_id, client=client, database_name=database_name, collection_name=COLLECTION, **options
    )


def raw_bytes(reader: MongoClient, database_name: str) -> bytes:
    """Every document of every collection of the test's database but the key vault, as BSON bytes."""
    database = reader[database_name]
    names = sorted(name for name in database.list_collection_names() if name != "keyvault")
    return b"".join(bson.encode(document) for name in names for document in database[name].find())


def assert_no_plaintext(reader: MongoClient, database_name: str, *texts: str) -> None:
    stored = raw_bytes(reader, database_name)
    assert stored, "nothing stored"
    leaked = [text for text in texts if text.encode() in stored]
    assert leaked == [], f"plaintext in the database: {leaked}"


def converse(session_manager: MongoDBSessionManager, agent_id: str = AGENT) -> Agent:
    """A real Agent that talks, keeps state and gets a system prompt, on ``session_manager``."""
    agent = Agent(
        agent_id=agent_id,
        model=ScriptedModel([SECRETS["answer"], "second answer"]),
        session_manager=session_manager,
        system_prompt=SECRETS["prompt"],
        callback_handler=None,
    )
    agent.state.set("secret", SECRETS["state"])
    agent(SECRETS["question"])
    agent("second question")
    return agent


def text_message(index: int, text: str) -> SessionMessage:
    content = {"role": "user", "content": [{"text": text}]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


def new_session(repo: MongoDBSessionRepository, session_id: str) -> None:
    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    repo.create_agent(
        session_id, SessionAgent(agent_id=AGENT, state={"n": SECRETS["state"]}, conversation_manager_state={})
    )


# --------------------------------------------------------------------------- nothing in clear


def test_the_database_holds_no_plaintext_of_any_encrypted_field_and_everything_comes_back(
    client, database_name, settings, reader
):
    session_manager = manager(client, database_name, encryption=settings)
    agent = converse(session_manager)
    session_manager.update_metadata({"address": SECRETS["address"], "customer": SECRETS["customer"], "plan": "pro"})
    session_manager.add_feedback({"rating": "down", "comment": SECRETS["comment"]})
    repo = session_manager.session_repository
    repo.create_multi_agent("s-1", StandInMultiAgent("graph", {"notes": SECRETS["graph"]}))
    password = session_manager.get_session_viewer_password()
    latest = repo.list_messages("s-1", AGENT)[-1]
    latest.redact_message = {"role": "assistant", "content": [{"text": SECRETS["redacted"]}]}
    repo.update_message("s-1", AGENT, latest)

    assert_no_plaintext(reader, database_name, *SECRETS.values(), password)
    stored = reader[database_name][COLLECTION].find_one({"_id": "s-1"})
    assert isinstance(stored[KEY_ID_FIELD], bson.Binary) and stored[KEY_ID_FIELD].subtype == 4
    first = stored["agents"][AGENT]["messages"][0]
    assert first["message"]["role"] == "user" and is_encrypted(first["message"]["content"])
    assert stored["metadata"]["plan"] == "pro"  # an unconfigured field stays clear
    assert "event_loop_metrics" in stored["agents"][AGENT]["messages"][-1]  # metrics stay clear
    assert stored["agents"][AGENT]["agent_data"]["model"] == "scripted-model"

    other = manager(client, database_name, encryption=settings)
    resumed = Agent(agent_id=AGENT, model=ScriptedModel([]), session_manager=other, callback_handler=None)
    assert resumed.messages[:-1] == agent.messages[:-1]
    assert resumed.messages[-1] == latest.redact_message
    assert resumed.state.get() == agent.state.get()
    assert other.get_metadata() == {
        "metadata": {"address": SECRETS["address"], "customer": SECRETS["customer"], "plan": "pro"}
    }
    assert [(f["rating"], f["comment"]) for f in other.get_feedbacks()] == [("down", SECRETS["comment"])]
    assert other.get_session_viewer_password() == password
    assert other.get_agent_config(AGENT)["system_prompt"] == SECRETS["prompt"]
    assert [config["system_prompt"] for config in other.list_agents()] == [SECRETS["prompt"]]
    assert other.session_repository.read_multi_agent("s-1", "graph") == {"notes": SECRETS["graph"]}
    documents = other.session_repository.list_message_documents("s-1", AGENT)
    assert documents[0]["message"] == agent.messages[0]
    assert other.session_repository.session_messages("s-1")[AGENT] == documents
    assert other.session_repository.latest_message_document("s-1", AGENT) == documents[-1]


def test_a_message_in_gridfs_holds_only_ciphertext_and_comes_back_byte_for_byte(
    client, database_name, settings, reader
):
    repo = repository(client, database_name, message_storage="collection", encryption=settings)
    new_session(repo, "big")
    secret = f"{SECRETS['question']} ".encode()
    payload = secret + os.urandom(17 * MB)
    block = {"document": {"format": "txt", "name": "scan", "source": {"bytes": payload}}}
    big = SessionMessage(message={"role": "user", "content": [{"text": SECRETS["answer"]}, block]}, message_id=0)

    repo.create_message("big", AGENT, big)

    assert reader[database_name][f"{COLLECTION}.files"].count_documents({}) == 1
    chunks = b"".join(chunk["data"] for chunk in reader[database_name][f"{COLLECTION}.chunks"].find().sort("n"))
    assert secret not in chunks and SECRETS["answer"].encode() not in chunks
    assert repository(client, database_name, encryption=settings).list_messages("big", AGENT) == [big]


def test_the_collection_layout_and_a_promotion_keep_messages_encrypted(client, database_name, settings, reader):
    repo = repository(client, database_name, max_embedded_messages=2, encryption=settings)
    new_session(repo, "moved")
    messages = [text_message(index, f"{SECRETS['question']} {index}") for index in range(5)]
    for message in messages:
        repo.create_message("moved", AGENT, message)

    stored = reader[database_name][COLLECTION].find_one({"_id": "moved"})
    assert stored["agents"][AGENT]["message_storage"] == "collection"
    assert reader[database_name][f"{COLLECTION}.messages"].count_documents({}) == 5
    assert_no_plaintext(reader, database_name, SECRETS["question"], SECRETS["state"])
    assert repository(client, database_name, encryption=settings).list_messages("moved", AGENT) == messages


def test_migrating_an_encrypted_session_both_ways_keeps_it_encrypted_and_equal(client, database_name, settings, reader):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "m")
    messages = [text_message(index, f"{SECRETS['answer']} {index}") for index in range(3)]
    for message in messages:
        repo.create_message("m", AGENT, message)

    assert repo.migrate_session("m", "collection") is True
    assert reader[database_name][f"{COLLECTION}.messages"].count_documents({}) == 3
    assert_no_plaintext(reader, database_name, SECRETS["answer"])
    assert repository(client, database_name, encryption=settings).list_messages("m", AGENT) == messages

    assert repo.migrate_session("m", "embedded") is True
    assert reader[database_name][f"{COLLECTION}.messages"].count_documents({}) == 0
    assert_no_plaintext(reader, database_name, SECRETS["answer"])
    assert repository(client, database_name, encryption=settings).list_messages("m", AGENT) == messages


# --------------------------------------------------------------------------- metadata


def test_a_deterministic_metadata_field_is_found_by_equality_and_listing_shows_no_ciphertext(
    client, database_name, settings
):
    for session_id, customer in (("a", SECRETS["customer"]), ("b", "someone else")):
        session_manager = manager(client, database_name, session_id, encryption=settings)
        session_manager.update_metadata({"customer": customer, "address": SECRETS["address"], "plan": "pro"})

    repo = repository(client, database_name, encryption=settings)
    found = repo.list_sessions(metadata={"customer": SECRETS["customer"]})["sessions"]

    assert [summary["session_id"] for summary in found] == ["a"]
    assert found[0]["metadata"] == {"plan": "pro"}  # encrypted values are left out of listings
    assert repo.list_sessions(metadata={"customer": "nobody"})["sessions"] == []
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
    )
    assert [s["session_id"] for s in factory.list_sessions(metadata={"customer": "someone else"})["sessions"]] == ["b"]


def test_a_query_on_a_deterministic_field_no_session_wrote_yet_finds_nothing(client, database_name, settings):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "a")

    assert repo.list_sessions(metadata={"customer": "c-1"})["sessions"] == []


def test_a_randomly_encrypted_field_cannot_be_queried(client, database_name, settings):
    repo = repository(client, database_name, metadata_fields=["address"], encryption=settings)

    with pytest.raises(ValueError, match="encrypted randomly"):
        repo.list_sessions(metadata={"address": "x"})


def test_a_nested_encrypted_metadata_field_is_encrypted_inside_the_dict_that_holds_it(
    client, database_name, key, reader
):
    settings = EncryptionSettings.local(
        key, key_vault_namespace=f"{database_name}.keyvault", random_metadata_fields=["customer.email"]
    )
    session_manager = manager(client, database_name, encryption=settings)

    session_manager.update_metadata({"customer": {"email": "ada@example.com", "tier": "gold"}})

    assert_no_plaintext(reader, database_name, "ada@example.com")
    assert session_manager.get_metadata()["metadata"]["customer"] == {"email": "ada@example.com", "tier": "gold"}
    with pytest.raises(SessionDataError, match="set it whole"):
        session_manager.update_metadata({"customer.email.domain": "example.com"})


def test_a_deterministic_field_takes_scalars_only(client, database_name, settings):
    session_manager = manager(client, database_name, encryption=settings)

    with pytest.raises(SessionDataError, match="deterministically encrypted"):
        session_manager.update_metadata({"customer": {"id": 1}})
    session_manager.update_metadata({"customer": 42})
    assert session_manager.get_metadata()["metadata"]["customer"] == 42


# --------------------------------------------------------------------------- missing or wrong keys


def test_without_encryption_settings_an_encrypted_session_raises_a_typed_error_and_listing_works(
    client, database_name, settings
):
    session_manager = manager(client, database_name, encryption=settings)
    converse(session_manager)
    session_manager.update_metadata({"address": SECRETS["address"], "plan": "pro"})
    session_manager.add_feedback({"rating": "up", "comment": SECRETS["comment"]})

    plain = repository(client, database_name)
    assert plain.read_session("s-1") is not None
    for read in (
        lambda: plain.read_agent("s-1", AGENT),
        lambda: plain.list_messages("s-1", AGENT),
        lambda: plain.read_message("s-1", AGENT, 0),
        lambda: plain.session_messages("s-1"),
        lambda: plain.get_metadata("s-1"),
        lambda: plain.get_feedbacks("s-1"),
        lambda: plain.get_viewer_password("s-1"),
        lambda: plain.get_agent_config("s-1", AGENT),
    ):
        with pytest.raises(EncryptionKeyError, match="session_id=<s-1>"):
            read()
    with pytest.raises(EncryptionKeyError):
        Agent(agent_id=AGENT, model=ScriptedModel([]), session_manager=manager(client, database_name))
    assert [s["session_id"] for s in plain.list_sessions()["sessions"]] == ["s-1"]
    assert plain.list_sessions()["sessions"][0]["metadata"] == {"plan": "pro"}
    assert issubclass(EncryptionKeyError, SessionException)


def test_a_wrong_master_key_raises_encryption_key_error_never_garbage(client, database_name, settings, fresh_client):
    converse(manager(client, database_name, encryption=settings))
    wrong = EncryptionSettings.local(generate_local_key(), key_vault_namespace=settings.key_vault_namespace)

    other = repository(fresh_client(), database_name, encryption=wrong)

    with pytest.raises(EncryptionKeyError) as raised:
        other.list_messages("s-1", AGENT)
    assert not isinstance(raised.value, SessionKeyErasedError)
    with pytest.raises(EncryptionKeyError):
        other.create_message("s-1", AGENT, text_message(9, "more"))


# --------------------------------------------------------------------------- erasure


def test_erasing_a_sessions_keys_makes_only_that_session_unreadable(client, database_name, settings, fresh_client):
    for session_id in ("erased", "kept"):
        session_manager = manager(client, database_name, session_id, encryption=settings)
        converse(session_manager)
        session_manager.update_metadata({"customer": f"{session_id}-customer", "plan": "pro"})
    repo = repository(client, database_name, encryption=settings)
    assert repo.list_messages("erased", AGENT)  # this process has the key cached

    assert repo.erase_session_keys("erased") == 1
    assert repo.erase_session_keys("erased") == 0  # idempotent

    never_cached = repository(fresh_client(), database_name, encryption=settings)  # another client, same process
    for reader_repo in (repo, never_cached):
        with pytest.raises(SessionKeyErasedError, match="session_id=<erased>"):
            reader_repo.list_messages("erased", AGENT)
        with pytest.raises(SessionKeyErasedError):
            reader_repo.read_agent("erased", AGENT)
        with pytest.raises(SessionKeyErasedError):
            reader_repo.create_message("erased", AGENT, text_message(99, "after erasure"))
        assert [m.message_id for m in reader_repo.list_messages("kept", AGENT)] == [0, 1, 2, 3]
        assert reader_repo.read_session("erased") is not None
    listed = {s["session_id"]: s for s in never_cached.list_sessions()["sessions"]}
    assert listed["erased"]["message_counts"] == {AGENT: 4}
    assert listed["erased"]["metadata"] == {"plan": "pro"}  # the shared-key field went with the erasure
    assert never_cached.list_sessions(metadata={"customer": "erased-customer"})["sessions"] == []
    assert [
        s["session_id"] for s in never_cached.list_sessions(metadata={"customer": "kept-customer"})["sessions"]
    ] == ["kept"]
    with pytest.raises(SessionKeyErasedError):
        Agent(
            agent_id=AGENT,
            model=ScriptedModel([]),
            session_manager=manager(client, database_name, "erased", encryption=settings),
        )


def erase_in_another_process(reader: MongoClient, database_name: str, session_id: str) -> None:
    """What ``erase_session_keys`` in another process does to the key vault."""
    assert reader[database_name]["keyvault"].delete_many({"keyAltNames": f"session:{session_id}"}).deleted_count == 1


def test_after_an_erasure_elsewhere_a_process_that_never_fetched_the_key_fails_at_once(
    client, database_name, settings, reader, fresh_client
):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "s")
    repo.create_message("s", AGENT, text_message(0, "hello"))

    erase_in_another_process(reader, database_name, "s")

    never_fetched = repository(fresh_client(), database_name, encryption=settings)
    with pytest.raises(SessionKeyErasedError, match="session_id=<s>"):
        never_fetched.list_messages("s", AGENT)
    with pytest.raises(SessionKeyErasedError):
        never_fetched.create_message("s", AGENT, text_message(1, "more"))


def test_a_process_that_cached_the_key_loses_it_when_its_key_cache_expires(client, database_name, key, reader):
    settings = EncryptionSettings.local(key, key_vault_namespace=f"{database_name}.keyvault", key_cache_seconds=0.05)
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "s")
    repo.create_message("s", AGENT, text_message(0, "hello"))
    assert repo.list_messages("s", AGENT)

    erase_in_another_process(reader, database_name, "s")
    time.sleep(0.3)  # past the 50 ms cache

    with pytest.raises(SessionKeyErasedError):
        repo.list_messages("s", AGENT)


def test_erase_needs_encryption_settings_and_the_manager_erases_its_own_session(client, database_name, settings):
    session_manager = manager(client, database_name, encryption=settings)
    converse(session_manager)

    with pytest.raises(ValueError, match="encryption"):
        repository(client, database_name).erase_session_keys("s-1")
    assert session_manager.erase_session_keys() == 1
    with pytest.raises(SessionKeyErasedError):
        session_manager.update_metadata({"address": "new"})


def test_a_manager_or_the_factory_erases_any_session_by_id_and_refuses_bad_ids(client, database_name, settings):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "other")
    new_session(repo, "third")
    session_manager = manager(client, database_name, encryption=settings)
    converse(session_manager)

    assert session_manager.erase_session_keys("other") == 1
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
    )
    assert factory.erase_session_keys("third") == 1
    for bad in ({"$ne": None}, ["third"], "", 5):
        with pytest.raises(InvalidIdError):
            session_manager.erase_session_keys(bad)
        with pytest.raises(InvalidIdError):
            factory.erase_session_keys(bad)

    fresh = repository(client, database_name, encryption=settings)
    for erased in ("other", "third"):
        with pytest.raises(SessionKeyErasedError):
            fresh.read_agent(erased, AGENT)
    assert fresh.list_messages("s-1", AGENT)  # the manager's own session is untouched


def test_a_session_deleted_and_created_again_gets_a_working_key(client, database_name, settings):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "again")
    repo.erase_session_keys("again")
    repo.delete_session("again")

    new_session(repo, "again")
    repo.create_message("again", AGENT, text_message(0, "fresh"))

    assert repository(client, database_name, encryption=settings).list_messages("again", AGENT) == [
        text_message(0, "fresh")
    ]


# --------------------------------------------------------------------------- mixed collections


def test_a_session_written_before_encryption_stays_readable_and_clear(client, database_name, settings, reader):
    before = manager(client, database_name, "old")
    agent = converse(before)

    after = manager(client, database_name, "old", encryption=settings)
    resumed = Agent(agent_id=AGENT, model=ScriptedModel(["later answer"]), session_manager=after, callback_handler=None)
    assert resumed.messages == agent.messages
    resumed("later question")
    after.update_metadata({"address": "still clear"})
    after.add_feedback({"rating": "up", "comment": "clear comment"})

    stored = reader[database_name][COLLECTION].find_one({"_id": "old"})
    assert KEY_ID_FIELD not in stored
    raw = raw_bytes(reader, database_name)
    assert all(text.encode() in raw for text in ("later question", "still clear", "clear comment"))
    assert [m.message_id for m in repository(client, database_name).list_messages("old", AGENT)] == [0, 1, 2, 3, 4, 5]


def test_encrypted_and_clear_sessions_share_a_collection(client, database_name, settings, reader):
    converse(manager(client, database_name, "clear"))
    converse(manager(client, database_name, "secret", encryption=settings))

    repo = repository(client, database_name, encryption=settings)
    assert len(repo.list_messages("clear", AGENT)) == len(repo.list_messages("secret", AGENT)) == 4
    assert [s["session_id"] for s in repository(client, database_name).list_sessions()["sessions"]] == [
        "secret",
        "clear",
    ]


# --------------------------------------------------------------------------- cost


def test_encryption_adds_no_round_trip_per_message_and_one_key_vault_find_per_process(
    database_name, settings, fresh_client
):
    plain_log, encrypted_log = KeyVaultCommands(), KeyVaultCommands()
    for log, session_id, options in ((plain_log, "plain", {}), (encrypted_log, "encrypted", {"encryption": settings})):
        session_manager = manager(fresh_client(log), database_name, session_id, **options)
        agent = Agent(
            agent_id=AGENT,
            model=ScriptedModel([f"answer {i}" for i in range(6)]),
            session_manager=session_manager,
            system_prompt="prompt",
            callback_handler=None,
        )
        for turn in range(6):
            agent.state.set("turn", turn)
            agent(f"question {turn}")

    key_vault = encrypted_log.on(database_name, "keyvault")
    assert key_vault == ["createIndexes", "insert", "find"]  # once per process, the session's key, its one lookup
    assert encrypted_log.off_key_vault(database_name) == plain_log.off_key_vault(database_name)  # 12 messages


def test_a_session_created_with_encryption_costs_its_key_and_one_lookup(database_name, settings, fresh_client):
    log = KeyVaultCommands()
    repo = repository(fresh_client(log), database_name, encryption=settings)
    new_session(repo, "warm-up")  # the key vault's index, once per process
    log.clear()

    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))

    # the new key, and its one lookup (to encrypt the viewer password; later writes find it in the key cache)
    assert log.on(database_name, "keyvault") == ["insert", "find"]
    assert log.on(database_name, COLLECTION) == ["insert"]


def test_an_unchanged_agent_is_not_written_again_though_its_ciphertext_would_differ(
    client, database_name, settings, command_log
):
    repo = repository(client, database_name, encryption=settings)
    new_session(repo, "s")
    session_agent = repo.read_agent("s", AGENT)
    command_log.clear()

    repo.update_agent("s", session_agent)

    assert command_log.commands == []


# --------------------------------------------------------------------------- in another process


@pytest.mark.slow
def test_an_encrypted_session_resumes_in_a_fresh_process(client, database_name, settings, key, mongo_uri, tmp_path):
    agent = converse(manager(client, database_name, encryption=settings))
    key_file = save_local_key(tmp_path / "master.key", key)

    def child() -> dict[str, Any]:
        command = [sys.executable, str(CHILD), mongo_uri, database_name, str(key_file), "s-1", AGENT]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        return json.loads(result.stdout.strip().splitlines()[-1])

    resumed = child()
    assert resumed["messages"] == json.loads(json.dumps(agent.messages))
    assert resumed["state"] == agent.state.get()

    repository(client, database_name, encryption=settings).erase_session_keys("s-1")
    assert child() == {"error": "SessionKeyErasedError"}


@pytest.mark.slow
def test_the_library_imports_and_works_without_the_encryption_extra(mongo_uri, database_name):
    script = (
        "import sys; sys.modules['pymongocrypt'] = None\n"
        "import mongodb_session_manager as m\n"
        f"r = m.MongoDBSessionRepository({mongo_uri!r}, database_name={database_name!r})\n"
        "try:\n"
        "    m.MongoDBSessionRepository(" + repr(mongo_uri) + ", encryption=m.EncryptionSettings.local(bytes(96)))\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert "mongodb-session-manager[encryption]" in result.stdout


# --------------------------------------------------------------------------- settings and entry points


def test_encryption_without_pymongocrypt_is_a_clear_import_error_before_any_command(
    client, database_name, settings, command_log, monkeypatch
):
    monkeypatch.setitem(sys.modules, "pymongocrypt", None)
    command_log.clear()

    with pytest.raises(ImportError, match=r"mongodb-session-manager\[encryption\]"):
        repository(client, database_name, encryption=settings)
    assert command_log.commands == []


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"kms_providers": {"vault": {}}, "kms_provider": "vault"}, ValueError, "unknown KMS provider"),
        ({"kms_providers": {"local": {"key": b"short"}}}, ValueError, "96 bytes"),
        ({"kms_providers": {}}, TypeError, "non-empty"),
        ({"key_vault_namespace": "nodot"}, ValueError, "<database>.<collection>"),
        ({"key_vault_namespace": "db.$bad"}, ValueError, "<database>.<collection>"),
        ({"deterministic_metadata_fields": ["a"], "random_metadata_fields": ["a"]}, ValueError, "overlap"),
        ({"deterministic_metadata_fields": ["a"], "random_metadata_fields": ["a.b"]}, ValueError, "overlap"),
        ({"random_metadata_fields": "address"}, TypeError, "list of metadata field names"),
        ({"random_metadata_fields": ["$where"]}, ValueError, "random_metadata_fields"),
        ({"kms_provider": "aws"}, ValueError, "must be one of the kms_providers"),
        (
            {"kms_providers": {"aws": {"accessKeyId": "a", "secretAccessKey": "b"}}, "kms_provider": "aws"},
            ValueError,
            "master_key",
        ),
        ({"master_key": {"key": "x"}}, ValueError, "takes no master_key"),
        ({"key_cache_seconds": 0}, ValueError, "positive"),
    ],
)
def test_invalid_settings_are_refused_with_a_typed_error(key, options, error, match):
    fields = {"kms_providers": {"local": {"key": key}}, **options}

    with pytest.raises(error, match=match):
        EncryptionSettings(**fields)


def test_settings_never_show_their_key_material(key):
    settings = EncryptionSettings.local(key)

    assert key.hex() not in repr(settings) and repr(key) not in repr(settings)
    assert settings.deterministic_metadata_fields == ()


def test_a_local_key_file_is_private_and_round_trips(tmp_path, key):
    path = save_local_key(tmp_path / "master.key", key)

    assert load_local_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        save_local_key(path, key)
    (tmp_path / "short.key").write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match="96 bytes"):
        load_local_key(tmp_path / "short.key")


def test_every_entry_point_takes_encryption(client, database_name, settings, reader):
    made = [
        create_mongodb_session_manager(
            "f", client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
        ),
        MongoDBSessionManagerFactory(
            client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
        ).create_session_manager("g"),
        MongoDBSessionManagerFactory(
            client=client, database_name=database_name, collection_name=COLLECTION
        ).create_session_manager("h", encryption=settings),
    ]
    close_global_factory()
    try:
        factory = initialize_global_factory(
            client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
        )
        made.append(factory.create_session_manager("i"))
    finally:
        close_global_factory()
    for session_manager in made:
        converse(session_manager)

    assert reader[database_name][COLLECTION].count_documents({KEY_ID_FIELD: {"$exists": True}}) == 4
    assert_no_plaintext(reader, database_name, SECRETS["question"])
    with pytest.raises(TypeError, match="EncryptionSettings"):
        repository(client, database_name, encryption={"local": {"key": bytes(96)}})


def test_a_factory_manager_can_turn_the_factorys_encryption_off(client, database_name, settings, reader):
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, encryption=settings
    )

    converse(factory.create_session_manager("clear", encryption=None))

    assert KEY_ID_FIELD not in reader[database_name][COLLECTION].find_one({"_id": "clear"})
