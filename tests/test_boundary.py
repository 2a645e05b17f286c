"""Bad input at the public boundary: ids, unknown keyword arguments, pool sizes and metadata arguments.

An id that is not a non-empty string must never reach MongoDB: as a query value ``{"$ne": None}``
matches ANOTHER session, and a list agent id ``["agent-", "1"]`` is joined into the field path of
agent ``"agent-1"``. Every entry point refuses such an id with ``InvalidIdError`` before it builds a
command. Every test runs on the embedded wire-protocol server (or ``MONGODB_URI``): ``command_log``
records what the library sends, and stored documents are compared, as BSON bytes, through a
separate client.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    InvalidIdError,
    MongoDBConnectionPool,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionDataError,
    close_global_factory,
    create_mongodb_session_manager,
    get_global_factory,
    initialize_global_factory,
)
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
VICTIM = "victim"
OTHER = "other"
AGENT = "agent-1"
GRAPH = "graph-1"
BAD_IDS: list[Any] = [{"$ne": None}, {"$gt": ""}, ["a", "b"], 5, None, ""]
TEXT = {"role": "user", "content": [{"text": "hello"}]}


class StandInMultiAgent:
    """The two members of a strands ``MultiAgentBase`` that the session code uses."""

    def __init__(self, multi_agent_id: Any) -> None:
        self.id = multi_agent_id

    def serialize_state(self) -> dict[str, Any]:
        return {"type": "graph", "status": "completed"}

    def deserialize_state(self, payload: dict[str, Any]) -> None:
        """Accept restored state (only reached for a valid id)."""


# --------------------------------------------------------------------------- helpers and fixtures


def _message(message_id: int, text: str = "hello") -> SessionMessage:
    return SessionMessage.from_message({"role": "user", "content": [{"text": text}]}, message_id)


def _session_agent(agent_id: Any) -> SessionAgent:
    return SessionAgent(agent_id=agent_id, state={"n": 2}, conversation_manager_state={})


def _agent_with_id(agent_id: Any) -> Agent:
    """A real strands Agent (no session manager) whose id was changed to ``agent_id`` after construction."""
    agent = Agent(model=ScriptedModel([]), agent_id="placeholder", callback_handler=None)
    agent.agent_id = agent_id
    return agent


@pytest.fixture
def reader(mongo_uri: str) -> Iterator[MongoClient]:
    """A separate client, so reading documents back adds nothing to ``command_log``."""
    with MongoClient(mongo_uri) as mongo_client:
        yield mongo_client


def _snapshot(reader: MongoClient, database_name: str) -> list[bytes]:
    """Every stored document of the collection as BSON bytes, in ``_id`` order."""
    return [bson.encode(document) for document in reader[database_name][COLLECTION].find().sort("_id")]


@pytest.fixture
def repo(client: MongoClient, database_name: str) -> MongoDBSessionRepository:
    """A repository on the recorded client, with two complete sessions stored."""
    repository = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    for session_id in (VICTIM, OTHER):
        repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        repository.create_agent(session_id, SessionAgent(agent_id=AGENT, state={"n": 1}, conversation_manager_state={}))
        for message_id in range(2):
            repository.create_message(session_id, AGENT, _message(message_id))
        repository.create_multi_agent(session_id, StandInMultiAgent(GRAPH))
        repository.update_metadata(session_id, {"owner": session_id})
        repository.add_feedback(session_id, {"rating": "up"})
    return repository


@pytest.fixture
def manager(repo: MongoDBSessionRepository) -> Iterator[MongoDBSessionManager]:
    """A manager of the stored ``victim`` session on the recorded client."""
    with MongoDBSessionManager(
        VICTIM, client=repo.client, database_name=repo.collection.database.name, collection_name=COLLECTION
    ) as session_manager:
        yield session_manager


@pytest.fixture
def no_pool() -> Iterator[None]:
    """Start and end with no connection pool and no global factory."""
    close_global_factory()
    MongoDBConnectionPool.close()
    yield
    close_global_factory()
    MongoDBConnectionPool.close()


def _assert_every_bad_id_is_refused_silently(
    call: Callable[[Any], Any], reader: MongoClient, database_name: str, command_log: Any
) -> None:
    """Each bad id raises InvalidIdError naming it, sends no command, and leaves every document byte-identical."""
    before = _snapshot(reader, database_name)
    for bad in BAD_IDS:
        command_log.clear()
        with pytest.raises(InvalidIdError) as raised:
            call(bad)
        assert command_log.commands == [], f"{bad!r} reached MongoDB: {command_log.commands}"
        assert repr(bad) in str(raised.value)
    assert _snapshot(reader, database_name) == before


# --------------------------------------------------------------------------- 1. ids: the repository

RepositoryCall = Callable[[MongoDBSessionRepository, Any], Any]

REDACTION = {"action": "redacted", "timestamp": datetime(2025, 1, 1, tzinfo=UTC)}
"""A ``guardrail_event`` for `MongoDBSessionRepository.record_redaction`."""

REPOSITORY_CALLS: dict[str, RepositoryCall] = {
    "create_session": lambda r, bad: r.create_session(Session(session_id=bad, session_type=SessionType.AGENT)),
    "read_session": lambda r, bad: r.read_session(bad),
    "delete_session": lambda r, bad: r.delete_session(bad),
    "create_agent(session_id)": lambda r, bad: r.create_agent(bad, _session_agent(AGENT)),
    "create_agent(agent_id)": lambda r, bad: r.create_agent(VICTIM, _session_agent(bad)),
    "read_agent(session_id)": lambda r, bad: r.read_agent(bad, AGENT),
    "read_agent(agent_id)": lambda r, bad: r.read_agent(VICTIM, bad),
    "update_agent(session_id)": lambda r, bad: r.update_agent(bad, _session_agent(AGENT)),
    "update_agent(agent_id)": lambda r, bad: r.update_agent(VICTIM, _session_agent(bad)),
    "create_message(session_id)": lambda r, bad: r.create_message(bad, AGENT, _message(9)),
    "create_message(agent_id)": lambda r, bad: r.create_message(VICTIM, bad, _message(9)),
    "read_message(session_id)": lambda r, bad: r.read_message(bad, AGENT, 0),
    "read_message(agent_id)": lambda r, bad: r.read_message(VICTIM, bad, 0),
    "update_message(session_id)": lambda r, bad: r.update_message(bad, AGENT, _message(0, "redacted")),
    "update_message(agent_id)": lambda r, bad: r.update_message(VICTIM, bad, _message(0, "redacted")),
    "set_message_fields(session_id)": lambda r, bad: r.set_message_fields(bad, AGENT, 0, {"event_loop_metrics": {}}),
    "set_message_fields(agent_id)": lambda r, bad: r.set_message_fields(VICTIM, bad, 0, {"event_loop_metrics": {}}),
    "record_redaction(session_id)": lambda r, bad: r.record_redaction(bad, AGENT, _message(0, "x"), REDACTION),
    "record_redaction(agent_id)": lambda r, bad: r.record_redaction(VICTIM, bad, _message(0, "x"), REDACTION),
    "known_agent_config(session_id)": lambda r, bad: r.known_agent_config(bad, AGENT),
    "known_agent_config(agent_id)": lambda r, bad: r.known_agent_config(VICTIM, bad),
    "list_messages(session_id)": lambda r, bad: r.list_messages(bad, AGENT),
    "list_messages(agent_id)": lambda r, bad: r.list_messages(VICTIM, bad),
    "create_multi_agent(session_id)": lambda r, bad: r.create_multi_agent(bad, StandInMultiAgent(GRAPH)),
    "create_multi_agent(multi_agent_id)": lambda r, bad: r.create_multi_agent(VICTIM, StandInMultiAgent(bad)),
    "read_multi_agent(session_id)": lambda r, bad: r.read_multi_agent(bad, GRAPH),
    "read_multi_agent(multi_agent_id)": lambda r, bad: r.read_multi_agent(VICTIM, bad),
    "update_multi_agent(session_id)": lambda r, bad: r.update_multi_agent(bad, StandInMultiAgent(GRAPH)),
    "update_multi_agent(multi_agent_id)": lambda r, bad: r.update_multi_agent(VICTIM, StandInMultiAgent(bad)),
    "update_metadata": lambda r, bad: r.update_metadata(bad, {"owner": "attacker"}),
    "get_metadata": lambda r, bad: r.get_metadata(bad),
    "delete_metadata": lambda r, bad: r.delete_metadata(bad, ["owner"]),
    "add_feedback": lambda r, bad: r.add_feedback(bad, {"rating": "down"}),
    "get_feedbacks": lambda r, bad: r.get_feedbacks(bad),
    "get_viewer_password": lambda r, bad: r.get_viewer_password(bad),
    "migrate_session": lambda r, bad: r.migrate_session(bad, "collection"),
    "get_agent_config(session_id)": lambda r, bad: r.get_agent_config(bad, AGENT),
    "get_agent_config(agent_id)": lambda r, bad: r.get_agent_config(VICTIM, bad),
    "update_agent_config(session_id)": lambda r, bad: r.update_agent_config(bad, AGENT, model="m"),
    "update_agent_config(agent_id)": lambda r, bad: r.update_agent_config(VICTIM, bad, model="m"),
    "list_agents": lambda r, bad: r.list_agents(bad),
    "set_prompt_metadata(session_id)": lambda r, bad: r.set_prompt_metadata(bad, AGENT, {"version": 2}),
    "set_prompt_metadata(agent_id)": lambda r, bad: r.set_prompt_metadata(VICTIM, bad, {"version": 2}),
    "get_application_name": lambda r, bad: r.get_application_name(bad),
    "list_message_documents(session_id)": lambda r, bad: r.list_message_documents(bad, AGENT),
    "list_message_documents(agent_id)": lambda r, bad: r.list_message_documents(VICTIM, bad),
    "latest_message_document(session_id)": lambda r, bad: r.latest_message_document(bad, AGENT),
    "latest_message_document(agent_id)": lambda r, bad: r.latest_message_document(VICTIM, bad),
    "session_messages": lambda r, bad: r.session_messages(bad),
    "count_messages": lambda r, bad: r.count_messages([VICTIM, bad]),
    "hold_session": lambda r, bad: r.hold_session(bad),
    "release_session": lambda r, bad: r.release_session(bad),
    "prune_messages(session_id)": lambda r, bad: r.prune_messages(bad, AGENT, 1),
    "prune_messages(agent_id)": lambda r, bad: r.prune_messages(VICTIM, bad, 1),
    "erase_session_keys": lambda r, bad: r.erase_session_keys(bad),
}

ID_PARAMETERS = {"session_id", "agent_id", "multi_agent_id", "session", "session_agent", "multi_agent"}


def test_every_public_repository_method_that_takes_an_id_is_covered_below() -> None:
    methods = {
        name
        for name, function in inspect.getmembers(MongoDBSessionRepository, inspect.isfunction)
        if not name.startswith("_") and ID_PARAMETERS & set(inspect.signature(function).parameters)
    }
    assert methods - {name.split("(")[0] for name in REPOSITORY_CALLS} == set()


@pytest.mark.parametrize("entry_point", REPOSITORY_CALLS)
def test_repository_refuses_a_bad_id_before_any_command_and_nothing_changes(
    repo: MongoDBSessionRepository, reader: MongoClient, database_name: str, command_log: Any, entry_point: str
) -> None:
    call = REPOSITORY_CALLS[entry_point]
    _assert_every_bad_id_is_refused_silently(lambda bad: call(repo, bad), reader, database_name, command_log)


def test_an_operator_as_session_id_never_returns_another_sessions_viewer_password(
    repo: MongoDBSessionRepository,
) -> None:
    assert repo.get_viewer_password(VICTIM)
    for operator in ({"$ne": None}, {"$gt": ""}, {"$regex": ".*"}, {"$in": [VICTIM, OTHER]}):
        with pytest.raises(InvalidIdError):
            repo.get_viewer_password(operator)  # type: ignore[arg-type]


def test_a_list_agent_id_never_writes_into_the_agent_its_parts_spell(
    repo: MongoDBSessionRepository, reader: MongoClient, database_name: str
) -> None:
    before = _snapshot(reader, database_name)

    with pytest.raises(InvalidIdError):
        repo.create_message(VICTIM, ["agent-", "1"], _message(9))  # type: ignore[arg-type]

    assert _snapshot(reader, database_name) == before
    assert [message.message_id for message in repo.list_messages(VICTIM, AGENT)] == [0, 1]


def test_invalid_id_error_is_a_value_error_a_type_error_and_a_session_exception(
    repo: MongoDBSessionRepository,
) -> None:
    for caught in (ValueError, TypeError, SessionException):
        with pytest.raises(caught):
            repo.read_session({"$ne": None})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- 1. ids: manager, factory, tool

ManagerCall = Callable[[MongoDBSessionManager, Any], Any]


def _new_manager(session_manager: MongoDBSessionManager, session_id: Any) -> MongoDBSessionManager:
    repository = session_manager.session_repository
    return MongoDBSessionManager(
        session_id, client=repository.client, database_name=repository.collection.database.name
    )


def _factory_manager(session_manager: MongoDBSessionManager, session_id: Any) -> MongoDBSessionManager:
    factory = MongoDBSessionManagerFactory(client=session_manager.session_repository.client)
    return factory.create_session_manager(session_id, collection_name=COLLECTION)


def _function_manager(session_manager: MongoDBSessionManager, session_id: Any) -> MongoDBSessionManager:
    repository = session_manager.session_repository
    return create_mongodb_session_manager(
        session_id, client=repository.client, database_name=repository.collection.database.name
    )


MANAGER_CALLS: dict[str, ManagerCall] = {
    "MongoDBSessionManager(session_id)": _new_manager,
    "create_mongodb_session_manager(session_id)": _function_manager,
    "MongoDBSessionManagerFactory.create_session_manager(session_id)": _factory_manager,
    "get_agent_config": lambda m, bad: m.get_agent_config(bad),
    "update_agent_config": lambda m, bad: m.update_agent_config(bad, model="m"),
    "set_prompt_metadata": lambda m, bad: m.set_prompt_metadata(bad, {"version": 2}),
    "initialize": lambda m, bad: m.initialize(_agent_with_id(bad)),
    "sync_agent": lambda m, bad: m.sync_agent(_agent_with_id(bad)),
    "append_message": lambda m, bad: m.append_message(TEXT, _agent_with_id(bad)),
    "redact_latest_message": lambda m, bad: m.redact_latest_message(TEXT, _agent_with_id(bad)),
    "initialize_multi_agent": lambda m, bad: m.initialize_multi_agent(StandInMultiAgent(bad)),
    "sync_multi_agent": lambda m, bad: m.sync_multi_agent(StandInMultiAgent(bad)),
}


@pytest.mark.parametrize("entry_point", MANAGER_CALLS)
def test_manager_and_factory_refuse_a_bad_id_before_any_command_and_nothing_changes(
    manager: MongoDBSessionManager, reader: MongoClient, database_name: str, command_log: Any, entry_point: str
) -> None:
    call = MANAGER_CALLS[entry_point]
    _assert_every_bad_id_is_refused_silently(lambda bad: call(manager, bad), reader, database_name, command_log)


@pytest.mark.parametrize(
    "arguments",
    [{"action": "get"}, {"action": "set", "metadata": {"owner": "attacker"}}, {"action": "delete", "keys": ["owner"]}],
    ids=lambda arguments: arguments["action"],
)
def test_metadata_tool_never_sends_a_bad_session_id_and_answers_with_error_text(
    manager: MongoDBSessionManager,
    reader: MongoClient,
    database_name: str,
    command_log: Any,
    arguments: dict[str, Any],
) -> None:
    tool = manager.get_metadata_tool()
    before = _snapshot(reader, database_name)
    for bad in BAD_IDS:
        manager.session_id = bad
        command_log.clear()

        answer = tool(**arguments)

        assert answer.startswith("Error: ") and repr(bad) in answer
        assert command_log.commands == []
    assert _snapshot(reader, database_name) == before


# --------------------------------------------------------------------------- 2. unknown keyword arguments


def test_manager_refuses_an_unknown_keyword_by_name_before_connecting(
    mongo_uri: str, database_name: str, command_log: Any
) -> None:
    with pytest.raises(
        TypeError, match=r"^MongoDBSessionManager\(\) got an unexpected keyword argument 'databse_name'"
    ):
        MongoDBSessionManager(
            "s",
            connection_string=mongo_uri,
            database_name=database_name,
            event_listeners=[command_log],
            databse_name="x",
        )
    assert command_log.commands == []


def test_unknown_keyword_error_suggests_the_argument_meant(client: MongoClient) -> None:
    with pytest.raises(TypeError, match=r"did you mean 'database_name'\?"):
        MongoDBSessionManager("s", client=client, databse_name="x")


def test_create_mongodb_session_manager_refuses_an_unknown_keyword_by_name_before_connecting(
    mongo_uri: str, database_name: str, command_log: Any
) -> None:
    with pytest.raises(
        TypeError, match=r"^create_mongodb_session_manager\(\) got an unexpected keyword argument 'colection'"
    ):
        create_mongodb_session_manager(
            "s", connection_string=mongo_uri, database_name=database_name, event_listeners=[command_log], colection="x"
        )
    assert command_log.commands == []


@pytest.mark.usefixtures("no_pool")
def test_factory_refuses_an_unknown_keyword_before_creating_the_pool(mongo_uri: str) -> None:
    with pytest.raises(
        TypeError, match=r"^MongoDBSessionManagerFactory\(\) got an unexpected keyword argument 'databse_name'"
    ):
        MongoDBSessionManagerFactory(connection_string=mongo_uri, databse_name="x")
    assert not MongoDBConnectionPool.is_initialized()


def test_factory_borrowing_a_client_refuses_an_unknown_keyword(client: MongoClient) -> None:
    with pytest.raises(TypeError, match="'metadata_hook'"):
        MongoDBSessionManagerFactory(client=client, metadata_hook=print)


def test_factory_create_session_manager_refuses_an_unknown_keyword_before_any_command(
    client: MongoClient, database_name: str, command_log: Any
) -> None:
    factory = MongoDBSessionManagerFactory(client=client, database_name=database_name)
    command_log.clear()

    with pytest.raises(
        TypeError, match=r"create_session_manager\(\) got an unexpected keyword argument 'metadata_feilds'"
    ):
        factory.create_session_manager("s", metadata_feilds=["status"])

    assert command_log.commands == []


@pytest.mark.usefixtures("no_pool")
def test_initialize_global_factory_refuses_an_unknown_keyword_before_creating_anything(mongo_uri: str) -> None:
    with pytest.raises(
        TypeError, match=r"^initialize_global_factory\(\) got an unexpected keyword argument 'databse_name'"
    ):
        initialize_global_factory(connection_string=mongo_uri, databse_name="x")

    assert not MongoDBConnectionPool.is_initialized()
    with pytest.raises(RuntimeError, match="not initialized"):
        get_global_factory()


def test_client_options_in_any_case_and_the_hook_aliases_are_still_accepted(mongo_uri: str, database_name: str) -> None:
    seen: list[str] = []

    def hook(original: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append(action)
        return original(**kwargs)

    with MongoDBSessionManager(
        "s", connection_string=mongo_uri, database_name=database_name, maxpoolsize=3, metadataHook=hook
    ) as session_manager:
        session_manager.update_metadata({"k": 1})
        assert session_manager.session_repository.client.options.pool_options.max_pool_size == 3
    assert seen == ["update"]


# --------------------------------------------------------------------------- 3. pool sizes


@pytest.mark.usefixtures("no_pool")
def test_factory_with_a_max_pool_size_below_the_default_minimum_just_works(mongo_uri: str, database_name: str) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri, database_name=database_name, maxPoolSize=7)
    try:
        options = factory.get_connection_stats()["options"]
        assert (options["maxPoolSize"], options["minPoolSize"]) == (7, 7)
        with factory.create_session_manager("pool-7") as session_manager:
            session_manager.update_metadata({"k": 1})
            assert session_manager.get_metadata() == {"metadata": {"k": 1}}
    finally:
        factory.close()


@pytest.mark.usefixtures("no_pool")
@pytest.mark.parametrize("where", ["argument", "uri"])
def test_the_default_minimum_follows_a_smaller_max_pool_size(mongo_uri: str, where: str) -> None:
    separator = "&" if "?" in mongo_uri else "?"
    if where == "argument":
        MongoDBConnectionPool.initialize(connection_string=mongo_uri, maxPoolSize=3)
    else:
        MongoDBConnectionPool.initialize(connection_string=f"{mongo_uri}{separator}maxPoolSize=3")

    options = MongoDBConnectionPool.get_pool_stats()["options"]
    assert (options["maxPoolSize"], options["minPoolSize"]) == (3, 3)


@pytest.mark.usefixtures("no_pool")
def test_the_default_maximum_follows_a_larger_min_pool_size(mongo_uri: str) -> None:
    MongoDBConnectionPool.initialize(connection_string=mongo_uri, minPoolSize=150)

    options = MongoDBConnectionPool.get_pool_stats()["options"]
    assert (options["maxPoolSize"], options["minPoolSize"]) == (150, 150)


@pytest.mark.usefixtures("no_pool")
@pytest.mark.parametrize(
    ("uri_options", "arguments"),
    [
        ("", {"maxPoolSize": 7, "minPoolSize": 8}),
        ("minPoolSize=8", {"maxPoolSize": 7}),
        ("maxPoolSize=7", {"minPoolSize": 8}),
    ],
    ids=["arguments", "uri-min", "uri-max"],
)
def test_explicitly_conflicting_pool_sizes_raise_a_clear_value_error(
    mongo_uri: str, uri_options: str, arguments: dict[str, int]
) -> None:
    separator = "&" if "?" in mongo_uri else "?"
    uri = f"{mongo_uri}{separator}{uri_options}" if uri_options else mongo_uri
    for create in (MongoDBConnectionPool.initialize, MongoDBSessionManagerFactory):
        with pytest.raises(ValueError) as raised:
            create(connection_string=uri, **arguments)

        message = str(raised.value)
        assert "minPoolSize=8" in message and "maxPoolSize=7" in message and "conflict" in message
        assert not MongoDBConnectionPool.is_initialized()


# --------------------------------------------------------------------------- 4. metadata arguments


@pytest.mark.parametrize("bad_metadata", ["ab", ["a", "b"], 5, None], ids=repr)
def test_update_metadata_with_something_other_than_a_dict_raises_type_error_and_writes_nothing(
    manager: MongoDBSessionManager, reader: MongoClient, database_name: str, command_log: Any, bad_metadata: Any
) -> None:
    before = _snapshot(reader, database_name)
    command_log.clear()

    with pytest.raises(TypeError, match="metadata must be a dict"):
        manager.update_metadata(bad_metadata)
    with pytest.raises(TypeError, match="metadata must be a dict"):
        manager.session_repository.update_metadata(VICTIM, bad_metadata)

    assert command_log.commands == []
    assert _snapshot(reader, database_name) == before


def test_delete_metadata_with_a_bare_string_deletes_that_one_key(
    manager: MongoDBSessionManager, reader: MongoClient, database_name: str
) -> None:
    manager.update_metadata({"x": 1, "y": 2, "xy": 3, "zz": 4})

    manager.delete_metadata("xy")
    manager.session_repository.delete_metadata(VICTIM, "zz")

    stored = reader[database_name][COLLECTION].find_one({"_id": VICTIM})
    assert stored is not None
    assert stored["metadata"] == {"owner": VICTIM, "x": 1, "y": 2}


def test_delete_metadata_hook_sees_a_bare_string_as_one_key(client: MongoClient, database_name: str) -> None:
    seen: list[Any] = []

    def hook(original: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("keys"))
        return original(**kwargs)

    with MongoDBSessionManager("s", client=client, database_name=database_name, metadata_hook=hook) as session_manager:
        session_manager.update_metadata({"xy": 1})
        session_manager.delete_metadata("xy")

    assert seen == [None, ["xy"]]


@pytest.mark.parametrize("stored_value", [1, "text", [1, 2]], ids=repr)
def test_dotted_key_through_a_value_that_is_not_a_dict_raises_session_data_error_and_writes_nothing(
    manager: MongoDBSessionManager, reader: MongoClient, database_name: str, stored_value: Any
) -> None:
    manager.update_metadata({"a": stored_value})
    before = _snapshot(reader, database_name)

    with pytest.raises(SessionDataError) as raised:
        manager.update_metadata({"a.b": 2, "c": 3})

    message = str(raised.value)
    assert VICTIM in message and "'a.b'" in message and "not an object" in message
    assert _snapshot(reader, database_name) == before


def test_metadata_tool_reads_updates_and_deletes_dotted_keys_as_nested_fields(manager: MongoDBSessionManager) -> None:
    tool = manager.get_metadata_tool()
    manager.update_metadata({"prefs": {"theme": "light", "lang": "en"}})

    assert tool(action="update", metadata={"prefs.theme": "dark"}).startswith("Successfully updated")
    manager.update_metadata({"prefs.size": 12})

    answer = tool(action="get", keys=["prefs.theme", "prefs.size", "prefs.missing", "owner.deeper"])
    assert answer == 'Metadata: {"prefs.theme": "dark", "prefs.size": 12, "prefs.missing": null, "owner.deeper": null}'
    assert tool(action="delete", keys=["prefs.lang"]).startswith("Successfully deleted")
    assert manager.get_metadata()["metadata"]["prefs"] == {"theme": "dark", "size": 12}


def test_metadata_tool_get_with_an_invalid_key_answers_with_error_text_before_any_command(
    manager: MongoDBSessionManager, command_log: Any
) -> None:
    tool = manager.get_metadata_tool()
    command_log.clear()

    for keys in (["$where"], ["a..b"], [5]):
        assert tool(action="get", keys=keys).startswith("Error: ")

    assert command_log.commands == []


@pytest.mark.parametrize("action", [5, None, ["get"], {"get": 1}], ids=repr)
def test_metadata_tool_with_an_action_that_is_not_a_string_answers_with_error_text(
    manager: MongoDBSessionManager, command_log: Any, action: Any
) -> None:
    tool = manager.get_metadata_tool()
    command_log.clear()

    answer = tool(action=action)

    assert answer.startswith("Error: ") and "'action' must be a string" in answer
    assert command_log.commands == []
