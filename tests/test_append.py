"""Appending a message is a plain ``$push``: a replica set logs the new message, not the whole array."""

import bson
import pytest
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import DuplicateMessageError, MongoDBSessionRepository

SESSION, AGENT = "s-append", "agent.v2"


@pytest.fixture
def repo(client: MongoClient, database_name: str) -> MongoDBSessionRepository:
    repository = MongoDBSessionRepository(
        client=client,
        database_name=database_name,
        collection_name="sessions",
        max_embedded_messages=2000,  # the long agent below stays embedded (1,000 is the promotion default)
    )
    repository.create_session(Session(session_id=SESSION, session_type=SessionType.AGENT))
    repository.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    return repository


def message(index: int, text: str = "hello") -> SessionMessage:
    return SessionMessage.from_message({"role": "user", "content": [{"text": f"{text} {index}"}]}, index)


def fill(client: MongoClient, repo: MongoDBSessionRepository, count: int) -> None:
    """Store ``count`` messages in one command (setting up, not the behaviour under test)."""
    elements = [bson.decode(bson.encode(message(i).to_dict())) for i in range(count)]
    path = f"agents.{AGENT.replace('.', '%2E')}.messages"
    repo.collection.update_one({"_id": SESSION}, {"$push": {path: {"$each": elements}}})


def latest_oplog_entry(client: MongoClient, namespace: str) -> dict:
    oplog = client.local["oplog.rs"]
    if "oplog.rs" not in client.local.list_collection_names():
        pytest.skip("this server keeps no oplog (a standalone mongod): use a replica set or the embedded server")
    entry = oplog.find_one({"ns": namespace, "op": "u"}, sort=[("$natural", -1)])
    assert entry is not None
    return entry


def test_an_append_to_a_long_agent_logs_only_the_new_message(client, repo, command_log):
    fill(client, repo, 1000)
    new = message(1000, "x" * 500)
    command_log.clear()

    repo.create_message(SESSION, AGENT, new)

    assert command_log.commands == ["update"]
    entry = latest_oplog_entry(client, repo.collection.full_name)
    assert len(bson.encode(entry)) < 4 * len(bson.encode(new.to_dict()))
    assert repo.list_messages(SESSION, AGENT, offset=1000) == [new]


def test_an_out_of_order_id_still_ends_up_in_order(repo, command_log):
    for index in (0, 1, 3):
        repo.create_message(SESSION, AGENT, message(index))
    command_log.clear()

    repo.create_message(SESSION, AGENT, message(2))

    assert command_log.commands == ["update", "update"]
    assert [m.message_id for m in repo.list_messages(SESSION, AGENT)] == [0, 1, 2, 3]


@pytest.mark.parametrize("duplicate", [0, 2], ids=["older", "latest"])
def test_a_duplicate_id_raises_and_writes_nothing(repo, duplicate):
    for index in range(3):
        repo.create_message(SESSION, AGENT, message(index))
    before = bson.encode(repo.collection.find_one({"_id": SESSION}))

    with pytest.raises(DuplicateMessageError):
        repo.create_message(SESSION, AGENT, message(duplicate, "again"))

    assert bson.encode(repo.collection.find_one({"_id": SESSION})) == before
