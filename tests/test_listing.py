"""Listing sessions: filters, newest-first keyset paging, summaries in both layouts, one indexed query a page."""

from datetime import timedelta

import pytest
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository
from mongodb_session_manager.documents import session_document, utc_now
from plan_support import Commands, stages

COLLECTION = "sessions"
MANY = 10_000


def make_repo(client, database_name, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


def message(index: int) -> SessionMessage:
    return SessionMessage(message={"role": "user", "content": [{"text": f"m {index}"}]}, message_id=index)


def insert_sessions(client, database_name, ids) -> None:
    """Minimal session documents, as `create_session` writes them, inserted in one go."""
    documents = [session_document(Session(session_id=i, session_type=SessionType.AGENT)) for i in ids]
    client[database_name][COLLECTION].insert_many(documents)


def page_ids(result) -> list[str]:
    return [summary["session_id"] for summary in result["sessions"]]


def all_ids(repo, **filters) -> list[str]:
    ids, cursor = [], None
    while True:
        result = repo.list_sessions(cursor=cursor, **filters)
        ids += page_ids(result)
        cursor = result["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def many(mongo_uri, database_name):
    """10,000 sessions and a client whose commands are recorded in full."""
    commands = Commands()
    with MongoClient(mongo_uri, event_listeners=[commands], tz_aware=True) as mongo_client:
        repo = make_repo(mongo_client, database_name, metadata_fields=["user"])
        insert_sessions(mongo_client, database_name, [f"s-{i:05d}" for i in range(MANY)])
        commands.sent.clear()
        yield mongo_client, repo, commands


def test_a_page_is_one_aggregate_served_by_the_created_at_index(many, database_name):
    mongo_client, repo, commands = many
    first = repo.list_sessions(limit=50)
    second = repo.list_sessions(limit=50, cursor=first["next_cursor"])
    assert [next(iter(command)) for command in commands.sent] == ["aggregate", "aggregate"]
    assert len(first["sessions"]) == len(second["sessions"]) == 50
    assert not set(page_ids(first)) & set(page_ids(second))
    for command in list(commands.sent):
        assert "$skip" not in str(command["pipeline"])
        aggregate = {key: command[key] for key in ("aggregate", "pipeline", "cursor", "hint") if key in command}
        explain = mongo_client[database_name].command("explain", aggregate)
        plan = stages(explain)
        assert any(s["stage"] == "IXSCAN" and s.get("indexName") == "created_at_1__id_1" for s in plan), explain
        assert not any(s["stage"] == "COLLSCAN" for s in plan)


def test_an_application_page_is_one_aggregate_served_by_the_application_index(mongo_uri, database_name):
    commands = Commands()
    with MongoClient(mongo_uri, event_listeners=[commands], tz_aware=True) as mongo_client:
        repo = make_repo(mongo_client, database_name, metadata_fields=["user"])
        documents = [
            session_document(
                Session(session_id=f"s-{i:04d}", session_type=SessionType.AGENT),
                application_name="batch" if i % 4 == 0 else "chat",
            )
            for i in range(2000)
        ]
        mongo_client[database_name][COLLECTION].insert_many(documents)
        commands.sent.clear()
        first = repo.list_sessions(application_name="batch", limit=50)
        second = repo.list_sessions(application_name="batch", limit=50, cursor=first["next_cursor"])
        assert [next(iter(command)) for command in commands.sent] == ["aggregate", "aggregate"]
        listed = first["sessions"] + second["sessions"]
        assert len({summary["session_id"] for summary in listed}) == 100
        assert {summary["application_name"] for summary in listed} == {"batch"}
        for command in list(commands.sent):
            aggregate = {key: command[key] for key in ("aggregate", "pipeline", "cursor", "hint") if key in command}
            explain = mongo_client[database_name].command("explain", aggregate)
            plan = stages(explain)
            assert any(
                s["stage"] == "IXSCAN" and s.get("indexName") == "application_name_1_created_at_1" for s in plan
            ), explain
            assert not any(s["stage"] == "COLLSCAN" for s in plan)


def test_paging_under_concurrent_inserts_never_repeats_or_skips(many, database_name):
    mongo_client, repo, _ = many
    old = {f"s-{i:05d}" for i in range(MANY)}
    seen: list[str] = []
    cursor, inserted = None, 0
    while True:
        result = repo.list_sessions(limit=1000, cursor=cursor)
        seen += page_ids(result)
        insert_sessions(mongo_client, database_name, [f"new-{inserted + k}" for k in range(7)])  # newer: not listed
        inserted += 7
        cursor = result["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == MANY
    assert set(seen) == old


def test_newest_first_with_ties_broken_by_id(client, database_name):
    repo = make_repo(client, database_name)
    insert_sessions(client, database_name, ["a", "b", "c"])
    same = utc_now().replace(microsecond=0)
    client[database_name][COLLECTION].update_many({}, {"$set": {"created_at": same}})
    insert_sessions(client, database_name, ["z-older"])
    client[database_name][COLLECTION].update_one({"_id": "z-older"}, {"$set": {"created_at": same - timedelta(1)}})
    assert all_ids(repo, limit=1) == ["c", "b", "a", "z-older"]


@pytest.mark.parametrize("layout", ["embedded", "collection"])
def test_summaries_count_messages_per_agent_in_one_command(client, database_name, command_log, layout):
    repo = make_repo(client, database_name, message_storage=layout, metadata_fields=["user"])
    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    for agent_id, count in (("a.b", 3), ("c", 1), ("idle", 0)):
        repo.create_agent("s", SessionAgent(agent_id=agent_id, state={}, conversation_manager_state={}))
        for index in range(count):
            repo.create_message("s", agent_id, message(index))
    repo.update_metadata("s", {"user": "ana"})
    command_log.clear()
    (summary,) = repo.list_sessions()["sessions"]
    assert command_log.commands == ["aggregate"]
    assert summary["message_counts"] == {"a.b": 3, "c": 1, "idle": 0}
    assert summary["metadata"] == {"user": "ana"}
    assert summary["session_id"] == "s"
    assert summary["created_at"] <= summary["updated_at"]
    assert summary["expires_at"] is None
    assert summary["legal_hold"] is False


def test_mixed_layouts_are_counted_where_each_agent_lives(client, database_name):
    repo = make_repo(client, database_name, max_embedded_messages=2)
    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    for agent_id, count in (("promoted", 5), ("embedded", 2)):
        repo.create_agent("s", SessionAgent(agent_id=agent_id, state={}, conversation_manager_state={}))
        for index in range(count):
            repo.create_message("s", agent_id, message(index))
    assert repo.list_sessions()["sessions"][0]["message_counts"] == {"promoted": 5, "embedded": 2}


def test_filters(client, database_name):
    repo = make_repo(client, database_name, metadata_fields=["user"])
    insert_sessions(client, database_name, ["user-1", "user-10", "user-2", "userx", "other"])
    sessions = client[database_name][COLLECTION]
    base = utc_now().replace(microsecond=0) - timedelta(days=10)
    for day, session_id in enumerate(["user-1", "user-10", "user-2", "userx", "other"]):
        when = base + timedelta(days=day)
        sessions.update_one({"_id": session_id}, {"$set": {"created_at": when, "updated_at": when + timedelta(1)}})
    repo.update_metadata("user-2", {"user": "ana"})
    repo.update_metadata("userx", {"user": "ana"})

    assert all_ids(repo, prefix="user-1") == ["user-10", "user-1"]
    assert all_ids(repo, prefix="user-") == ["user-2", "user-10", "user-1"]
    assert all_ids(repo, prefix="nobody") == []
    assert all_ids(repo, created_after=base + timedelta(days=1), created_before=base + timedelta(days=3)) == [
        "user-2",
        "user-10",
    ]
    assert all_ids(repo, updated_before=base + timedelta(days=2)) == ["user-1"]
    assert set(all_ids(repo, updated_after=utc_now() - timedelta(minutes=5))) == {"user-2", "userx"}
    assert all_ids(repo, metadata={"user": "ana"}, limit=1) == ["userx", "user-2"]


def test_the_prefix_is_an_anchored_id_range(client, database_name):
    commands = Commands()
    repo = make_repo(client, database_name)
    with MongoClient(client.address[0], client.address[1], event_listeners=[commands]) as watched:
        make_repo(watched, database_name).list_sessions(prefix="a.*")
    command = commands.sent[-1]  # after the new client's createIndexes
    assert next(iter(command)) == "aggregate"
    assert command["pipeline"][0]["$match"]["_id"] == {"$gte": "a.*", "$lt": "a.+"}
    assert "$regex" not in str(command)
    assert repo.list_sessions(prefix="a.*")["sessions"] == []


def test_metadata_filters_need_an_index(client, database_name):
    repo = make_repo(client, database_name)
    with pytest.raises(ValueError, match="indexed"):
        repo.list_sessions(metadata={"user": "ana"})
    client[database_name][COLLECTION].create_index("metadata.user")
    assert make_repo(client, database_name).list_sessions(metadata={"user": "ana"})["sessions"] == []


@pytest.mark.parametrize(
    "filters",
    [
        {"limit": 0},
        {"limit": 1001},
        {"cursor": "not a cursor"},
        {"created_after": "2025-01-01"},
        {"prefix": 3},
        {"metadata": {"$where": 1}},
        {"application_name": {"$ne": None}},
        {"application_name": ""},
    ],
)
def test_bad_filters_are_refused(client, database_name, command_log, filters):
    repo = make_repo(client, database_name, metadata_fields=["user"])
    command_log.clear()
    with pytest.raises(ValueError):
        repo.list_sessions(**filters)
    assert command_log.commands == []


def test_the_factory_lists_its_collection(client, database_name):
    factory = MongoDBSessionManagerFactory(
        client=client, database_name=database_name, collection_name=COLLECTION, metadata_fields=["user"]
    )
    factory.create_session_manager("one").update_metadata({"user": "ana"})
    factory.create_session_manager("two")
    assert page_ids(factory.list_sessions()) == ["two", "one"]
    assert page_ids(factory.list_sessions(metadata={"user": "ana"})) == ["one"]
    factory.close()
    with pytest.raises(RuntimeError):
        factory.list_sessions()
