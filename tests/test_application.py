"""The application a session belongs to, and the prompt metadata of its agents.

``application_name`` is written once, by the command that creates the session, and never again;
``prompt_metadata`` sits beside an agent's strands data and must never disturb its restore.
"""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionType

from mongodb_session_manager import (
    InvalidApplicationNameError,
    MongoDBConnectionPool,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionDataError,
    SessionNotFoundError,
    close_global_factory,
    create_mongodb_session_manager,
    get_global_factory,
    initialize_global_factory,
)
from mongodb_session_manager.documents import encode_value, session_document
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
PROMPT = {"prompt_id": "p-42", "name": "support", "version": 3, "deployment": "prod-eu", "temperature": 0.2}


@pytest.fixture
def make_manager(client: MongoClient, database_name: str):
    def make(session_id: str = "s-1", **kwargs: Any) -> MongoDBSessionManager:
        return MongoDBSessionManager(
            session_id, client=client, database_name=database_name, collection_name=COLLECTION, **kwargs
        )

    return make


@pytest.fixture
def stored(client: MongoClient, database_name: str):
    def read(session_id: str = "s-1") -> dict[str, Any]:
        return client[database_name][COLLECTION].find_one({"_id": session_id})

    return read


@pytest.fixture
def no_global_factory() -> Iterator[None]:
    close_global_factory()
    MongoDBConnectionPool.close()
    yield
    close_global_factory()
    MongoDBConnectionPool.close()


def make_agent(manager: MongoDBSessionManager, responses: list[Any], agent_id: str = "support") -> Agent:
    return Agent(
        agent_id=agent_id,
        model=ScriptedModel(responses, model_id="scripted-model"),
        session_manager=manager,
        system_prompt="You help customers.",
        callback_handler=None,
    )


# --------------------------------------------------------------------------- application_name


def test_a_new_session_stores_its_application_name_at_the_top_level(make_manager, stored, command_log):
    manager = make_manager(application_name="support-bot")
    assert stored()["application_name"] == "support-bot"

    command_log.clear()
    assert manager.get_application_name() == "support-bot"
    assert command_log.commands == ["find"]


def test_a_later_manager_never_changes_it_and_warns_when_its_name_differs(make_manager, stored, caplog):
    first = make_manager(application_name="support-bot")
    make_agent(first, ["hi"])("hello")

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        other = make_manager(application_name="batch-eval")
    agent = make_agent(other, ["again"])
    agent("hello again")
    other.update_metadata({"step": 2})
    other.add_feedback({"rating": "up"})
    unnamed = make_manager()

    assert stored()["application_name"] == "support-bot"
    assert other.get_application_name() == unnamed.get_application_name() == "support-bot"
    (warning,) = [record for record in caplog.records if "application_name" in record.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "stored_application_name=<support-bot>" in warning.getMessage()


def test_the_same_name_opens_silently(make_manager, caplog):
    make_manager(application_name="support-bot")
    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        make_manager(application_name="support-bot")
    assert caplog.records == []


def test_a_session_written_by_an_earlier_version_has_none_and_keeps_having_none(
    make_manager, stored, client, database_name, caplog
):
    old = session_document(Session(session_id="old", session_type=SessionType.AGENT))
    client[database_name][COLLECTION].insert_one(old)
    assert "application_name" not in stored("old")

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        manager = make_manager("old", application_name="support-bot")
    make_agent(manager, ["hi"])("hello")

    assert manager.get_application_name() is None
    assert "application_name" not in stored("old")
    assert caplog.records == []
    assert MongoDBSessionRepository(client=client, database_name=database_name).get_application_name("nobody") is None


def test_create_mongodb_session_manager_takes_it(client, database_name, stored):
    create_mongodb_session_manager(
        "s-1", client=client, database_name=database_name, collection_name=COLLECTION, application_name="cli"
    )
    assert stored()["application_name"] == "cli"


def test_the_factory_gives_its_default_and_a_session_may_override_it(client, database_name, stored):
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, application_name="chat"
    )
    assert factory.create_session_manager("default").get_application_name() == "chat"
    assert factory.create_session_manager("override", application_name="batch").get_application_name() == "batch"
    assert factory.create_session_manager("unnamed", application_name=None).get_application_name() is None
    assert stored("override")["application_name"] == "batch"
    assert "application_name" not in stored("unnamed")


@pytest.mark.usefixtures("no_global_factory")
def test_the_global_factory_gives_its_default(client, database_name):
    initialize_global_factory(
        client=client, database_name=database_name, collection_name=COLLECTION, application_name="api"
    )
    assert get_global_factory().create_session_manager("g-1").get_application_name() == "api"


BAD_NAMES = ["", "x" * 129, "nul\x00inside", "lone \ud800 surrogate", 5, ["a"], {"$ne": None}]


@pytest.mark.usefixtures("no_global_factory")
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_every_entry_point_refuses_a_bad_name_before_anything_is_sent(client, database_name, command_log, stored, name):
    factory = MongoDBSessionManagerFactory(client=client, database_name=database_name, collection_name=COLLECTION)
    repository = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    command_log.clear()
    entry_points = [
        lambda: MongoDBSessionManager("s-1", client=client, database_name=database_name, application_name=name),
        lambda: create_mongodb_session_manager("s-1", client=client, application_name=name),
        lambda: MongoDBSessionManagerFactory(client=client, application_name=name),
        lambda: factory.create_session_manager("s-1", application_name=name),
        lambda: initialize_global_factory(client=client, application_name=name),
        lambda: MongoDBSessionRepository(client=client, application_name=name),
        lambda: repository.list_sessions(application_name=name),
        lambda: factory.list_sessions(application_name=name),
    ]
    for call in entry_points:
        with pytest.raises(InvalidApplicationNameError, match="application_name"):
            call()
    assert command_log.commands == []
    assert stored() is None
    with pytest.raises(RuntimeError, match="not initialized"):
        get_global_factory()


def test_a_name_of_128_characters_is_accepted(make_manager):
    assert make_manager(application_name="x" * 128).get_application_name() == "x" * 128


def test_invalid_application_name_error_is_a_value_error_and_a_type_error(client):
    for caught in (ValueError, TypeError):
        with pytest.raises(caught):
            MongoDBSessionRepository(client=client, application_name="")


@pytest.mark.usefixtures("no_global_factory")
def test_a_misspelt_keyword_is_named_with_the_suggestion(client):
    calls = [
        lambda: MongoDBSessionManager("s", client=client, aplication_name="x"),
        lambda: create_mongodb_session_manager("s", client=client, aplication_name="x"),
        lambda: MongoDBSessionManagerFactory(client=client, aplication_name="x"),
        lambda: MongoDBSessionManagerFactory(client=client).create_session_manager("s", aplication_name="x"),
        lambda: initialize_global_factory(client=client, aplication_name="x"),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"'aplication_name'; did you mean 'application_name'\?"):
            call()


def test_the_index_is_created_with_the_others(client, database_name, command_log):
    MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    assert command_log.commands == ["createIndexes"]
    indexes = {index["name"]: index for index in client[database_name][COLLECTION].list_indexes()}
    assert list(indexes["application_name_1_created_at_1"]["key"].items()) == [
        ("application_name", 1),
        ("created_at", 1),
        ("_id", 1),
    ]


def test_list_sessions_shows_and_filters_by_application(make_manager, client, database_name):
    for session_id, name in [("a-1", "chat"), ("b-1", "batch"), ("a-2", "chat"), ("none", None), ("a-3", "chat")]:
        make_manager(session_id, application_name=name)
    repository = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)

    summaries = repository.list_sessions()["sessions"]
    assert {s["session_id"]: s["application_name"] for s in summaries} == {
        "a-1": "chat",
        "b-1": "batch",
        "a-2": "chat",
        "none": None,
        "a-3": "chat",
    }
    ids, cursor = [], None
    while True:
        page = repository.list_sessions(application_name="chat", limit=2, cursor=cursor)
        ids += [summary["session_id"] for summary in page["sessions"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert ids == ["a-3", "a-2", "a-1"]
    assert repository.list_sessions(application_name="nobody")["sessions"] == []


# --------------------------------------------------------------------------- prompt metadata


def test_prompt_metadata_is_stored_beside_the_agent_and_its_restore_is_unaffected(make_manager, stored):
    manager = make_manager()
    agent = make_agent(manager, ["Hello!", "Still here."])
    agent("hi")
    agent.state.set("step", 1)
    manager.sync_agent(agent)
    metadata = {**PROMPT, "tags": ["a", "b"], "odd.key": {"$op": 1}, "big": 2**70}

    manager.set_prompt_metadata("support", metadata)
    agent("more")  # strands' own writes of the agent keep it

    resumed_manager = make_manager()
    resumed = make_agent(resumed_manager, ["Welcome back."])
    assert resumed.messages == agent.messages
    assert resumed.state.get("step") == 1
    resumed("again")
    assert resumed_manager.get_agent_config("support")["prompt_metadata"] == metadata
    assert resumed_manager.list_agents() == [
        {
            "agent_id": "support",
            "model": "scripted-model",
            "system_prompt": "You help customers.",
            "prompt_metadata": metadata,
        }
    ]
    assert stored()["agents"]["support"]["agent_data"]["prompt_metadata"] == encode_value(metadata)  # the codec's form


def test_new_prompt_metadata_replaces_the_previous_one_and_the_same_again_costs_nothing(
    make_manager, stored, command_log
):
    manager = make_manager()
    make_agent(manager, ["hi"])("hello")
    manager.set_prompt_metadata("support", {"prompt_id": "p-1", "temperature": 0.7})

    command_log.clear()
    manager.set_prompt_metadata("support", {"prompt_id": "p-2"})
    manager.set_prompt_metadata("support", {"prompt_id": "p-2"})
    assert command_log.commands == ["update"]
    assert manager.get_agent_config("support")["prompt_metadata"] == {"prompt_id": "p-2"}
    assert stored()["agents"]["support"]["agent_data"]["prompt_metadata"] == {"prompt_id": "p-2"}  # plain: as is


def test_update_agent_config_keeps_or_replaces_it_and_returns_the_config_in_one_command(make_manager, command_log):
    manager = make_manager()
    make_agent(manager, ["hi"])("hello")
    manager.set_prompt_metadata("support", PROMPT)

    command_log.clear()
    config = manager.update_agent_config("support", model="faster-model")
    assert command_log.commands == ["findAndModify"]
    assert config == {
        "agent_id": "support",
        "model": "faster-model",
        "system_prompt": "You help customers.",
        "prompt_metadata": PROMPT,
    }
    replaced = manager.update_agent_config("support", prompt_metadata={"prompt_id": "p-43"})
    assert (
        replaced["prompt_metadata"] == {"prompt_id": "p-43"} == manager.get_agent_config("support")["prompt_metadata"]
    )
    assert replaced["model"] == "faster-model"
    command_log.clear()
    assert manager.update_agent_config("support") == replaced
    assert command_log.commands == ["find"]


def test_an_agent_without_prompt_metadata_says_none(make_manager):
    manager = make_manager()
    make_agent(manager, ["hi"])("hello")
    assert manager.get_agent_config("support")["prompt_metadata"] is None
    assert manager.list_agents()[0]["prompt_metadata"] is None
    assert manager.update_agent_config("support", system_prompt="Be brief.")["prompt_metadata"] is None


class Opaque:
    """A value BSON cannot store."""


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("version 3", TypeError),
        ([("prompt_id", "p-1")], TypeError),
        (None, TypeError),
        ({1: "one"}, SessionDataError),
        ({"nested": {2: "two"}}, SessionDataError),
        ({"tags": {"a", "b"}}, SessionDataError),
        ({"value": Opaque()}, SessionDataError),
    ],
    ids=["str", "list", "none", "int-key", "nested-int-key", "set", "object"],
)
def test_bad_prompt_metadata_raises_a_typed_error_and_writes_nothing(make_manager, stored, command_log, bad, error):
    manager = make_manager()
    make_agent(manager, ["hi"])("hello")
    manager.set_prompt_metadata("support", PROMPT)
    before = stored()
    command_log.clear()

    with pytest.raises(error):
        manager.set_prompt_metadata("support", bad)
    with pytest.raises(error):
        manager.session_repository.set_prompt_metadata("s-1", "support", bad)
    if bad is not None:  # None leaves the field as it is in update_agent_config
        with pytest.raises(error):
            manager.update_agent_config("support", model="m", prompt_metadata=bad)

    assert command_log.commands == []
    assert stored() == before


def test_prompt_metadata_of_a_missing_agent_raises_session_not_found(make_manager):
    manager = make_manager()
    with pytest.raises(SessionNotFoundError, match="ghost"):
        manager.set_prompt_metadata("ghost", PROMPT)
    with pytest.raises(SessionNotFoundError, match="ghost"):
        manager.update_agent_config("ghost", prompt_metadata=PROMPT)
