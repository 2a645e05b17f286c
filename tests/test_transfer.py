"""Export and import of sessions (``transfer.py``): exact round trips in both layouts, conflicts, memory, crashes."""

import io
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    MongoDBSessionManager,
    MongoDBSessionRepository,
    SessionNotFoundError,
    export_sessions,
    import_sessions,
)
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
MB = 1024 * 1024
STAMP = "2025-01-01T00:00:00+00:00"
PNG = bytes(range(256)) * 4
WHEN = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def make_repo(client: MongoClient, database_name: str, **kwargs) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION, **kwargs)


def make_agent(client, database_name, session_id, agent_id, script, **manager_options) -> Agent:
    manager = MongoDBSessionManager(
        session_id, client=client, database_name=database_name, collection_name=COLLECTION, **manager_options
    )
    return Agent(agent_id=agent_id, model=ScriptedModel(script), session_manager=manager, callback_handler=None)


@pytest.fixture
def target(client, database_name):
    """The name of a second database to import into (dropped afterwards)."""
    name = f"{database_name}_copy"
    yield name
    client.drop_database(name)


@pytest.fixture
def sources(client, database_name) -> dict[tuple[str, str], Agent]:
    """Sessions written by real agents: embedded, collection and promoted agents, bytes, dates, metadata, feedback."""
    agents: dict[tuple[str, str], Agent] = {}
    embedded = make_agent(client, database_name, "s-embedded", "assistant", ["A cat.", "Yes."])
    embedded([{"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}])
    embedded("Sure?")
    manager = MongoDBSessionManager(
        "s-embedded", client=client, database_name=database_name, collection_name=COLLECTION
    )
    manager.update_metadata({"user": "alice", "seen": WHEN, "odd": {"$x": 1, "a.b": 2}})
    manager.add_feedback({"rating": "up", "comment": "ok"})
    agents["s-embedded", "assistant"] = embedded

    collection = make_agent(
        client, database_name, "s-collection", "support.v2", ["One", "Two"], message_storage="collection"
    )
    collection("first")
    collection("second")
    agents["s-collection", "support.v2"] = collection

    promoted = make_agent(client, database_name, "s-promoted", "a", ["1", "2", "3"], max_embedded_messages=3)
    for turn in range(3):
        promoted(f"turn {turn}")  # the fourth message promotes agent "a"
    small = make_agent(client, database_name, "s-promoted", "b", ["hi"], max_embedded_messages=3)
    small("hello")
    agents["s-promoted", "a"] = promoted
    agents["s-promoted", "b"] = small

    document = client[database_name][COLLECTION].find_one({"_id": "s-promoted"})
    assert document["agents"]["a"]["message_storage"] == "collection"
    assert "message_storage" not in document["agents"]["b"]
    return agents


def export_text(repository, **kwargs) -> str:
    out = io.StringIO()
    export_sessions(repository, out, **kwargs)
    return out.getvalue()


def assert_same_sessions(client, source_db: str, target_db: str, session_ids) -> None:
    """Every stored object of the sessions reads back ``==`` from both databases."""
    source, copy = make_repo(client, source_db), make_repo(client, target_db)
    for session_id in session_ids:
        assert copy.read_session(session_id) == source.read_session(session_id)
        assert copy.session_messages(session_id) == source.session_messages(session_id)
        assert copy.get_metadata(session_id) == source.get_metadata(session_id)
        assert copy.get_feedbacks(session_id) == source.get_feedbacks(session_id)
        assert copy.get_viewer_password(session_id) == source.get_viewer_password(session_id)
        for agent_id in source.session_messages(session_id):
            assert copy.read_agent(session_id, agent_id) == source.read_agent(session_id, agent_id)
            assert copy.list_messages(session_id, agent_id) == source.list_messages(session_id, agent_id)
        fields = {"_id": 1, "created_at": 1, "updated_at": 1, "session_data": 1}
        assert client[target_db][COLLECTION].find_one({"_id": session_id}, fields) == client[source_db][
            COLLECTION
        ].find_one({"_id": session_id}, fields)


# ----------------------------------------------------------------- round trips


def test_an_export_has_one_canonical_extended_json_line_per_session_with_every_message(client, database_name, sources):
    text = export_text(make_repo(client, database_name))

    lines = text.splitlines()
    assert len(lines) == 3 and text.endswith("\n")
    by_id = {json.loads(line)["session"]["_id"]: json.loads(line) for line in lines}
    assert sorted(by_id) == ["s-collection", "s-embedded", "s-promoted"]
    promoted = by_id["s-promoted"]
    assert (promoted["format"], promoted["version"]) == ("mongodb-session-manager/session", 1)
    assert [len(agent["messages"]) for agent in promoted["session"]["agents"].values()] == [6, 2]
    assert all("message_storage" not in agent for agent in promoted["session"]["agents"].values())
    assert len(by_id["s-collection"]["session"]["agents"]["support%2Ev2"]["messages"]) == 4
    embedded = by_id["s-embedded"]["session"]
    assert embedded["created_at"] == {"$date": {"$numberLong": str(_ms(embedded_created(client, database_name)))}}
    assert embedded["metadata"]["seen"] == {"$date": {"$numberLong": str(_ms(WHEN))}}
    image = embedded["agents"]["assistant"]["messages"][0]["message"]["content"][1]["image"]["source"]["bytes"]
    assert set(image) == {"$binary"}


def embedded_created(client, database_name) -> datetime:
    return client[database_name][COLLECTION].find_one({"_id": "s-embedded"})["created_at"]


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000)


@pytest.mark.parametrize("storage", ["embedded", "collection"])
def test_import_into_another_database_resumes_agents_equal_to_the_originals(
    client, database_name, target, sources, storage
):
    text = export_text(make_repo(client, database_name))

    summary = import_sessions(make_repo(client, target, message_storage=storage), io.StringIO(text))

    assert summary == {"read": 3, "imported": 3, "skipped": 0, "replaced": 0, "failed": 0, "failures": []}
    assert_same_sessions(client, database_name, target, ["s-embedded", "s-collection", "s-promoted"])
    for (session_id, agent_id), original in sources.items():
        resumed = make_agent(client, target, session_id, agent_id, ["Continued."], message_storage=storage)
        assert resumed.messages == original.messages
        assert resumed.state.get() == original.state.get()
        resumed("and now?")
        assert resumed.messages[-1]["content"] == [{"text": "Continued."}]
        stored = make_repo(client, target).list_messages(session_id, agent_id)
        assert [m.message for m in stored] == resumed.messages


def test_import_places_messages_by_the_importing_repositorys_layout_rules(client, database_name, target, sources):
    text = export_text(make_repo(client, database_name))

    import_sessions(make_repo(client, target, max_embedded_messages=4), io.StringIO(text))

    sessions = {doc["_id"]: doc for doc in client[target][COLLECTION].find()}
    assert len(sessions["s-embedded"]["agents"]["assistant"]["messages"]) == 4
    assert len(sessions["s-collection"]["agents"]["support%2Ev2"]["messages"]) == 4  # back to embedded: it fits
    assert "message_storage" not in sessions["s-collection"]["agents"]["support%2Ev2"]
    assert sessions["s-promoted"]["agents"]["a"]["message_storage"] == "collection"  # 6 > 4
    assert "messages" not in sessions["s-promoted"]["agents"]["a"]
    rows = client[target][f"{COLLECTION}.messages"].find({}, {"_id": 0, "session_id": 1, "agent_id": 1})
    assert {(row["session_id"], row["agent_id"]) for row in rows} == {("s-promoted", "a")}
    assert_same_sessions(client, database_name, target, ["s-embedded", "s-collection", "s-promoted"])


def big_message(index: int, payload: bytes) -> SessionMessage:
    block = {"document": {"format": "pdf", "name": "scan", "source": {"bytes": payload}}}
    return SessionMessage(
        message={"role": "user", "content": [block]}, message_id=index, created_at=STAMP, updated_at=STAMP
    )


def small_message(index: int) -> SessionMessage:
    content = {"role": "user", "content": [{"text": f"m{index}"}]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


def test_a_message_held_in_gridfs_is_exported_inline_and_imported_into_gridfs(client, database_name, target, tmp_path):
    source = make_repo(client, database_name, message_storage="collection")
    source.create_session(Session(session_id="s-big", session_type=SessionType.AGENT))
    source.create_agent("s-big", SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
    payload = os.urandom(17 * MB)
    source.create_message("s-big", "a", small_message(0))
    source.create_message("s-big", "a", big_message(1, payload))
    assert client[database_name][f"{COLLECTION}.files"].count_documents({}) == 1
    path = tmp_path / "export.jsonl"

    assert source.export_sessions(path) == {"exported": 1, "messages": 2}  # the repository's own method
    summary = make_repo(client, target).import_sessions(path)  # an embedded repository: 17 MB cannot fit

    assert summary["imported"] == 1
    document = client[target][COLLECTION].find_one({"_id": "s-big"})
    assert document["agents"]["a"]["message_storage"] == "collection"
    assert client[target][f"{COLLECTION}.files"].count_documents({"metadata.session_id": "s-big"}) == 1
    restored = make_repo(client, target).list_messages("s-big", "a")
    assert restored == [small_message(0), big_message(1, payload)]


def test_export_of_named_sessions_writes_them_in_order_and_refuses_unknown_ones(client, database_name, sources):
    repository = make_repo(client, database_name)

    text = export_text(repository, session_ids=["s-promoted", "s-embedded", "s-promoted"])
    assert [json.loads(line)["session"]["_id"] for line in text.splitlines()] == ["s-promoted", "s-embedded"]

    out = io.StringIO()
    with pytest.raises(SessionNotFoundError, match="nope"):
        export_sessions(repository, out, session_ids=["s-embedded", "nope"])
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="not both"):
        export_sessions(repository, out, session_ids=["s-embedded"], prefix="s-")


def test_export_reports_progress_per_session(client, database_name, sources):
    calls = []
    export_sessions(make_repo(client, database_name), io.StringIO(), on_progress=lambda *a: calls.append(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# ----------------------------------------------------------------- conflicts and bad input


def test_on_conflict_skip_replace_and_fail(client, database_name, target, sources):
    text = export_text(make_repo(client, database_name), session_ids=["s-embedded", "s-promoted"])
    copy = make_repo(client, target, message_storage="collection")
    copy.create_session(Session(session_id="s-promoted", session_type=SessionType.AGENT))
    copy.create_agent("s-promoted", SessionAgent(agent_id="a", state={"old": True}, conversation_manager_state={}))
    for index in range(8):
        copy.create_message("s-promoted", "a", small_message(index))
    before = client[target][COLLECTION].find_one({"_id": "s-promoted"})

    skipped = import_sessions(copy, io.StringIO(text), on_conflict="skip")
    assert (skipped["imported"], skipped["skipped"], skipped["replaced"], skipped["failed"]) == (1, 1, 0, 0)
    assert client[target][COLLECTION].find_one({"_id": "s-promoted"}) == before

    failed = import_sessions(copy, io.StringIO(text), on_conflict="fail")
    assert (failed["read"], failed["imported"], failed["failed"]) == (2, 0, 2)
    assert failed["failures"][0] == {
        "line": 1,
        "session_id": "s-embedded",
        "error": "Session s-embedded already exists",
    }
    assert client[target][COLLECTION].find_one({"_id": "s-promoted"}) == before

    replaced = import_sessions(copy, io.StringIO(text), on_conflict="replace")
    assert (replaced["imported"], replaced["replaced"], replaced["failed"]) == (0, 2, 0)
    assert_same_sessions(client, database_name, target, ["s-embedded", "s-promoted"])
    rows = client[target][f"{COLLECTION}.messages"].count_documents({"session_id": "s-promoted"})
    assert rows == 8  # the old 8 messages of "a" are gone; the imported 6 of "a" and 2 of "b" are there


def test_an_unknown_on_conflict_is_refused_before_reading(client, target):
    with pytest.raises(ValueError, match="on_conflict"):
        import_sessions(make_repo(client, target), iter(["never read"]), on_conflict="merge")


def test_bad_lines_are_reported_and_the_others_imported(client, database_name, target, sources):
    good = export_text(make_repo(client, database_name), session_ids=["s-embedded"])
    newer = json.dumps({"format": "mongodb-session-manager/session", "version": 99, "session": {}})
    lines = ["{not json", "", json.dumps({"hello": 1}), newer, good.encode()]

    summary = import_sessions(make_repo(client, target), lines)

    assert (summary["read"], summary["imported"], summary["failed"]) == (4, 1, 3)
    assert [(f["line"], f["session_id"]) for f in summary["failures"]] == [(1, None), (3, None), (4, None)]
    assert summary["failures"][0]["error"].startswith("not a JSON line")
    assert "version=<99>" in summary["failures"][2]["error"]
    assert_same_sessions(client, database_name, target, ["s-embedded"])


# ----------------------------------------------------------------- streaming


EXPORT_UNDER_TRACEMALLOC = textwrap.dedent(
    """
    import json, sys, tracemalloc
    from mongodb_session_manager import MongoDBSessionRepository, export_sessions

    class CountingSink:  # keeps only the number of characters and lines written
        size = lines = 0
        def write(self, text):
            self.size += len(text)
            self.lines += text.count("\\n")
        def flush(self):
            pass

    uri, database = sys.argv[1:]
    with MongoDBSessionRepository(uri, database_name=database, collection_name="sessions") as repository:
        sink = CountingSink()
        tracemalloc.start()
        summary = export_sessions(repository, sink)
        _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"summary": summary, "size": sink.size, "lines": sink.lines, "peak": peak}))
    """
)


@pytest.mark.slow
def test_export_holds_one_session_at_a_time(client, mongo_uri, database_name):
    repository = make_repo(client, database_name)
    text = "x" * 10_000
    for index in range(120):  # 120 sessions of ~100 KB each: more than one page of ids
        session_id = f"s-{index:03d}"
        repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        repository.create_agent(session_id, SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
        for message_id in range(10):
            message = {"role": "user", "content": [{"text": text}]}
            repository.create_message(
                session_id, "a", SessionMessage(message=message, message_id=message_id, created_at=STAMP)
            )

    # in a child process: the test's MongoDB server runs in this one, and tracemalloc would count it
    child = subprocess.run(
        [sys.executable, "-c", EXPORT_UNDER_TRACEMALLOC, mongo_uri, database_name],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["summary"] == {"exported": 120, "messages": 1200}
    assert report["lines"] == 120 and report["size"] > 12_000_000
    assert report["peak"] < report["size"] / 10, report  # a few sessions' worth, not the whole export


# ----------------------------------------------------------------- crash safety

CHILD = textwrap.dedent(
    """
    import sys
    from mongodb_session_manager import MongoDBSessionRepository, import_sessions
    uri, database, path = sys.argv[1:]
    with MongoDBSessionRepository(uri, database_name=database, collection_name="sessions",
                                  message_storage="collection") as repository:
        import_sessions(repository, path)
    """
)


@pytest.mark.slow
def test_an_import_killed_between_messages_and_session_converges_when_run_again(
    client, mongo_uri, database_name, target, sources, tmp_path
):
    path = tmp_path / "export.jsonl"
    export_sessions(make_repo(client, database_name), path, session_ids=["s-promoted", "s-embedded"])
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["_MSM_TEST_IMPORT_EXIT_AT"] = "messages"

    child = subprocess.run(
        [sys.executable, "-c", CHILD, mongo_uri, target, str(path)], env=env, capture_output=True, text=True
    )

    assert child.returncode == 17, child.stderr
    assert client[target][COLLECTION].count_documents({}) == 0  # the commit point was never reached
    assert client[target][f"{COLLECTION}.messages"].count_documents({}) == 8  # s-promoted's messages, orphaned
    again = import_sessions(make_repo(client, target, message_storage="collection"), path)
    assert (again["imported"], again["failed"]) == (2, 0)
    assert client[target][f"{COLLECTION}.messages"].count_documents({}) == 8 + 4
    assert_same_sessions(client, database_name, target, ["s-promoted", "s-embedded"])
    twice = import_sessions(make_repo(client, target, message_storage="collection"), path)
    assert (twice["skipped"], twice["imported"]) == (2, 0)


# ----------------------------------------------------------------- filters, retention, pruned agents


def test_export_with_list_filters_writes_the_listed_sessions(client, database_name, sources):
    repository = make_repo(client, database_name)
    calls = []

    text = export_text(repository, prefix="s-p", on_progress=lambda *a: calls.append(a))

    assert [json.loads(line)["session"]["_id"] for line in text.splitlines()] == ["s-promoted"]
    assert calls == [(1, None)]
    with pytest.raises(ValueError, match="not_indexed"):
        export_sessions(repository, io.StringIO(), metadata={"not_indexed": 1})
    with pytest.raises(TypeError, match="limit"):
        export_sessions(repository, io.StringIO(), limit=5)


def test_imported_sessions_get_the_importing_repositorys_expiry_and_keep_their_hold(
    client, database_name, target, sources
):
    source = make_repo(client, database_name)
    client[database_name][COLLECTION].update_one({"_id": "s-embedded"}, {"$set": {"expires_at": WHEN}})
    source.hold_session("s-promoted")
    text = export_text(source, session_ids=["s-embedded", "s-promoted"])

    import_sessions(make_repo(client, target), io.StringIO(text))
    without_ttl = {doc["_id"]: doc for doc in client[target][COLLECTION].find()}
    before = datetime.now(UTC).replace(tzinfo=None)
    import_sessions(make_repo(client, target, ttl_hours=2), io.StringIO(text), on_conflict="replace")
    after = datetime.now(UTC).replace(tzinfo=None)
    with_ttl = {doc["_id"]: doc for doc in client[target][COLLECTION].find()}

    assert "expires_at" not in without_ttl["s-embedded"]  # an expiry that passed does not delete the import
    assert without_ttl["s-promoted"]["legal_hold"] is True
    lower, upper = before + timedelta(hours=2), after + timedelta(hours=2)
    assert lower - timedelta(seconds=1) <= with_ttl["s-embedded"]["expires_at"] <= upper + timedelta(seconds=1)
    assert "expires_at" not in with_ttl["s-promoted"]
    assert with_ttl["s-promoted"]["legal_hold"] is True


@pytest.mark.parametrize("storage", ["embedded", "collection"])
def test_a_pruned_agent_resumes_equal_after_a_round_trip(client, database_name, target, storage):
    agent = make_agent(client, database_name, "s-pruned", "a", ["r0", "r1", "r2", "r3"], message_storage=storage)
    agent.conversation_manager = SlidingWindowConversationManager(window_size=4)
    for turn in range(4):
        agent(f"q{turn}")
    make_repo(client, database_name).prune_messages("s-pruned", "a", keep_last=4)
    text = export_text(make_repo(client, database_name))
    original = make_agent(client, database_name, "s-pruned", "a", ["x"], message_storage=storage)

    import_sessions(make_repo(client, target, message_storage=storage), io.StringIO(text))

    resumed = make_agent(client, target, "s-pruned", "a", ["x"], message_storage=storage)
    assert resumed.messages == original.messages
    assert resumed.conversation_manager.removed_message_count == 4, "the restore pages from message id 4"
    copy, source = make_repo(client, target), make_repo(client, database_name)
    assert copy.list_messages("s-pruned", "a", offset=6) == source.list_messages("s-pruned", "a", offset=6)
    assert [m.message_id for m in copy.list_messages("s-pruned", "a")] == [4, 5, 6, 7]
