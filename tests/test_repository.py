"""MongoDBSessionRepository keeps strands' SessionRepository contract, one round trip per method."""

import gc

import pytest
from pymongo import MongoClient
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionRepository, SessionNotFoundError


class FakeMultiAgent:
    """The two members of ``MultiAgentBase`` a repository uses."""

    def __init__(self, multi_agent_id: str, state: dict) -> None:
        self.id = multi_agent_id
        self.state = state

    def serialize_state(self) -> dict:
        return self.state


@pytest.fixture
def repo(client: MongoClient, database_name: str) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name="sessions")


@pytest.fixture
def session(repo: MongoDBSessionRepository) -> Session:
    return repo.create_session(Session(session_id="s-1", session_type=SessionType.AGENT))


def make_agent(agent_id: str = "agent.v2", **state) -> SessionAgent:
    return SessionAgent(
        agent_id=agent_id,
        state=state or {"key": "value"},
        conversation_manager_state={"removed_message_count": 0},
        _internal_state={"interrupt_state": {"activated": False}, "model_state": {"x": 1}},
    )


def make_message(index: int, text: str = "hello", role: str = "user") -> SessionMessage:
    return SessionMessage.from_message({"role": role, "content": [{"text": f"{text} {index}"}]}, index)


def test_read_session_returns_equal_session_with_exact_timestamps(repo, session, command_log):
    command_log.clear()
    assert repo.read_session("s-1") == session
    assert command_log.commands == ["find"]


def test_read_missing_session_returns_none(repo):
    assert repo.read_session("nope") is None


def test_create_duplicate_session_raises_and_keeps_original(repo, session, client, database_name):
    repo.update_metadata("s-1", {"keep": True})
    with pytest.raises(SessionException, match="already exists"):
        repo.create_session(Session(session_id="s-1", session_type=SessionType.AGENT))
    stored = client[database_name]["sessions"].find_one({"_id": "s-1"})
    assert stored["metadata"] == {"keep": True}
    assert stored["session_data"]["created_at"] == session.created_at


def test_new_session_gets_a_32_character_alphanumeric_viewer_password(repo, session):
    password = repo.get_viewer_password("s-1")
    assert len(password) == 32 and password.isalnum() and password.isascii()
    other = repo.create_session(Session(session_id="s-2", session_type=SessionType.AGENT))
    assert repo.get_viewer_password(other.session_id) != password


def test_read_session_ships_no_messages(repo, session, command_log):
    repo.create_agent("s-1", make_agent())
    for index in range(20):
        repo.create_message("s-1", "agent.v2", make_message(index, "x" * 1000))
    command_log.clear()
    repo.read_session("s-1")
    assert command_log.reply_bytes < 2000


def test_agent_round_trips_equal_with_dotted_and_dollar_ids(repo, session, client, database_name):
    for agent_id in ("agent.v2", "$root", "a%2Eb"):
        agent = make_agent(agent_id)
        repo.create_agent("s-1", agent)
        assert repo.read_agent("s-1", agent_id) == agent
    keys = set(client[database_name]["sessions"].find_one({"_id": "s-1"})["agents"])
    assert keys == {"agent%2Ev2", "%24root", "a%252Eb"}


def test_read_missing_agent_returns_none(repo, session):
    assert repo.read_agent("s-1", "ghost") is None
    assert repo.read_agent("no-session", "ghost") is None


def test_create_agent_in_missing_session_raises(repo):
    with pytest.raises(SessionException):
        repo.create_agent("no-session", make_agent())


def test_update_agent_keeps_created_at_and_sets_fields(repo, session):
    agent = make_agent()
    repo.create_agent("s-1", agent)
    changed = make_agent(key="new")
    changed.created_at = "2000-01-01T00:00:00+00:00"
    repo.update_agent("s-1", changed)
    restored = repo.read_agent("s-1", "agent.v2")
    assert restored.state == {"key": "new"}
    assert restored.created_at == agent.created_at
    assert restored.updated_at == changed.updated_at


def test_update_missing_agent_raises(repo, session):
    with pytest.raises(SessionException):
        repo.update_agent("s-1", make_agent("ghost"))


def test_update_agent_ships_only_changed_fields_and_nothing_when_unchanged(repo, session, command_log):
    agent = make_agent()
    repo.create_agent("s-1", agent)
    command_log.clear()
    repo.update_agent("s-1", make_agent())
    assert command_log.commands == []
    repo.update_agent("s-1", make_agent(key="changed"))
    assert command_log.commands == ["update"]


def test_messages_round_trip_equal_including_bytes_and_tracking_id(repo, session, client, database_name):
    repo.create_agent("s-1", make_agent())
    image = bytes(range(256))
    message = SessionMessage.from_message(
        {
            "role": "user",
            "content": [{"text": "look"}, {"image": {"format": "png", "source": {"bytes": image}}}],
            "tracking_id": "t-1",
        },
        0,
    )
    repo.create_message("s-1", "agent.v2", message)
    assert repo.read_message("s-1", "agent.v2", 0) == message
    assert repo.list_messages("s-1", "agent.v2") == [message]
    stored = client[database_name]["sessions"].find_one({"_id": "s-1"})
    stored_bytes = stored["agents"]["agent%2Ev2"]["messages"][0]["message"]["content"][1]["image"]["source"]["bytes"]
    assert stored_bytes == image  # BSON binary, not base64 text


def test_read_message_ships_one_element(repo, session, command_log):
    repo.create_agent("s-1", make_agent())
    for index in range(30):
        repo.create_message("s-1", "agent.v2", make_message(index, "y" * 1000))
    command_log.clear()
    assert repo.read_message("s-1", "agent.v2", 17).message["content"][0]["text"].endswith(" 17")
    assert command_log.commands == ["aggregate"]
    assert command_log.reply_bytes < 3000


def test_read_missing_message_returns_none(repo, session):
    repo.create_agent("s-1", make_agent())
    assert repo.read_message("s-1", "agent.v2", 3) is None
    assert repo.read_message("s-1", "ghost", 0) is None
    assert repo.read_message("ghost", "agent.v2", 0) is None


def test_list_messages_orders_by_id_and_pages(repo, session, command_log):
    repo.create_agent("s-1", make_agent())
    for index in (3, 0, 4, 1, 2):
        repo.create_message("s-1", "agent.v2", make_message(index))
    ids = lambda messages: [m.message_id for m in messages]  # noqa: E731
    assert ids(repo.list_messages("s-1", "agent.v2")) == [0, 1, 2, 3, 4]
    assert ids(repo.list_messages(session_id="s-1", agent_id="agent.v2", offset=2)) == [2, 3, 4]
    assert ids(repo.list_messages("s-1", "agent.v2", limit=2)) == [0, 1]
    assert ids(repo.list_messages("s-1", "agent.v2", limit=2, offset=3)) == [3, 4]
    assert ids(repo.list_messages("s-1", "agent.v2", limit=2, offset=9)) == []
    assert repo.list_messages("s-1", "agent.v2", limit=0) == []


def test_list_messages_ships_only_the_page(repo, session, command_log):
    repo.create_agent("s-1", make_agent())
    for index in range(50):
        repo.create_message("s-1", "agent.v2", make_message(index, "z" * 1000))
    command_log.clear()
    page = repo.list_messages("s-1", "agent.v2", limit=3, offset=40)
    assert [m.message_id for m in page] == [40, 41, 42]
    assert command_log.commands == ["find"]
    assert command_log.reply_bytes < 5000


def test_list_messages_of_new_agent_is_empty_and_of_missing_agent_raises(repo, session):
    repo.create_agent("s-1", make_agent())
    assert repo.list_messages("s-1", "agent.v2") == []
    with pytest.raises(SessionException):
        repo.list_messages("s-1", "ghost")


def test_update_message_redacts_and_keeps_created_at(repo, session, command_log):
    repo.create_agent("s-1", make_agent())
    original = make_message(0, "secret")
    repo.create_message("s-1", "agent.v2", original)
    redacted = make_message(0, "secret")
    redacted.redact_message = {"role": "user", "content": [{"text": "[redacted]"}]}
    redacted.created_at = "1999-01-01T00:00:00+00:00"
    command_log.clear()
    repo.update_message("s-1", "agent.v2", redacted)
    assert command_log.commands == ["update"]
    stored = repo.read_message("s-1", "agent.v2", 0)
    assert stored.to_message() == {"role": "user", "content": [{"text": "[redacted]"}]}
    assert stored.created_at == original.created_at


def test_update_missing_message_raises(repo, session):
    repo.create_agent("s-1", make_agent())
    with pytest.raises(SessionException):
        repo.update_message("s-1", "agent.v2", make_message(7))


def test_every_write_is_one_round_trip(repo, command_log):
    command_log.clear()
    repo.create_session(Session(session_id="s-9", session_type=SessionType.AGENT))
    repo.create_agent("s-9", make_agent())
    repo.create_message("s-9", "agent.v2", make_message(0))
    repo.update_metadata("s-9", {"a": 1})
    repo.delete_metadata("s-9", ["a"])
    repo.add_feedback("s-9", {"rating": "up"})
    assert command_log.commands == ["insert", "update", "update", "update", "update", "update"]


def test_multi_agent_state_round_trips(repo, session, command_log):
    graph = FakeMultiAgent("graph.main", {"status": "executing", "completed_nodes": ["a"]})
    command_log.clear()
    repo.create_multi_agent("s-1", graph)
    assert repo.read_multi_agent("s-1", "graph.main") == graph.state
    graph.state = {"status": "completed", "completed_nodes": ["a", "b"]}
    repo.update_multi_agent("s-1", graph)
    assert repo.read_multi_agent("s-1", "graph.main") == graph.state
    assert command_log.commands == ["update", "find", "update", "find"]


def test_multi_agent_missing_cases(repo, session):
    assert repo.read_multi_agent("s-1", "ghost") is None
    with pytest.raises(SessionException):
        repo.update_multi_agent("s-1", FakeMultiAgent("ghost", {}))
    with pytest.raises(SessionException):
        repo.create_multi_agent("no-session", FakeMultiAgent("g", {}))


def test_delete_session_removes_everything(repo, session):
    repo.create_agent("s-1", make_agent())
    repo.delete_session("s-1")
    assert repo.read_session("s-1") is None
    with pytest.raises(SessionNotFoundError):
        repo.delete_session("s-1")


def test_borrowed_client_is_not_closed(client, database_name):
    with MongoDBSessionRepository(client=client, database_name=database_name) as repo:
        repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    assert client[database_name]["collection_name"].count_documents({}) == 1


def test_owned_client_is_closed(mongo_uri, database_name):
    repo = MongoDBSessionRepository(connection_string=mongo_uri, database_name=database_name)
    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    repo.close()
    repo.close()
    with pytest.raises(Exception, match=r"closed|after close"):
        repo.read_session("s")


def test_indexes_are_created_once_per_client_and_collection(client, mongo_uri, database_name, command_log):
    equal_client = MongoClient(mongo_uri)  # pymongo clients of one address compare equal
    MongoDBSessionRepository(client=equal_client, database_name="other_database")
    command_log.clear()
    MongoDBSessionRepository(client=client, database_name=database_name, metadata_fields=["priority"])
    equal_client.close()
    del equal_client
    gc.collect()
    for _ in range(2):
        MongoDBSessionRepository(client=client, database_name=database_name, metadata_fields=["priority"])
    assert command_log.commands.count("createIndexes") == 1
    MongoDBSessionRepository(client=client, database_name=database_name, metadata_fields=["priority", "status"])
    assert command_log.commands.count("createIndexes") == 2
    names = {index["name"] for index in client[database_name]["collection_name"].list_indexes()}
    assert {"created_at_1__id_1", "updated_at_1", "metadata.priority_1", "metadata.status_1"} <= names


def test_a_state_change_mongodb_stores_differently_is_written_even_when_python_calls_it_equal(repo, session):
    repo.create_agent("s-1", make_agent(count=1))
    for value in (True, 1.0, 1):
        repo.update_agent("s-1", make_agent(count=value))
        stored = MongoDBSessionRepository(
            client=repo.client, database_name=repo.collection.database.name, collection_name="sessions"
        ).read_agent("s-1", "agent.v2")
        assert type(stored.state["count"]) is type(value)


def test_agent_config_rides_on_the_agent_writes_and_none_never_replaces_it(repo, session, command_log):
    repo.create_agent("s-1", make_agent(), agent_config={"model": "m-1", "system_prompt": "Be brief."})
    assert repo.known_agent_config("s-1", "agent.v2") == {"model": "m-1", "system_prompt": "Be brief."}
    command_log.clear()
    repo.update_agent("s-1", make_agent(key="changed"), agent_config={"model": "m-2", "system_prompt": None})
    repo.update_agent("s-1", make_agent(key="changed"), agent_config={"model": "m-2"})
    repo.update_agent_config("s-1", "agent.v2", model="m-2")  # unchanged: only reads the config it returns
    assert command_log.commands == ["update", "find"]
    assert repo.get_agent_config("s-1", "agent.v2") == {
        "agent_id": "agent.v2",
        "model": "m-2",
        "system_prompt": "Be brief.",
        "prompt_metadata": None,
    }
    with pytest.raises(ValueError, match="temperature"):
        repo.update_agent("s-1", make_agent(), agent_config={"temperature": 1})


def test_extra_message_fields_ride_on_the_push_and_can_move_in_one_command(
    repo, session, client, database_name, command_log
):
    repo.create_agent("s-1", make_agent())
    written = [make_message(0, role="assistant"), make_message(1, role="assistant")]
    command_log.clear()
    repo.create_message("s-1", "agent.v2", written[0], extra_fields={"event_loop_metrics": {"n": 1}})
    repo.create_message("s-1", "agent.v2", written[1])
    repo.set_message_fields("s-1", "agent.v2", 1, {"event_loop_metrics": {"n": 2}}, move_from=0)
    assert command_log.commands == ["update", "update", "update"]
    stored = client[database_name]["sessions"].find_one({"_id": "s-1"})["agents"]["agent%2Ev2"]["messages"]
    assert [message.get("event_loop_metrics") for message in stored] == [None, {"n": 2}]
    assert repo.list_messages("s-1", "agent.v2") == written

    with pytest.raises(ValueError, match="message"):
        repo.create_message("s-1", "agent.v2", make_message(2), extra_fields={"message": {}})
    with pytest.raises(SessionNotFoundError):
        repo.set_message_fields("s-1", "agent.v2", 7, {"event_loop_metrics": {}})
    assert len(client[database_name]["sessions"].find_one({"_id": "s-1"})["agents"]["agent%2Ev2"]["messages"]) == 2
