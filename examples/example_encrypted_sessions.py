"""Encrypted sessions: the database never sees the conversation in clear, and erasing the key erases the session.

Run it with ``uv run --extra encryption python examples/example_encrypted_sessions.py`` (embedded MongoDB when
``MONGODB_URI`` is unset; the ``encryption`` extra brings pymongo's client-side field-level encryption).

1. A local master key is generated and saved to a private file (mode 0600), as a development setup would.
2. An agent talks with encryption on; the raw document in MongoDB holds no plaintext of the conversation, the
   comment or the encrypted metadata, while roles, timestamps and metrics stay clear.
3. The session resumes (the agent remembers the user's name) and is found by a deterministic metadata field.
4. Without the key, reading it raises ``EncryptionKeyError``; after ``erase_session_keys()``, even with the key,
   ``SessionKeyErasedError``, while listing the session still works.

The key vault is a collection of this run's own (dropped at the end), so each run's new master key starts clean.
"""

import tempfile
import uuid
from pathlib import Path

import bson
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import (
    EncryptionKeyError,
    EncryptionSettings,
    MongoDBSessionManager,
    SessionKeyErasedError,
    create_mongodb_session_manager,
)
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.documents import DEFAULT_COLLECTION, DEFAULT_DATABASE
from mongodb_session_manager.embedded import default_connection_string
from mongodb_session_manager.encryption import generate_local_key, is_encrypted, load_local_key, save_local_key
from mongodb_session_manager.startup import require_mongodb

AGENT_ID = "assistant"
SECRETS = ("Alice", "12 Hidden Lane", "C-42", "Quick and kind")


def open_session(session_id: str, encryption: EncryptionSettings | None) -> tuple[Agent, MongoDBSessionManager]:
    """Open the session (created on first use) with these encryption settings, and attach it to a new agent."""
    session_manager = create_mongodb_session_manager(session_id=session_id, encryption=encryption)
    agent = Agent(
        agent_id=AGENT_ID,
        model=create_model(),
        tools=[calculator],
        system_prompt="You help customers. Use the calculator for arithmetic.",
        session_manager=session_manager,
        callback_handler=None,
    )
    return agent, session_manager


def ask(agent: Agent, prompt: str) -> None:
    print(f"  user:      {prompt}")
    print(f"  assistant: {str(agent(prompt)).strip()}")


def show_raw_document(raw: MongoClient, session_id: str) -> None:
    """What the database, and any backup of it, holds: the secrets searched for in the document's BSON."""
    document = raw[DEFAULT_DATABASE][DEFAULT_COLLECTION].find_one({"_id": session_id})
    encoded = bson.encode(document)
    found = [secret for secret in SECRETS if secret.encode() in encoded]
    first = document["agents"][AGENT_ID]["messages"][0]
    latest = document["agents"][AGENT_ID]["messages"][-1]
    print(f"raw document: {len(found)} of {len(SECRETS)} secrets in clear {found}")
    print(
        f"  message role {first['message']['role']!r} is clear, its content encrypted: "
        f"{is_encrypted(first['message']['content'])}; "
        f"output tokens in clear: {latest['event_loop_metrics']['accumulated_usage']['outputTokens']}"
    )
    metadata = document["metadata"]
    print(f"  metadata: plan={metadata['plan']!r} clear, customer_id and address encrypted: "
          f"{is_encrypted(metadata['customer_id']) and is_encrypted(metadata['address'])}")  # fmt: skip


def main() -> None:
    session_id = f"encrypted-{uuid.uuid4().hex[:8]}"
    key_vault = f"encryption.keyVault_example_{uuid.uuid4().hex[:8]}"
    print(f"Model: {describe_model(create_model())}")
    print(f"Session {session_id!r}, key vault {key_vault}")

    with tempfile.TemporaryDirectory() as directory, MongoClient(default_connection_string()) as raw:
        key_file = save_local_key(Path(directory) / "master.key", generate_local_key())
        print(f"local master key saved to a private file (mode {key_file.stat().st_mode & 0o777:o})")
        encryption = EncryptionSettings.local(
            load_local_key(key_file),
            key_vault_namespace=key_vault,
            deterministic_metadata_fields=["customer_id"],  # encrypted, and still found by equality
            random_metadata_fields=["address"],  # encrypted, not queryable
        )
        try:
            agent, session_manager = open_session(session_id, encryption)
            ask(agent, "Hi! My name is Alice and I live at 12 Hidden Lane.")
            ask(agent, "What is 12 * (3 + 4)?")
            session_manager.update_metadata({"customer_id": "C-42", "address": "12 Hidden Lane", "plan": "pro"})
            session_manager.add_feedback({"rating": "up", "comment": "Quick and kind"})
            written = list(agent.messages)
            session_manager.close()

            show_raw_document(raw, session_id)

            agent, session_manager = open_session(session_id, encryption)
            print(f"resumed {len(agent.messages)} messages, equal to those written: {agent.messages == written}")
            ask(agent, "What is my name?")
            listed = session_manager.session_repository.list_sessions(metadata={"customer_id": "C-42"})
            print(f"list_sessions(metadata={{'customer_id': 'C-42'}}): {[s['session_id'] for s in listed['sessions']]}")

            try:
                open_session(session_id, None)
            except EncryptionKeyError as error:
                print(f"without the key: {type(error).__name__}")

            print(f"erase_session_keys(): {session_manager.erase_session_keys()} data key deleted")
            listed = session_manager.session_repository.list_sessions(prefix=session_id)["sessions"]
            print(f"listing still works: {[(s['session_id'], s['message_counts']) for s in listed]}")
            session_manager.close()
            try:
                open_session(session_id, encryption)
            except SessionKeyErasedError as error:
                print(f"after erase_session_keys: {type(error).__name__}: {str(error).split(' | ')[-1]}")
        finally:
            database, _, collection = key_vault.partition(".")
            raw[database].drop_collection(collection)  # this run's key vault: its keys are useless without the file


if __name__ == "__main__":
    require_mongodb("example_encrypted_sessions")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
