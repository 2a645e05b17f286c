"""Retention: ``ttl_hours`` expiry moved by every write, the TTL index, legal hold and the orphan sweep."""

from datetime import timedelta

import pytest
from pymongo.errors import OperationFailure
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionNotFoundError,
    create_mongodb_session_manager,
    initialize_global_factory,
)
from mongodb_session_manager.factory import close_global_factory
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
AGENT = "agent"
MB = 1024 * 1024
LAYOUTS = ["embedded", "collection"]


def make_repo(client, database_name, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


def message(index: int, text: str = "hello") -> SessionMessage:
    return SessionMessage(message={"role": "user", "content": [{"text": f"{text} {index}"}]}, message_id=index)


def new_session(repo: MongoDBSessionRepository, session_id: str = "s") -> None:
    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))


def stored(client, database_name, session_id: str = "s") -> dict | None:
    return client[database_name][COLLECTION].find_one({"_id": session_id})


def run_ttl_monitor(client, database_name) -> None:
    """One pass of the TTL monitor: the embedded server's own, else the deletion it would make."""
    try:
        client.admin.command("secantusAdmin.pruneTtl")
    except OperationFailure:  # a real MongoDB: its monitor runs every 60 s; delete as it would
        from mongodb_session_manager.documents import utc_now

        client[database_name][COLLECTION].delete_many({"expires_at": {"$lte": utc_now()}})


def test_the_ttl_index_exists_with_expire_after_zero(client, database_name):
    make_repo(client, database_name)  # without ttl_hours too
    indexes = {index["name"]: index for index in client[database_name][COLLECTION].list_indexes()}
    assert dict(indexes["expires_at_1"]["key"]) == {"expires_at": 1}
    assert indexes["expires_at_1"]["expireAfterSeconds"] == 0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_expiry_is_set_on_create_and_moved_by_every_write(client, database_name, layout):
    repo = make_repo(client, database_name, message_storage=layout, ttl_hours=2)
    repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    created = stored(client, database_name)
    assert created["expires_at"] == created["created_at"] + timedelta(hours=2)

    previous = created["expires_at"]
    writes = [
        lambda: repo.create_agent("s", SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={})),
        lambda: repo.create_message("s", AGENT, message(0)),
        lambda: repo.update_message("s", AGENT, message(0, "redacted")),
        lambda: repo.set_message_fields("s", AGENT, 0, {"event_loop_metrics": {"n": 1}}),
        lambda: repo.update_agent("s", SessionAgent(agent_id=AGENT, state={"k": 1}, conversation_manager_state={})),
        lambda: repo.update_metadata("s", {"topic": "x"}),
        lambda: repo.delete_metadata("s", ["topic"]),
        lambda: repo.add_feedback("s", {"rating": "up"}),
    ]
    for write in writes:
        client[database_name][COLLECTION].update_one({"_id": "s"}, {"$set": {"expires_at": previous - timedelta(1)}})
        write()
        moved = stored(client, database_name)["expires_at"]
        assert moved > previous - timedelta(1)
        assert moved >= previous
        previous = moved


@pytest.mark.parametrize("layout", LAYOUTS)
def test_without_ttl_nothing_gets_an_expiry(client, database_name, layout):
    repo = make_repo(client, database_name, message_storage=layout)
    new_session(repo)
    repo.create_message("s", AGENT, message(0))
    repo.update_metadata("s", {"topic": "x"})
    repo.release_session("s")
    assert "expires_at" not in stored(client, database_name)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_held_sessions_have_no_expiry_and_writes_do_not_set_it(client, database_name, layout, command_log):
    repo = make_repo(client, database_name, message_storage=layout, ttl_hours=1)
    new_session(repo)
    repo.hold_session("s")
    assert stored(client, database_name)["legal_hold"] is True
    assert "expires_at" not in stored(client, database_name)

    repo.create_message("s", AGENT, message(0))
    repo.update_metadata("s", {"topic": "kept"})
    repo.add_feedback("s", {"rating": "down"})
    document = stored(client, database_name)
    assert "expires_at" not in document
    assert document["metadata"] == {"topic": "kept"}
    assert [m.message_id for m in repo.list_messages("s", AGENT)] == [0]

    repo.release_session("s")
    released = stored(client, database_name)
    assert "legal_hold" not in released
    assert released["expires_at"] > released["updated_at"]


def test_a_write_to_a_free_session_costs_one_command_with_a_ttl(client, database_name, command_log):
    repo = make_repo(client, database_name, ttl_hours=1)
    new_session(repo)
    command_log.clear()
    repo.create_message("s", AGENT, message(0))
    repo.update_metadata("s", {"topic": "x"})
    assert command_log.commands == ["update", "update"]


def test_hold_and_release_of_a_missing_session_raise(client, database_name):
    repo = make_repo(client, database_name, ttl_hours=1)
    with pytest.raises(SessionNotFoundError):
        repo.hold_session("ghost")
    with pytest.raises(SessionNotFoundError):
        repo.release_session("ghost")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_expired_sessions_go_held_ones_stay_and_orphans_are_swept(client, database_name, layout):
    repo = make_repo(client, database_name, message_storage=layout, ttl_hours=1)
    for session_id in ("expired", "held", "alive"):
        new_session(repo, session_id)
        repo.create_message(session_id, AGENT, message(0))
        big = layout == "collection" and session_id == "expired"  # a message in GridFS
        repo.create_message(session_id, AGENT, message(1, "x" * (17 * MB) if big else "small"))
    repo.hold_session("held")
    past = {"$set": {"expires_at": stored(client, database_name, "expired")["created_at"] - timedelta(hours=1)}}
    client[database_name][COLLECTION].update_one({"_id": "expired"}, past)

    run_ttl_monitor(client, database_name)

    assert stored(client, database_name, "expired") is None
    assert stored(client, database_name, "held") is not None
    assert stored(client, database_name, "alive") is not None
    database = client[database_name]
    swept = repo.delete_orphaned_messages(older_than=timedelta(0))
    if layout == "collection":
        assert swept == {"sessions": 1, "messages": 2, "files": 1}
        assert database[f"{COLLECTION}.messages"].count_documents({"session_id": "expired"}) == 0
        assert database[f"{COLLECTION}.files"].count_documents({"metadata.session_id": "expired"}) == 0
        assert database[f"{COLLECTION}.chunks"].count_documents({}) == 0
    else:
        assert swept == {"sessions": 0, "messages": 0, "files": 0}
    assert [m.message_id for m in repo.list_messages("alive", AGENT)] == [0, 1]
    assert [m.message_id for m in repo.list_messages("held", AGENT)] == [0, 1]


def test_released_sessions_expire_again(client, database_name):
    repo = make_repo(client, database_name, ttl_hours=1)
    new_session(repo)
    repo.hold_session("s")
    run_ttl_monitor(client, database_name)
    assert stored(client, database_name) is not None
    repo.release_session("s")
    released = stored(client, database_name)["expires_at"]
    client[database_name][COLLECTION].update_one({"_id": "s"}, {"$set": {"expires_at": released - timedelta(hours=2)}})
    run_ttl_monitor(client, database_name)
    assert stored(client, database_name) is None


def test_the_orphan_sweep_spares_recent_messages(client, database_name):
    repo = make_repo(client, database_name, message_storage="collection")
    new_session(repo)
    repo.create_message("s", AGENT, message(0))
    client[database_name][COLLECTION].delete_one({"_id": "s"})
    assert repo.delete_orphaned_messages()["messages"] == 0  # younger than the grace period
    assert repo.delete_orphaned_messages(older_than=timedelta(0), batch_size=1)["messages"] == 1


def test_the_orphan_sweep_refuses_bad_arguments(client, database_name):
    repo = make_repo(client, database_name)
    with pytest.raises(ValueError, match="batch_size"):
        repo.delete_orphaned_messages(batch_size=0)
    with pytest.raises(ValueError, match="older_than"):
        repo.delete_orphaned_messages(older_than=60)


@pytest.mark.parametrize("ttl_hours", [0, -1, "24", True, float("inf")])
def test_bad_ttl_hours_are_refused(client, database_name, ttl_hours):
    with pytest.raises(ValueError, match="ttl_hours"):
        make_repo(client, database_name, ttl_hours=ttl_hours)
    with pytest.raises(ValueError, match="ttl_hours"):
        MongoDBSessionManagerFactory(client=client, ttl_hours=ttl_hours)


def test_ttl_hours_reaches_the_manager_from_every_entry_point(client, database_name):
    def expiry(session_id):
        document = stored(client, database_name, session_id)
        return document["expires_at"] - document["created_at"]

    options = {"client": client, "database_name": database_name, "collection_name": COLLECTION}
    MongoDBSessionManager("m", ttl_hours=3, **options)
    create_mongodb_session_manager("c", ttl_hours=4, **options)
    factory = MongoDBSessionManagerFactory(ttl_hours=5, **options)
    factory.create_session_manager("f")
    factory.create_session_manager("o", ttl_hours=6)
    try:
        initialize_global_factory(ttl_hours=7, **options).create_session_manager("g")
    finally:
        close_global_factory()
    assert [expiry(s) for s in "mcfog"] == [timedelta(hours=h) for h in (3, 4, 5, 6, 7)]


def test_a_misspelt_ttl_keyword_is_refused(client, database_name):
    with pytest.raises(TypeError, match="did you mean 'ttl_hours'"):
        MongoDBSessionManager("m", client=client, database_name=database_name, ttl_hour=1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_manager_hold_and_release_around_agent_turns(client, database_name, layout):
    options = {"client": client, "database_name": database_name, "collection_name": COLLECTION}
    manager = MongoDBSessionManager("s", ttl_hours=1, message_storage=layout, **options)
    agent = Agent(agent_id=AGENT, model=ScriptedModel(["one", "two"]), session_manager=manager, callback_handler=None)
    agent("hi")
    assert "expires_at" in stored(client, database_name)
    manager.hold_session()
    agent("again")
    assert "expires_at" not in stored(client, database_name)
    manager.release_session()
    assert "expires_at" in stored(client, database_name)
