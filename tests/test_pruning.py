"""Pruning an agent's oldest messages in both layouts, then resuming it with strands' conversation managers."""

import pytest
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository, SessionNotFoundError
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
AGENT = "agent"
MB = 1024 * 1024
LAYOUTS = ["embedded", "collection"]


def make_repo(client, database_name, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


def message(index: int, text: str = "m") -> SessionMessage:
    return SessionMessage(message={"role": "user", "content": [{"text": f"{text} {index}"}]}, message_id=index)


def filled(client, database_name, layout, count=10, **kwargs) -> MongoDBSessionRepository:
    repo = make_repo(client, database_name, message_storage=layout, **kwargs)
    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    repo.create_agent("s", SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    for index in range(count):
        repo.create_message("s", AGENT, message(index))
    return repo


def ids(messages) -> list[int]:
    return [m.message_id for m in messages]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prune_keeps_the_newest_and_offsets_stay_message_ids(client, database_name, layout):
    repo = filled(client, database_name, layout)
    assert repo.prune_messages("s", AGENT, keep_last=4) == 6
    assert ids(repo.list_messages("s", AGENT)) == [6, 7, 8, 9]
    fresh = make_repo(client, database_name)  # another process: knows nothing of the prune
    assert ids(fresh.list_messages("s", AGENT, offset=3)) == [6, 7, 8, 9]
    assert ids(fresh.list_messages("s", AGENT, offset=7)) == [7, 8, 9]
    assert ids(fresh.list_messages("s", AGENT, offset=7, limit=1)) == [7]
    assert ids(fresh.list_messages("s", AGENT, offset=10)) == []
    repo.create_message("s", AGENT, message(10))
    assert ids(fresh.list_messages("s", AGENT, offset=8)) == [8, 9, 10]
    assert repo.prune_messages("s", AGENT, keep_last=4) == 1
    assert repo.prune_messages("s", AGENT, keep_last=4) == 0
    assert ids(repo.list_messages("s", AGENT, offset=2)) == [7, 8, 9, 10]
    assert repo.list_sessions()["sessions"][0]["message_counts"] == {AGENT: 4}


def test_an_unpruned_embedded_page_is_still_one_find(client, database_name, command_log):
    filled(client, database_name, "embedded")
    command_log.clear()
    assert ids(make_repo(client, database_name).list_messages("s", AGENT, offset=5, limit=2)) == [5, 6]
    assert command_log.commands == ["find"]


def test_a_pruned_agent_survives_promotion_and_demotion(client, database_name):
    repo = filled(client, database_name, "embedded")
    repo.prune_messages("s", AGENT, keep_last=3)
    repo.migrate_session("s", to="collection")
    assert ids(make_repo(client, database_name).list_messages("s", AGENT, offset=8)) == [8, 9]
    repo.migrate_session("s", to="embedded")
    assert ids(make_repo(client, database_name).list_messages("s", AGENT, offset=8)) == [8, 9]


def test_prune_removes_gridfs_payloads_of_dropped_messages(client, database_name):
    repo = filled(client, database_name, "collection", count=2)
    repo.create_message("s", AGENT, message(2, "x" * (17 * MB)))
    repo.create_message("s", AGENT, message(3))
    files = client[database_name][f"{COLLECTION}.files"]
    assert files.count_documents({}) == 1
    assert repo.prune_messages("s", AGENT, keep_last=1) == 3
    assert files.count_documents({}) == 0
    assert client[database_name][f"{COLLECTION}.chunks"].count_documents({}) == 0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prune_refuses_bad_arguments_and_missing_agents(client, database_name, layout):
    repo = filled(client, database_name, layout, count=1)
    for keep_last in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="keep_last"):
            repo.prune_messages("s", AGENT, keep_last=keep_last)
    with pytest.raises(SessionNotFoundError):
        repo.prune_messages("s", "ghost", keep_last=1)
    with pytest.raises(SessionNotFoundError):
        repo.prune_messages("ghost", AGENT, keep_last=1)


def test_pruning_moves_the_expiry(client, database_name):
    repo = filled(client, database_name, "embedded", ttl_hours=1)
    before = client[database_name][COLLECTION].find_one({"_id": "s"})["expires_at"]
    client[database_name][COLLECTION].update_one({"_id": "s"}, {"$set": {"expires_at": before.replace(year=2000)}})
    repo.prune_messages("s", AGENT, keep_last=2)
    assert client[database_name][COLLECTION].find_one({"_id": "s"})["expires_at"] >= before


def make_agent(manager, replies, conversation_manager=None) -> Agent:
    extra = {"conversation_manager": conversation_manager} if conversation_manager is not None else {}
    return Agent(agent_id=AGENT, model=ScriptedModel(replies), session_manager=manager, callback_handler=None, **extra)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("window", [None, 6])
def test_prune_then_resume_gives_the_kept_messages_and_continues(client, database_name, layout, window):
    options = {"client": client, "database_name": database_name, "collection_name": COLLECTION}

    def manager():
        return MongoDBSessionManager("s", message_storage=layout, **options)

    def conversation_manager():
        return SlidingWindowConversationManager(window_size=window) if window else None

    first = manager()
    agent = make_agent(first, [f"answer {i}" for i in range(6)], conversation_manager())
    for turn in range(6):
        agent(f"question {turn}")
    before = list(agent.messages)  # what the agent held (the window drops the oldest)
    stored = first.session_repository.list_messages("s", AGENT)
    assert len(stored) == 12

    assert first.prune_messages(AGENT, keep_last=4) == 8
    kept_ids = {m.message_id for m in first.session_repository.list_messages("s", AGENT)}
    assert kept_ids == {8, 9, 10, 11}

    resumed = make_agent(manager(), ["after the prune"], conversation_manager())
    expected = [m.to_message() for m in stored if m.message_id in kept_ids]
    assert resumed.messages == [m for m in before if m in expected]
    assert resumed.messages == expected[-len(resumed.messages) :]
    assert resumed.messages[0]["content"][0]["text"] == "question 4"

    resumed("question 6")
    assert resumed.messages[-1]["content"][0]["text"] == "after the prune"
    after = make_repo(client, database_name).list_messages("s", AGENT)
    assert ids(after) == [8, 9, 10, 11, 12, 13]
    assert after[-2].message["content"][0]["text"] == "question 6"
