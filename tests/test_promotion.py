"""Automatic promotion (embedded -> collection): the append that triggers it succeeds, crash-safe, concurrent-safe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from layout_child import AGENT, COLLECTION, SESSION, message
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionType

from mongodb_session_manager import MongoDBSessionRepository

CHILD = Path(__file__).parent / "layout_child.py"
ESCAPED_AGENT = AGENT.replace(".", "%2E")


def make_repo(client: MongoClient, database_name: str, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


@pytest.fixture
def repo(client, database_name) -> MongoDBSessionRepository:
    """An embedded repository whose agents promote past three messages, with one session and agent."""
    repository = make_repo(client, database_name, max_embedded_messages=3)
    repository.create_session(Session(session_id=SESSION, session_type=SessionType.AGENT))
    repository.create_agent(SESSION, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    return repository


def stored_agent(client: MongoClient, database_name: str) -> dict:
    return client[database_name][COLLECTION].find_one({"_id": SESSION})["agents"][ESCAPED_AGENT]


def message_rows(client: MongoClient, database_name: str) -> list[int]:
    rows = client[database_name][f"{COLLECTION}.messages"].find({}, {"message_id": 1}).sort("message_id", 1)
    return [row["message_id"] for row in rows]


def test_the_append_past_the_limit_promotes_the_agent_and_succeeds(client, database_name, repo, command_log):
    for index in range(3):
        repo.create_message(SESSION, AGENT, message(index))
    assert [m["message_id"] for m in stored_agent(client, database_name)["messages"]] == [0, 1, 2]
    command_log.clear()

    repo.create_message(SESSION, AGENT, message(3))

    promotion_cost = list(command_log.commands)
    agent = stored_agent(client, database_name)
    assert agent["message_storage"] == "collection"
    assert "messages" not in agent
    assert message_rows(client, database_name) == [0, 1, 2, 3]
    assert make_repo(client, database_name).list_messages(SESSION, AGENT) == [message(i) for i in range(4)]
    # amortised, once per agent: the two missed pushes and the read that explains them, the promotion's read,
    # copy and commit, the append itself; plus the message indexes, once per process
    missed_append = ["update", "update", "find"]
    promotion = ["find", "createIndexes", "createIndexes", "update", "update"]
    assert promotion_cost == [*missed_append, *promotion, "insert"]

    command_log.clear()
    repo.create_message(SESSION, AGENT, message(4))
    assert command_log.commands == ["insert"]


def test_a_repository_with_a_stale_view_appends_to_the_promoted_agent(client, database_name, repo):
    other = make_repo(client, database_name, max_embedded_messages=3)
    other.create_message(SESSION, AGENT, message(0))  # "other" last saw the agent embedded
    for index in range(1, 4):
        repo.create_message(SESSION, AGENT, message(index))  # repo promotes it at message 3

    other.create_message(SESSION, AGENT, message(4))

    assert "messages" not in stored_agent(client, database_name)
    assert [m.message_id for m in other.list_messages(SESSION, AGENT)] == [0, 1, 2, 3, 4]


def test_promoting_twice_is_a_no_op(client, database_name, repo):
    from mongodb_session_manager import promotion

    for index in range(2):
        repo.create_message(SESSION, AGENT, message(index))

    assert promotion.promote(repo._inline, repo._collection, SESSION, AGENT) is True
    assert promotion.promote(repo._inline, repo._collection, SESSION, AGENT) is False
    assert message_rows(client, database_name) == [0, 1]


def run_child(mongo_uri: str, database_name: str, *args: int, exit_at: str | None = None) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.pop("_MSM_TEST_LAYOUT_MOVE_EXIT_AT", None)
    if exit_at is not None:
        env["_MSM_TEST_LAYOUT_MOVE_EXIT_AT"] = exit_at
    command = [sys.executable, str(CHILD), mongo_uri, database_name, *map(str, args)]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["read", "copied", "committed"])
def test_a_process_killed_at_any_step_of_a_promotion_loses_and_duplicates_nothing(
    client, mongo_uri, database_name, repo, step
):
    for index in range(3):
        repo.create_message(SESSION, AGENT, message(index))

    child = run_child(mongo_uri, database_name, 3, 1, 1, 3, exit_at=step)  # message 3 triggers the promotion
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 17, stderr

    assert make_repo(client, database_name).list_messages(SESSION, AGENT) == [message(i) for i in range(3)]
    assert ("message_storage" in stored_agent(client, database_name)) is (step == "committed")

    resumed = run_child(mongo_uri, database_name, 3, 3, 1, 3)  # the same append again, then two more
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr

    assert make_repo(client, database_name).list_messages(SESSION, AGENT) == [message(i) for i in range(6)]
    assert stored_agent(client, database_name)["message_storage"] == "collection"
    assert message_rows(client, database_name) == list(range(6))


@pytest.mark.slow
def test_two_processes_appending_while_one_promotes_lose_and_duplicate_nothing(client, mongo_uri, database_name, repo):
    children = [run_child(mongo_uri, database_name, first, 40, 2, 10) for first in (0, 1)]  # even and odd ids
    for child in children:
        _, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr

    assert make_repo(client, database_name).list_messages(SESSION, AGENT) == [message(i) for i in range(80)]
    assert stored_agent(client, database_name)["message_storage"] == "collection"
    assert message_rows(client, database_name) == list(range(80))
