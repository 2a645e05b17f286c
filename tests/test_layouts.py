"""The two message layouts behind one repository: the collection layout, its costs, GridFS, settings."""

import os

import bson
import pytest
from pymongo import MongoClient
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    DuplicateMessageError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionNotFoundError,
    close_global_factory,
    create_mongodb_session_manager,
    initialize_global_factory,
)
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
SESSION, AGENT = "s-layout", "agent.v2"
MB = 1024 * 1024


def make_repo(client: MongoClient, database_name: str, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


@pytest.fixture
def repo(client, database_name) -> MongoDBSessionRepository:
    """A collection-layout repository with one session and one agent."""
    repository = make_repo(client, database_name, message_storage="collection")
    repository.create_session(Session(session_id=SESSION, session_type=SessionType.AGENT))
    repository.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    return repository


STAMP = "2025-01-01T00:00:00+00:00"


def message(index: int, text: str = "hello") -> SessionMessage:
    content = {"role": "user", "content": [{"text": f"{text} {index}"}]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


def session_document(client, database_name) -> dict:
    return client[database_name][COLLECTION].find_one({"_id": SESSION})


def make_manager(client, database_name, **kwargs) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        session_id=SESSION, client=client, database_name=database_name, collection_name=COLLECTION, **kwargs
    )


def make_agent(manager, responses, **kwargs) -> Agent:
    return Agent(
        agent_id=AGENT,
        model=ScriptedModel(responses, model_id="scripted-model"),
        session_manager=manager,
        callback_handler=None,
        system_prompt="You help.",
        **kwargs,
    )


# ----------------------------------------------------------------- where the messages go


def test_a_new_agent_gets_the_marker_and_its_messages_go_to_the_sibling_collection(client, database_name, repo):
    for index in range(3):
        repo.create_message(SESSION, AGENT, message(index))

    agent = session_document(client, database_name)["agents"]["agent%2Ev2"]
    assert agent["message_storage"] == "collection"
    assert "messages" not in agent
    rows = list(client[database_name][f"{COLLECTION}.messages"].find({}, {"_id": 0}).sort("message_id", 1))
    assert [(row["session_id"], row["agent_id"], row["message_id"]) for row in rows] == [
        (SESSION, AGENT, 0),
        (SESSION, AGENT, 1),
        (SESSION, AGENT, 2),
    ]
    assert rows[0]["message"] == message(0).message
    assert repo.list_messages(SESSION, AGENT) == [message(i) for i in range(3)]


def test_an_embedded_repository_reads_and_writes_a_collection_agent(client, database_name, repo):
    repo.create_message(SESSION, AGENT, message(0))
    embedded = make_repo(client, database_name)

    embedded.create_message(SESSION, AGENT, message(1))
    embedded.update_message(SESSION, AGENT, message(1, "redacted"))
    embedded.set_message_fields(SESSION, AGENT, 1, {"event_loop_metrics": {"cycles": 1}})

    assert embedded.list_messages(SESSION, AGENT) == [message(0), message(1, "redacted")]
    assert embedded.read_message(SESSION, AGENT, 1) == message(1, "redacted")
    assert "messages" not in session_document(client, database_name)["agents"]["agent%2Ev2"]
    row = client[database_name][f"{COLLECTION}.messages"].find_one({"message_id": 1})
    assert row["event_loop_metrics"] == {"cycles": 1}


def test_collection_layout_keeps_the_contract_errors(client, database_name, repo):
    repo.create_message(SESSION, AGENT, message(0))
    with pytest.raises(DuplicateMessageError):
        repo.create_message(SESSION, AGENT, message(0, "again"))
    with pytest.raises(SessionNotFoundError):
        repo.update_message(SESSION, AGENT, message(7))
    with pytest.raises(SessionNotFoundError):
        repo.set_message_fields(SESSION, AGENT, 7, {"event_loop_metrics": {}})
    with pytest.raises(SessionNotFoundError):
        repo.create_message(SESSION, "ghost", message(0))
    assert repo.read_message(SESSION, AGENT, 7) is None
    assert repo.list_messages(SESSION, AGENT) == [message(0)]


def test_pages_are_message_id_ranges(repo):
    for index in range(6):
        repo.create_message(SESSION, AGENT, message(index))

    assert [m.message_id for m in repo.list_messages(SESSION, AGENT, offset=2, limit=3)] == [2, 3, 4]
    assert [m.message_id for m in repo.list_messages(SESSION, AGENT, offset=4)] == [4, 5]
    assert repo.list_messages(SESSION, AGENT, limit=0) == []


def test_a_recreated_agent_with_embedded_messages_keeps_them_embedded(client, database_name):
    embedded = make_repo(client, database_name)
    embedded.create_session(Session(session_id=SESSION, session_type=SessionType.AGENT))
    embedded.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    embedded.create_message(SESSION, AGENT, message(0))

    collection = make_repo(client, database_name, message_storage="collection")
    collection.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={"v": 2}, conversation_manager_state={}))
    collection.create_message(SESSION, AGENT, message(1))

    agent = session_document(client, database_name)["agents"]["agent%2Ev2"]
    assert "message_storage" not in agent
    assert [m["message_id"] for m in agent["messages"]] == [0, 1]


# ----------------------------------------------------------------- costs


def test_a_collection_append_is_one_write_and_the_session_document_does_not_grow(
    client, database_name, repo, command_log
):
    repo.create_message(SESSION, AGENT, message(0))
    size = len(bson.encode(session_document(client, database_name)))
    command_log.clear()

    for index in range(1, 101):
        repo.create_message(SESSION, AGENT, message(index, "x" * 1000))

    assert command_log.commands == ["insert"] * 100
    assert len(bson.encode(session_document(client, database_name))) == size


def test_a_collection_turn_costs_at_most_three_writes_and_an_unchanged_sync_nothing(client, database_name, command_log):
    manager = make_manager(client, database_name, message_storage="collection")
    agent = make_agent(manager, ["first", "second"])
    agent("hello")
    command_log.clear()

    agent("again")
    assert len(command_log.writes) <= 3
    assert command_log.reads == []

    command_log.clear()
    manager.sync_agent(agent)
    manager.sync_agent(agent)
    assert command_log.commands == []


@pytest.mark.parametrize("window", [None, 2], ids=["whole-history", "window"])
def test_resuming_a_collection_agent_costs_at_most_three_reads(client, database_name, command_log, window):
    def conversation_manager():
        return SlidingWindowConversationManager(window_size=window) if window else None

    extra = {"conversation_manager": conversation_manager()} if window else {}
    agent = make_agent(make_manager(client, database_name, message_storage="collection"), ["a", "b", "c"], **extra)
    for turn in range(3):
        agent(f"turn {turn}")
    make_manager(client, database_name).close()  # indexes and session exist: the resume below is reads only
    command_log.clear()

    extra = {"conversation_manager": conversation_manager()} if window else {}
    resumed = make_agent(make_manager(client, database_name), [], **extra)

    assert len(command_log.reads) <= 3
    assert command_log.writes == []
    assert resumed.messages == agent.messages


def test_a_long_collection_history_comes_back_in_one_read(client, database_name, repo, command_log):
    """More messages than a find's default first batch (101) still come back without a getMore."""
    repo.create_session(Session(session_id="long", session_type=SessionType.AGENT))
    repo.create_agent("long", SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
    for index in range(150):
        repo.create_message(
            "long", "a", SessionMessage.from_message({"role": "user", "content": [{"text": "x"}]}, index)
        )
    command_log.clear()

    assert [m.message_id for m in repo.list_messages("long", "a")] == list(range(150))
    assert [m["message_id"] for m in repo.session_messages("long")["a"]] == list(range(150))
    assert "getMore" not in command_log.commands


# ----------------------------------------------------------------- GridFS and delete


def big_document_message(index: int, payload: bytes) -> SessionMessage:
    block = {"document": {"format": "pdf", "name": "scan", "source": {"bytes": payload}}}
    content = {"role": "user", "content": [{"text": "see attached"}, block]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


@pytest.mark.parametrize("storage", ["collection", "embedded"])
def test_a_message_bigger_than_a_document_is_stored_in_gridfs_and_restored_byte_for_byte(
    client, database_name, storage
):
    repository = make_repo(client, database_name, message_storage=storage)
    repository.create_session(Session(session_id=SESSION, session_type=SessionType.AGENT))
    repository.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    repository.create_message(SESSION, AGENT, message(0))
    payload = os.urandom(20 * MB)

    repository.create_message(SESSION, AGENT, big_document_message(1, payload))
    repository.create_message(SESSION, AGENT, message(2))

    files = list(client[database_name][f"{COLLECTION}.files"].find())
    assert [file["metadata"]["session_id"] for file in files] == [SESSION]
    restored = make_repo(client, database_name).list_messages(SESSION, AGENT)
    assert [m.message_id for m in restored] == [0, 1, 2]
    assert restored[1].message["content"][1]["document"]["source"]["bytes"] == payload
    assert restored[1] == big_document_message(1, payload)
    assert make_repo(client, database_name).read_message(SESSION, AGENT, 1) == big_document_message(1, payload)


def test_redacting_a_message_held_in_gridfs_replaces_it(client, database_name, repo):
    repo.create_message(SESSION, AGENT, big_document_message(0, os.urandom(17 * MB)))

    repo.update_message(SESSION, AGENT, message(0, "redacted"))

    assert repo.list_messages(SESSION, AGENT) == [message(0, "redacted")]
    assert client[database_name][f"{COLLECTION}.files"].count_documents({}) == 0
    assert client[database_name][f"{COLLECTION}.chunks"].count_documents({}) == 0


@pytest.mark.parametrize("storage", ["collection", "embedded"])
def test_delete_session_removes_message_documents_and_gridfs_files(client, database_name, storage):
    repository = make_repo(client, database_name, message_storage=storage, max_embedded_messages=2)
    for session_id in (SESSION, "other"):
        repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        repository.create_agent(session_id, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
        for index in range(3):  # the third message promotes an embedded agent (max_embedded_messages=2)
            repository.create_message(session_id, AGENT, message(index))
        repository.create_message(session_id, AGENT, big_document_message(3, b"x" * (17 * MB)))
    database = client[database_name]

    repository.delete_session(SESSION)

    assert database[f"{COLLECTION}.messages"].distinct("session_id") == ["other"]
    assert [file["metadata"]["session_id"] for file in database[f"{COLLECTION}.files"].find()] == ["other"]
    other_file = database[f"{COLLECTION}.files"].find_one()["_id"]
    assert database[f"{COLLECTION}.chunks"].distinct("files_id") == [other_file]
    assert repository.list_messages("other", AGENT)[3] == big_document_message(3, b"x" * (17 * MB))


# ----------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "kwargs",
    [{"message_storage": "sideways"}, {"max_embedded_messages": 0}, {"max_embedded_messages": True}],
    ids=["storage", "zero", "bool"],
)
def test_invalid_layout_settings_are_refused_before_connecting(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MongoDBSessionRepository(connection_string="mongodb://127.0.0.1:1", **kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MongoDBSessionManagerFactory(client=MongoClient("mongodb://127.0.0.1:1", connect=False), **kwargs)


def test_the_factory_setting_is_the_default_for_its_managers_and_can_be_overridden(client, database_name):
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, message_storage="collection"
    )
    default = factory.create_session_manager("a", max_embedded_messages=5)
    overridden = factory.create_session_manager("b", message_storage="embedded")

    assert (default.session_repository.message_storage, default.session_repository.max_embedded_messages) == (
        "collection",
        5,
    )
    assert overridden.session_repository.message_storage == "embedded"


def test_the_global_factory_and_the_convenience_function_take_the_settings(client, database_name):
    close_global_factory()
    try:
        factory = initialize_global_factory(
            client=client, database_name=database_name, message_storage="collection", max_embedded_messages=7
        )
        manager = factory.create_session_manager("g")
        assert (manager.session_repository.message_storage, manager.session_repository.max_embedded_messages) == (
            "collection",
            7,
        )
    finally:
        close_global_factory()
    manager = create_mongodb_session_manager(
        "c", client=client, database_name=database_name, message_storage="collection"
    )
    assert manager.session_repository.message_storage == "collection"
    with pytest.raises(TypeError, match="message_storage"):
        create_mongodb_session_manager("c", client=client, message_storge="collection")
