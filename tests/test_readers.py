"""Reading messages for tools (viewer, playground, exports): one layout-aware API, same answer in every layout."""

import os

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository, SessionNotFoundError
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
AGENT = "agent.v2"
MB = 1024 * 1024
STAMP = "2025-01-01T00:00:00+00:00"
ANSWERS = ["one", "two", "three"]
LAYOUTS = ["embedded", "collection", "promoted"]
SETTINGS = {
    "embedded": {},
    "collection": {"message_storage": "collection"},
    "promoted": {"max_embedded_messages": 4},  # the third turn's answer (message 5) promotes the agent
}


def reader(client: MongoClient, database_name: str) -> MongoDBSessionRepository:
    """A fresh repository that has seen nothing (no cached layout) and creates no index."""
    return MongoDBSessionRepository(
        client=client, database_name=database_name, collection_name=COLLECTION, create_indexes=False
    )


def converse(client: MongoClient, database_name: str, session_id: str, agent_id: str, layout: str) -> Agent:
    """Run three turns of a real agent whose messages end up in ``layout``; return the agent."""
    with MongoDBSessionManager(
        session_id, client=client, database_name=database_name, collection_name=COLLECTION, **SETTINGS[layout]
    ) as manager:
        agent = Agent(
            agent_id=agent_id,
            model=ScriptedModel(ANSWERS),
            session_manager=manager,
            callback_handler=None,
        )
        for question in ("a", "b", "c"):
            agent(question)
    stored = client[database_name][COLLECTION].find_one({"_id": session_id})["agents"][agent_id.replace(".", "%2E")]
    assert (stored.get("message_storage") == "collection") == (layout != "embedded")
    return agent


def ids(messages: list[dict]) -> list[int]:
    return [message["message_id"] for message in messages]


@pytest.fixture(params=LAYOUTS)
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def mixed(client: MongoClient, database_name: str) -> dict[str, Agent]:
    """Session "mixed" with one agent per layout, and session "plain" with one embedded agent."""
    agents = {name: converse(client, database_name, "mixed", name, name) for name in LAYOUTS}
    converse(client, database_name, "plain", AGENT, "embedded")
    return agents


# ----------------------------------------------------------------- one agent


def test_list_message_documents_shows_every_message_with_its_metrics(client, database_name, command_log, layout):
    agent = converse(client, database_name, "s", AGENT, layout)
    repository = reader(client, database_name)
    command_log.clear()

    documents = repository.list_message_documents("s", AGENT)

    assert ids(documents) == list(range(6))
    assert [document["message"] for document in documents] == agent.messages
    assert [("event_loop_metrics" in document) for document in documents] == [False, True] * 3
    assert documents[1]["event_loop_metrics"]["accumulated_usage"]["totalTokens"] > 0
    assert {"created_at", "updated_at", "redact_message"} <= set(documents[0])
    # a repository that has not seen the agent learns its layout from the marker: one more read for the collection
    assert command_log.commands == (["find"] if layout == "embedded" else ["find", "find"])

    command_log.clear()
    assert ids(repository.list_message_documents("s", AGENT, limit=2, offset=2)) == [2, 3]
    assert repository.list_message_documents("s", AGENT, limit=0) == []
    assert command_log.commands == ["find"]


def test_latest_message_document_ships_only_the_last_message(client, database_name, command_log, layout):
    agent = converse(client, database_name, "s", AGENT, layout)
    repository = reader(client, database_name)
    command_log.clear()

    latest = repository.latest_message_document("s", AGENT)

    assert latest["message_id"] == 5
    assert latest["message"] == agent.messages[-1]
    assert latest["event_loop_metrics"]["accumulated_metrics"]["latencyMs"] >= 0
    assert command_log.commands == (["find"] if layout == "embedded" else ["find", "find"])
    assert command_log.reply_bytes < 2_000
    command_log.clear()
    assert repository.latest_message_document("s", AGENT)["message_id"] == 5
    assert command_log.commands == ["find"]


def test_latest_message_document_of_an_agent_without_messages_is_none(client, database_name):
    repository = reader(client, database_name)
    repository.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    repository.create_agent("s", SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))

    assert repository.latest_message_document("s", AGENT) is None
    assert repository.list_message_documents("s", AGENT) == []
    assert repository.session_messages("s") == {AGENT: []}
    with pytest.raises(SessionNotFoundError):
        repository.latest_message_document("s", "nobody")
    with pytest.raises(SessionNotFoundError):
        repository.list_message_documents("nope", AGENT)
    with pytest.raises(SessionNotFoundError):
        repository.session_messages("nope")


def test_message_documents_show_values_as_written(client, database_name):
    repository = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    repository.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    repository.create_agent("s", SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    schema = {"$ref": "#/defs/a", "a.b": 2**70, "__msm_int__": "5"}
    content = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": schema}}]}
    repository.create_message("s", AGENT, SessionMessage(message=content, message_id=0, created_at=STAMP))

    raw = client[database_name][COLLECTION].find_one({"_id": "s"})["agents"]["agent%2Ev2"]["messages"][0]
    assert "__msm_map__" in str(raw["message"])
    assert repository.list_message_documents("s", AGENT)[0]["message"] == content
    assert repository.latest_message_document("s", AGENT)["message"] == content
    assert repository.session_messages("s")[AGENT][0]["message"] == content


# ----------------------------------------------------------------- a whole session, a list page


def test_session_messages_reads_every_layout_once_in_order(client, database_name, command_log, mixed):
    repository = reader(client, database_name)
    command_log.clear()

    messages = repository.session_messages("mixed")

    assert command_log.commands == ["aggregate", "find"]
    assert set(messages) == set(LAYOUTS)
    for name, agent in mixed.items():
        assert ids(messages[name]) == list(range(6)), name
        assert [m["message"] for m in messages[name]] == agent.messages
        assert [("event_loop_metrics" in m) for m in messages[name]] == [False, True] * 3

    command_log.clear()
    assert ids(repository.session_messages("plain")[AGENT]) == list(range(6))
    assert command_log.commands == ["aggregate"]


def test_copies_left_by_an_unfinished_promotion_are_never_shown_or_counted(client, database_name, mixed):
    """A promotion killed after its copy step leaves copies of an embedded agent's messages: readers ignore them."""
    repository = reader(client, database_name)
    embedded = repository.list_message_documents("mixed", "embedded")
    copies = [{"session_id": "mixed", "agent_id": "embedded", **element} for element in embedded]
    client[database_name][f"{COLLECTION}.messages"].insert_many(copies)

    assert ids(repository.session_messages("mixed")["embedded"]) == list(range(6))
    assert repository.count_messages(["mixed"])["mixed"]["embedded"] == 6


def test_count_messages_counts_every_layout(client, database_name, command_log, mixed):
    repository = reader(client, database_name)
    command_log.clear()

    counts = repository.count_messages(["mixed", "plain", "missing"])

    assert counts == {"mixed": {"embedded": 6, "collection": 6, "promoted": 6}, "plain": {AGENT: 6}}
    assert command_log.commands == ["aggregate", "aggregate"]  # $size on the sessions, $group on the messages
    command_log.clear()
    assert repository.count_messages(["plain"]) == {"plain": {AGENT: 6}}
    assert command_log.commands == ["aggregate"]  # no collection-layout agent: the messages are not queried
    assert command_log.reply_bytes < 1_000
    assert repository.count_messages([]) == {}


def test_count_messages_reuses_counts_computed_in_a_readers_own_aggregation(client, database_name, command_log, mixed):
    repository = reader(client, database_name)
    pipeline = [
        {"$match": {"_id": {"$in": ["mixed", "plain"]}}},
        {"$project": {"agents": MongoDBSessionRepository.agent_message_counts_expression()}},
    ]
    page = {row["_id"]: row["agents"] for row in client[database_name][COLLECTION].aggregate(pipeline)}
    command_log.clear()

    assert repository.count_messages(["plain"], agent_counts=page) == {"plain": {AGENT: 6}}
    assert command_log.commands == []
    assert repository.count_messages(["mixed", "plain"], agent_counts=page)["mixed"] == {
        "embedded": 6,
        "collection": 6,
        "promoted": 6,
    }
    assert command_log.commands == ["aggregate"]


def test_a_message_held_in_gridfs_is_read_back_whole(client, database_name):
    repository = MongoDBSessionRepository(
        client=client, database_name=database_name, collection_name=COLLECTION, message_storage="collection"
    )
    repository.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    repository.create_agent("s", SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    payload = os.urandom(17 * MB)
    block = {"document": {"format": "pdf", "name": "scan", "source": {"bytes": payload}}}
    content = {"role": "user", "content": [{"text": "see attached"}, block]}
    repository.create_message("s", AGENT, SessionMessage(message=content, message_id=0, created_at=STAMP))
    repository.create_message("s", AGENT, SessionMessage(message={"role": "assistant", "content": []}, message_id=1))

    messages = reader(client, database_name).session_messages("s")[AGENT]

    assert ids(messages) == [0, 1]
    assert messages[0]["message"]["content"][1]["document"]["source"]["bytes"] == payload
    assert reader(client, database_name).count_messages(["s"]) == {"s": {AGENT: 2}}


# ----------------------------------------------------------------- a reader that must not write


def test_a_reader_repository_sends_nothing_at_construction(client, database_name, command_log):
    reader(client, database_name)
    assert command_log.commands == []
    MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    assert command_log.commands == ["createIndexes"]
