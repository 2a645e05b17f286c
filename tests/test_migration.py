"""``migrate_session`` / ``migrate_sessions``: moving existing sessions between the two message layouts."""

import pytest
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MessageLayoutError, MongoDBSessionRepository, SessionNotFoundError

COLLECTION = "sessions"
STAMP = "2025-01-01T00:00:00+00:00"
MB = 1024 * 1024
AGENTS = {"s-1": ["assistant"], "s-2": ["assistant", "support.v2"], "s-3": []}


def message(index: int, text: str = "hello") -> SessionMessage:
    content = {"role": "user", "content": [{"text": f"{text} {index}"}]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


def make_repo(client: MongoClient, database_name: str, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


@pytest.fixture
def repo(client, database_name) -> MongoDBSessionRepository:
    """Three embedded sessions: one agent with three messages, two agents, and no agent at all."""
    repository = make_repo(client, database_name)
    for session_id, agent_ids in AGENTS.items():
        repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        for agent_id in agent_ids:
            repository.create_agent(
                session_id, SessionAgent(agent_id=agent_id, state={}, conversation_manager_state={})
            )
            for index in range(3):
                repository.create_message(session_id, agent_id, message(index, agent_id))
    return repository


def everything(client: MongoClient, database_name: str) -> dict[str, list[dict]]:
    database = client[database_name]
    return {name: list(database[name].find().sort("_id", 1)) for name in sorted(database.list_collection_names())}


def all_messages(repository: MongoDBSessionRepository) -> dict[tuple[str, str], list[SessionMessage]]:
    return {
        (session_id, agent_id): repository.list_messages(session_id, agent_id)
        for session_id, agent_ids in AGENTS.items()
        for agent_id in agent_ids
    }


def test_to_collection_and_back_keeps_every_message(client, database_name, repo):
    before = all_messages(repo)
    progress = []

    summary = repo.migrate_sessions(to="collection", on_progress=lambda done, total: progress.append((done, total)))

    assert summary == {
        "to": "collection",
        "dry_run": False,
        "seen": 3,
        "migrated": 2,
        "already_in_place": 1,  # s-3 has no agent: nothing to move
        "failed": 0,
        "failures": [],
    }
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == 9
    assert all_messages(make_repo(client, database_name)) == before

    back = make_repo(client, database_name).migrate_sessions(to="embedded")

    assert (back["seen"], back["migrated"], back["failed"]) == (3, 2, 0)
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == 0
    assert all_messages(make_repo(client, database_name)) == before


def test_a_second_run_changes_nothing(client, database_name, repo):
    repo.migrate_sessions(to="collection")
    before = everything(client, database_name)

    again = make_repo(client, database_name).migrate_sessions(to="collection")

    assert (again["seen"], again["migrated"], again["already_in_place"], again["failed"]) == (3, 0, 3, 0)
    assert everything(client, database_name) == before


def test_a_dry_run_counts_and_changes_nothing(client, database_name, repo):
    before = everything(client, database_name)

    summary = repo.migrate_sessions(to="collection", dry_run=True)

    assert (summary["seen"], summary["migrated"], summary["already_in_place"], summary["dry_run"]) == (3, 2, 1, True)
    assert everything(client, database_name) == before


def test_named_sessions_only_and_a_missing_one_is_reported(client, database_name, repo):
    summary = repo.migrate_sessions(to="collection", session_ids=["s-2", "ghost"])

    assert (summary["seen"], summary["migrated"], summary["failed"]) == (2, 1, 1)
    assert summary["failures"][0]["session_id"] == "ghost"
    assert "ghost" in summary["failures"][0]["error"]
    assert repo.migrate_session("s-1", to="collection") is True
    assert repo.migrate_session("s-1", to="collection") is False
    with pytest.raises(SessionNotFoundError):
        repo.migrate_session("ghost", to="collection")
    with pytest.raises(ValueError, match="sideways"):
        repo.migrate_sessions(to="sideways")


def test_to_embedded_refuses_a_gridfs_message_and_changes_nothing(client, database_name, repo):
    repo.migrate_session("s-1", to="collection")
    repo.create_message("s-1", "assistant", message(3, "x" * (17 * MB)))
    before = everything(client, database_name)

    with pytest.raises(MessageLayoutError, match="GridFS"):
        repo.migrate_session("s-1", to="embedded")
    summary = repo.migrate_sessions(to="embedded", session_ids=["s-1"])

    assert summary["failed"] == 1 and "GridFS" in summary["failures"][0]["error"]
    assert everything(client, database_name) == before


def test_to_embedded_refuses_messages_that_would_not_fit_in_16_mb(client, database_name, repo):
    repo.migrate_session("s-1", to="collection")
    for index in range(3, 6):
        repo.create_message("s-1", "assistant", message(index, "y" * (6 * MB)))
    before = everything(client, database_name)

    with pytest.raises(MessageLayoutError, match="would not fit"):
        repo.migrate_session("s-1", to="embedded")

    assert everything(client, database_name) == before
