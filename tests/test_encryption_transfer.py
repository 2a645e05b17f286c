"""Export and import of encrypted sessions: ciphertext kept by default, clear values with ``decrypt=True``."""

from __future__ import annotations

import io
import json
from typing import Any

import bson
import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import (
    EncryptionSettings,
    MongoDBSessionManager,
    MongoDBSessionRepository,
    SessionKeyErasedError,
    export_sessions,
    import_sessions,
)
from mongodb_session_manager.encryption import KEY_ID_FIELD, generate_local_key, is_encrypted
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
SECRETS = {
    "question": "QUESTION-saffron-glacier",
    "answer": "ANSWER-tin-meadow",
    "state": "STATE-hollow-reed",
    "prompt": "PROMPT-cinder-moth",
    "comment": "COMMENT-pewter-bay",
    "address": "ADDRESS-7-quiet-row",
    "customer": "CUSTOMER-k9-lotus",
}


@pytest.fixture
def settings(database_name: str) -> EncryptionSettings:
    return EncryptionSettings.local(
        generate_local_key(),
        key_vault_namespace=f"{database_name}.keyvault",
        deterministic_metadata_fields=["customer"],
        random_metadata_fields=["address"],
    )


@pytest.fixture
def target(client: MongoClient, database_name: str) -> Any:
    """A second database (dropped afterwards)."""
    name = f"{database_name}_copy"
    yield name
    client.drop_database(name)


def repository(client: MongoClient, database_name: str, collection: str = COLLECTION, **options: Any):
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=collection, **options)


def write_session(client: MongoClient, database_name: str, settings: EncryptionSettings, session_id: str) -> str:
    """An encrypted session written by a real agent (promoted to the collection layout); returns its password."""
    manager = MongoDBSessionManager(
        session_id,
        client=client,
        database_name=database_name,
        collection_name=COLLECTION,
        max_embedded_messages=2,
        encryption=settings,
    )
    agent = Agent(
        agent_id="a",
        model=ScriptedModel([SECRETS["answer"], "second"]),
        session_manager=manager,
        system_prompt=SECRETS["prompt"],
        callback_handler=None,
    )
    agent.state.set("secret", SECRETS["state"])
    agent(SECRETS["question"])
    agent("again")
    manager.update_metadata({"address": SECRETS["address"], "customer": SECRETS["customer"], "plan": "pro"})
    manager.add_feedback({"rating": "up", "comment": SECRETS["comment"]})
    return manager.get_session_viewer_password()


def export_text(repo: MongoDBSessionRepository, **options: Any) -> str:
    out = io.StringIO()
    export_sessions(repo, out, **options)
    return out.getvalue()


def plaintexts_in(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [text for text in SECRETS.values() if text.encode() in raw]


def collection_bytes(client: MongoClient, database_name: str, *collections: str) -> bytes:
    database = client[database_name]
    return b"".join(bson.encode(document) for name in collections for document in database[name].find())


def assert_reads_equal(source: MongoDBSessionRepository, copy: MongoDBSessionRepository, session_id: str) -> None:
    assert copy.read_session(session_id) == source.read_session(session_id)
    assert copy.read_agent(session_id, "a") == source.read_agent(session_id, "a")
    assert copy.list_messages(session_id, "a") == source.list_messages(session_id, "a")
    assert copy.get_metadata(session_id) == source.get_metadata(session_id)
    assert copy.get_feedbacks(session_id) == source.get_feedbacks(session_id)
    assert copy.get_viewer_password(session_id) == source.get_viewer_password(session_id)


def test_an_export_keeps_the_ciphertext_and_imports_readable_with_the_same_key_vault(client, database_name, settings):
    password = write_session(client, database_name, settings, "s-1")
    source = repository(client, database_name, encryption=settings)

    text = export_text(source)

    assert plaintexts_in(text) == [] and password not in text
    session = json.loads(text)["session"]
    assert session[KEY_ID_FIELD]["$binary"]["subType"] == "04"
    assert session["agents"]["a"]["messages"][0]["message"]["content"]["$binary"]["subType"] == "06"
    copy = repository(client, database_name, "copied", max_embedded_messages=2, encryption=settings)
    assert import_sessions(copy, io.StringIO(text))["imported"] == 1
    stored = client[database_name]["copied"].find_one({"_id": "s-1"})
    assert stored["agents"]["a"]["message_storage"] == "collection"  # placed by the importing repository's rules
    assert plaintexts_in(collection_bytes(client, database_name, "copied", "copied.messages")) == []
    assert_reads_equal(source, repository(client, database_name, "copied", encryption=settings), "s-1")
    found = copy.list_sessions(metadata={"customer": SECRETS["customer"]})["sessions"]
    assert [summary["session_id"] for summary in found] == ["s-1"]  # the deterministic field still matches
    assert repository(client, database_name, "copied").list_sessions()["sessions"][0]["session_id"] == "s-1"


def test_a_decrypted_export_is_clear_and_imports_as_a_clear_session(client, database_name, target, settings):
    password = write_session(client, database_name, settings, "s-1")
    source = repository(client, database_name, encryption=settings)

    text = export_text(source, decrypt=True)

    assert plaintexts_in(text) == list(SECRETS.values()) and password in text
    assert KEY_ID_FIELD not in json.loads(text)["session"] and '"subType": "06"' not in text
    assert import_sessions(repository(client, target), io.StringIO(text))["imported"] == 1
    assert_reads_equal(source, repository(client, target), "s-1")  # read without any key
    into_encrypted = repository(client, database_name, "copied", encryption=settings)
    assert import_sessions(into_encrypted, io.StringIO(text))["imported"] == 1
    stored = client[database_name]["copied"].find_one({"_id": "s-1"})
    assert KEY_ID_FIELD not in stored and not is_encrypted(stored["metadata"]["customer"])
    more = SessionMessage(message={"role": "user", "content": [{"text": SECRETS["question"]}]}, message_id=4)
    into_encrypted.create_message("s-1", "a", more)  # a clear session stays clear
    stored = client[database_name]["copied"].find_one({"_id": "s-1"})
    assert stored["agents"]["a"]["messages"][-1]["message"]["content"] == [{"text": SECRETS["question"]}]
    assert plaintexts_in(collection_bytes(client, database_name, "copied", "copied.messages")) == list(SECRETS.values())


def test_decrypting_a_clear_session_exports_it_as_it_is(client, database_name, settings):
    plain = repository(client, database_name)
    Agent(
        agent_id="a",
        model=ScriptedModel(["hi"]),
        session_manager=MongoDBSessionManager(
            "clear", client=client, database_name=database_name, collection_name=COLLECTION
        ),
        callback_handler=None,
    )("hello")

    assert export_text(repository(client, database_name, encryption=settings), decrypt=True) == export_text(plain)


def test_decrypt_needs_the_keys_and_an_erased_session_fails_with_a_typed_error(client, database_name, settings):
    write_session(client, database_name, settings, "s-1")
    out = io.StringIO()
    with pytest.raises(ValueError, match="decrypt=True needs a repository with encryption"):
        export_sessions(repository(client, database_name), out, decrypt=True)
    assert out.getvalue() == ""

    source = repository(client, database_name, encryption=settings)
    source.erase_session_keys("s-1")

    with pytest.raises(SessionKeyErasedError, match="session_id=<s-1>"):
        export_text(source, decrypt=True)
    assert plaintexts_in(export_text(source)) == []  # the ciphertext still exports, unreadable for good
