"""The session search at scale: a session-id prefix walks the ``_id`` index, counts stop at a cap.

The slow tests search 100,000 sessions through the real app, record the commands it sends (command monitoring)
and ``explain`` each of them: no collection scan, the ``_id_`` index for a prefix, and index work bounded by the
page (offset + limit) and by the count's cap, never by the collection.

Where the server's ``explain`` counts what a ``$limit`` saves (MongoDB), the bounds are offset + limit + 1 keys for
a page and the cap + 1 for a count. The embedded development server's ``explain`` counts every key inside the
index bounds whatever the ``$limit``; against it the bound is the prefix's own ``_id`` range (and the commands are
checked to cut the work: the page sorted in index order, the count's ``$limit`` before its ``$group``).
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from strands.types.session import Session, SessionType

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.documents import session_document
from plan_support import Commands, stages
from session_viewer.backend import Settings, create_app
from session_viewer.backend.queries import COUNT_CAP, session_id_prefix_range
from session_viewer.backend.routes import sessions as sessions_route

COLLECTION = "sessions"
BACKEND_PASSWORD = "scale-test-password-0123456789"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
LOCAL = "http://localhost"
MANY = 100_000
PREFIX = "s-00"  # s-000000 .. s-009999: 10,000 sessions
PREFIX_SIZE = 10_000


def explain(client: MongoClient, database: str, command: dict[str, Any]) -> dict[str, Any]:
    """``explain`` (executionStats) of an aggregate command as the app sent it."""
    aggregate = {key: command[key] for key in ("aggregate", "pipeline", "cursor", "hint") if key in command}
    return client[database].command("explain", aggregate, verbosity="executionStats")


def work(reply: dict[str, Any]) -> tuple[int, int]:
    """Keys and documents examined, from an explain reply (top level, or the ``$cursor`` stage)."""
    stats = reply.get("executionStats")
    if stats is None:
        stats = next(stage["$cursor"]["executionStats"] for stage in reply["stages"] if "$cursor" in stage)
    return stats["totalKeysExamined"], stats["totalDocsExamined"]


def make_app(mongo_uri: str, database: str, commands: Commands | None = None) -> TestClient:
    settings = Settings(
        _env_file=None,
        mongodb_uri=mongo_uri,
        database_name=database,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
    )
    options = {"event_listeners": [commands]} if commands else None
    return TestClient(create_app(settings, client_options=options), base_url=LOCAL)


def search(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get("/api/v1/sessions/search", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: dict[str, Any]) -> list[str]:
    return [session["session_id"] for session in page["sessions"]]


# ----------------------------------------------------------------------------- the id range (no I/O)


def test_the_prefix_range_holds_exactly_the_ids_the_prefix_starts() -> None:
    assert session_id_prefix_range("s-0") == {"$gte": "s-0", "$lt": "s-1"}
    assert session_id_prefix_range("a\U0010ffff") == {"$gte": "a\U0010ffff", "$lt": "b"}
    assert session_id_prefix_range("\ud7ff") == {"$gte": "\ud7ff", "$lt": "\ue000"}  # past the surrogates
    assert session_id_prefix_range("\U0010ffff") == {"$gte": "\U0010ffff"}
    ids_ = ["a", "ab", "a.*", "a\U0010ffff", "b", "A", "a\x00"]
    chosen = session_id_prefix_range("a")
    assert [i for i in sorted(ids_, key=lambda s: s.encode()) if chosen["$gte"] <= i < chosen["$lt"]] == [
        "a",
        "a\x00",
        "a.*",
        "ab",
        "a\U0010ffff",
    ]


# ----------------------------------------------------------------------------- the capped count (a few sessions)


@pytest.fixture
def few(mongo_uri: str, database_name: str) -> Iterator[TestClient]:
    """Five sessions c-0 .. c-4 and the app over them."""
    with MongoClient(mongo_uri) as client:
        MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
        client[database_name][COLLECTION].insert_many(
            [session_document(Session(session_id=f"c-{n}", session_type=SessionType.AGENT)) for n in range(5)]
        )
    with make_app(mongo_uri, database_name) as api:
        yield api


def test_a_count_past_the_cap_is_reported_capped(few: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_route, "COUNT_CAP", 3)
    capped = search(few, session_id="c-", limit=2)
    assert (capped["total"], capped["total_capped"]) == (3, True)
    assert ids(capped) == ["c-0", "c-1"]
    assert ids(search(few, session_id="c-", limit=2, offset=4)) == ["c-4"]  # paging goes past the cap
    monkeypatch.setattr(sessions_route, "COUNT_CAP", 5)
    exact = search(few, session_id="c-")
    assert (exact["total"], exact["total_capped"]) == (5, False)
    everything = search(few)  # no criterion: the collection's own count, never capped
    assert (everything["total"], everything["total_capped"]) == (5, False)


# ----------------------------------------------------------------------------- 100,000 sessions


@pytest.fixture(scope="module")
def scale(mongo_uri: str) -> Iterator[tuple[MongoClient, str, bool]]:
    """100,000 sessions s-000000 .. s-099999 (created one second apart, tier gold for odd numbers).

    Yields a client, the database and whether the server's explain counts what a ``$limit`` saves.
    """
    database = f"test_scale_{uuid.uuid4().hex[:12]}"
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with MongoClient(mongo_uri, tz_aware=True) as client:
        collection = client[database][COLLECTION]
        for start in range(0, MANY, 10_000):
            batch = []
            for number in range(start, start + 10_000):
                document = session_document(Session(session_id=f"s-{number:06d}", session_type=SessionType.AGENT))
                document["created_at"] = document["updated_at"] = base + timedelta(seconds=number)
                document["metadata"] = {"tier": "gold" if number % 2 else "silver"}
                batch.append(document)
            collection.insert_many(batch)
        # the library's indexes (created_at, application, the tier field), built once the documents are in
        MongoDBSessionRepository(client=client, database_name=database, collection_name=COLLECTION).close()
        collection.create_index("metadata.tier")
        probe = explain(client, database, {"aggregate": COLLECTION, "pipeline": [{"$limit": 1}], "hint": "_id_"})
        limit_aware = work(probe)[0] <= 2
        try:
            yield client, database, limit_aware
        finally:
            client.drop_database(database)


@pytest.mark.slow  # inserts 100,000 sessions (the module's fixture) and explains on them
def test_a_prefix_page_and_its_count_read_only_their_index_entries(
    scale: tuple[MongoClient, str, bool], mongo_uri: str
) -> None:
    client, database, limit_aware = scale
    commands = Commands(ignore=frozenset({"listIndexes"}))
    with make_app(mongo_uri, database, commands) as api:
        page = search(api, session_id=PREFIX, limit=20, offset=40)

    assert ids(page) == [f"s-{n:06d}" for n in range(40, 60)]  # session-id order: the index's own
    assert (page["total"], page["total_capped"]) == (COUNT_CAP, True)
    assert [next(iter(command)) for command in commands.sent] == ["aggregate", "aggregate"]  # page + count
    page_command, count_command = sorted(commands.sent, key=lambda command: "$group" in str(command["pipeline"]))
    assert page_command["pipeline"][:4] == [
        {"$match": {"_id": {"$gte": PREFIX, "$lt": "s-01"}}},
        {"$sort": {"_id": 1}},
        {"$skip": 40},
        {"$limit": 20},
    ]
    assert count_command["pipeline"][1] == {"$limit": COUNT_CAP + 1}
    # bounds with one key to spare: a scan may read the key past its last result
    for command, bound in ((page_command, 40 + 20 + 2), (count_command, COUNT_CAP + 2)):
        assert command["hint"] == "_id_"
        reply = explain(client, database, command)
        plan = stages(reply)
        assert not any(stage["stage"] == "COLLSCAN" for stage in plan), reply
        assert any(stage["stage"] == "IXSCAN" and stage.get("indexName") == "_id_" for stage in plan), reply
        assert not any(stage["stage"] == "SORT" for stage in plan), reply  # the index order is the page's
        keys, documents = work(reply)
        assert keys <= (bound if limit_aware else PREFIX_SIZE), reply
        assert documents <= (bound if limit_aware else PREFIX_SIZE), reply


@pytest.mark.slow  # the 100,000 sessions of the module's fixture
def test_a_filtered_count_stops_at_the_cap_on_the_fields_index(
    scale: tuple[MongoClient, str, bool], mongo_uri: str
) -> None:
    client, database, limit_aware = scale
    commands = Commands(ignore=frozenset({"listIndexes"}))
    with make_app(mongo_uri, database, commands) as api:
        page = search(api, filters='{"tier": "gold"}', limit=5)

    assert ids(page) == [f"s-{n:06d}" for n in (99999, 99997, 99995, 99993, 99991)]  # newest first
    assert (page["total"], page["total_capped"]) == (COUNT_CAP, True)  # 50,000 match
    (count_command,) = [command for command in commands.sent if "$group" in str(command.get("pipeline"))]
    assert count_command["pipeline"][:2] == [{"$match": {"metadata.tier": {"$eq": "gold"}}}, {"$limit": COUNT_CAP + 1}]
    reply = explain(client, database, count_command)
    plan = stages(reply)
    assert not any(stage["stage"] == "COLLSCAN" for stage in plan), reply
    assert any(stage["stage"] == "IXSCAN" and stage.get("indexName") == "metadata.tier_1" for stage in plan), reply
    if limit_aware:
        assert max(work(reply)) <= COUNT_CAP + 2, reply


@pytest.mark.slow  # the 100,000 sessions of the module's fixture
def test_without_criteria_the_total_is_the_collections_own_count(
    scale: tuple[MongoClient, str, bool], mongo_uri: str
) -> None:
    _, database, _ = scale
    commands = Commands(ignore=frozenset({"listIndexes"}))
    with make_app(mongo_uri, database, commands) as api:
        page = search(api, limit=3)
    assert ids(page) == ["s-099999", "s-099998", "s-099997"]
    assert (page["total"], page["total_capped"]) == (MANY, False)
    count = next(command for command in commands.sent if next(iter(command)) == "count")
    assert "query" not in count or not count["query"]  # from the collection's metadata, no scan


@pytest.mark.slow  # the 100,000 sessions of the module's fixture
def test_contains_mode_matches_anywhere_case_insensitively_with_a_capped_count(
    scale: tuple[MongoClient, str, bool], mongo_uri: str
) -> None:
    _, database, _ = scale
    with make_app(mongo_uri, database) as api:
        anywhere = search(api, session_id="-0999", session_id_mode="contains", limit=2)  # reads every id
        assert ids(anywhere) == ["s-099999", "s-099998"]  # newest first
        assert (anywhere["total"], anywhere["total_capped"]) == (100, False)
        assert search(api, session_id="S-00", limit=1)["total"] == 0  # a prefix is case-sensitive
