"""The usage dashboard (`analytics.dashboard_metrics`): exact numbers over both layouts, filters, ranges, plans."""

import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.analytics import MAX_RANGE_DAYS, DashboardQueryError, dashboard_metrics
from mongodb_session_manager.documents import escape_key, session_document
from plan_support import Commands, stages

COLLECTION = "sessions"
MESSAGES = f"{COLLECTION}.messages"
APPLICATION_INDEX = "application_name_1_created_at_1"
D1, D2, D3, D4, D5 = (date(2025, 3, day) for day in range(1, 6))


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def iso(day: date, hour: int) -> str:
    """A message timestamp as strands writes it."""
    return at(day, hour).isoformat(timespec="microseconds")


def elm(latency, input_tokens, output_tokens, ttfb=None, tools=None, cache_read=None, cache_write=None) -> dict:
    """An ``event_loop_metrics`` value; None leaves a key out, as data written before it existed."""
    timing = {"latencyMs": latency}
    if ttfb is not None:
        timing["timeToFirstByteMs"] = ttfb
    usage = {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}
    if cache_read is not None:
        usage["cacheReadInputTokens"] = cache_read
    if cache_write is not None:
        usage["cacheWriteInputTokens"] = cache_write
    metrics: dict[str, Any] = {"accumulated_metrics": timing, "accumulated_usage": usage}
    if tools is not None:
        metrics["tool_usage"] = {
            name: {"call_count": calls, "success_count": calls - errors, "error_count": errors}
            for name, (calls, errors) in tools.items()
        }
    return metrics


def write_turn(repo, session_id, agent_id, first_id, day, hour, metrics) -> None:
    """A user message and the assistant message closing the invocation (with its metrics), an hour apart."""
    user = {"role": "user", "content": [{"text": "question"}]}
    answer = {"role": "assistant", "content": [{"text": "answer"}]}
    repo.create_message(
        session_id, agent_id, SessionMessage(message=user, message_id=first_id, created_at=iso(day, hour))
    )
    repo.create_message(
        session_id,
        agent_id,
        SessionMessage(message=answer, message_id=first_id + 1, created_at=iso(day, hour + 1)),
        extra_fields={"event_loop_metrics": metrics} if metrics is not None else None,
    )


def new_session(repo, client, database_name, session_id, created, **fields) -> None:
    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    client[database_name][COLLECTION].update_one({"_id": session_id}, {"$set": {"created_at": created, **fields}})


def feedback(repo, client, database_name, session_id, entry, moment) -> None:
    repo.add_feedback(session_id, entry)
    count = len(repo.get_feedbacks(session_id))
    client[database_name][COLLECTION].update_one(
        {"_id": session_id}, {"$set": {f"feedbacks.{count - 1}.created_at": moment}}
    )


@pytest.fixture
def sessions(client: MongoClient, database_name: str):
    """Three sessions over 1-4 March 2025 in both layouts, plus data outside the range (see the module's numbers).

    * ``s1`` (app-a, team red), embedded agent ``sup.port`` on model-x: turns on D1 (latency 100, ttfb 10, tokens
      10/5, cache read 3, calc 2 calls 1 error) and D2 (300, 30, 20/10, no tools), a turn on 5 March; feedback up
      on D1, null on D2.
    * ``s2`` (app-b, team blue), collection-layout agent ``ops.v2%$`` on model-y: turns on D2 (200, 20, 100/50,
      cache write 7, calc 1/0 and search 3/3) and D4 (400, no ttfb, 40/20); feedback down on D2, up on D4.
    * ``s3``, an old document (no application, no model, no new keys): a turn on D4 (500, tokens 1/1); a
      feedback without a rating on D4.
    * ``s0`` created and written in February; a stray copy of an ``s1`` message in the messages collection (a
      promotion in progress) that must not count twice.
    """
    embedded = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    collected = MongoDBSessionRepository(
        client=client, database_name=database_name, collection_name=COLLECTION, message_storage="collection"
    )
    agent = SessionAgent(agent_id="sup.port", state={}, conversation_manager_state={})

    new_session(embedded, client, database_name, "s1", at(D1, 8), application_name="app-a")
    embedded.update_metadata("s1", {"team": "red"})
    embedded.create_agent("s1", agent, agent_config={"model": "model-x"})
    write_turn(embedded, "s1", "sup.port", 0, D1, 10, elm(100, 10, 5, ttfb=10, tools={"calc": (2, 1)}, cache_read=3))
    write_turn(embedded, "s1", "sup.port", 2, D2, 10, elm(300, 20, 10, ttfb=30, tools={}))
    write_turn(embedded, "s1", "sup.port", 4, D5, 10, elm(900, 9, 9, ttfb=90))
    feedback(embedded, client, database_name, "s1", {"rating": "up"}, at(D1, 12))
    feedback(embedded, client, database_name, "s1", {"rating": None, "comment": "ok"}, at(D2, 12))

    new_session(collected, client, database_name, "s2", at(D2, 8), application_name="app-b")
    collected.update_metadata("s2", {"team": "blue"})
    ops = SessionAgent(agent_id="ops.v2%$", state={}, conversation_manager_state={})
    collected.create_agent("s2", ops, agent_config={"model": "model-y"})
    metrics = elm(200, 100, 50, ttfb=20, tools={"calc": (1, 0), "search": (3, 3)}, cache_write=7)
    write_turn(collected, "s2", "ops.v2%$", 0, D2, 10, metrics)
    write_turn(collected, "s2", "ops.v2%$", 2, D4, 10, elm(400, 40, 20))
    feedback(collected, client, database_name, "s2", {"rating": "down"}, at(D2, 12))
    feedback(collected, client, database_name, "s2", {"rating": "up"}, at(D4, 12))

    new_session(embedded, client, database_name, "s3", at(D4, 8))
    legacy = SessionAgent(agent_id="legacy", state={}, conversation_manager_state={})
    embedded.create_agent("s3", legacy)
    write_turn(
        embedded,
        "s3",
        "legacy",
        0,
        D4,
        10,
        {
            "accumulated_metrics": {"latencyMs": 500},
            "accumulated_usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        },
    )
    feedback(embedded, client, database_name, "s3", {"comment": "no rating"}, at(D4, 12))

    new_session(embedded, client, database_name, "s0", at(date(2025, 2, 27), 8), application_name="app-a")
    embedded.create_agent("s0", legacy, agent_config={"model": "model-x"})
    write_turn(embedded, "s0", "legacy", 0, date(2025, 2, 28), 10, elm(7, 7, 7, ttfb=7))
    feedback(embedded, client, database_name, "s0", {"rating": "up"}, at(date(2025, 2, 28), 12))

    stray = client[database_name][COLLECTION].find_one({"_id": "s1"})["agents"]["sup%2Eport"]["messages"][1]
    client[database_name][MESSAGES].insert_one({"session_id": "s1", "agent_id": "sup.port", **stray})
    return client[database_name][COLLECTION]


def day_row(day, **values) -> dict[str, Any]:
    row = {
        "day": day.isoformat(),
        "sessions": 0,
        "messages": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_p50": None,
        "latency_p95": None,
        "ttfb_p50": None,
        "ttfb_p95": None,
        "feedback_up": 0,
        "feedback_down": 0,
        "feedback_none": 0,
    }
    return {**row, **values}


def totals(**values) -> dict[str, Any]:
    row = {
        "sessions": 0,
        "messages": 0,
        "invocations": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "latency_p50": None,
        "latency_p95": None,
        "ttfb_p50": None,
        "ttfb_p95": None,
        "feedback_up": 0,
        "feedback_down": 0,
        "feedback_none": 0,
        "feedback_ratio": None,
    }
    return {**row, **values}


def test_every_panel_counts_both_layouts_exactly(sessions) -> None:
    result = dashboard_metrics(sessions, D1, D4)
    assert (result["start"], result["end"]) == ("2025-03-01", "2025-03-04")
    assert result["days"] == [
        day_row(D1, sessions=1, messages=2, input_tokens=10, output_tokens=5, latency_p50=100, latency_p95=100,
                ttfb_p50=10, ttfb_p95=10, feedback_up=1),
        day_row(D2, sessions=1, messages=4, input_tokens=120, output_tokens=60, latency_p50=200, latency_p95=300,
                ttfb_p50=20, ttfb_p95=30, feedback_down=1, feedback_none=1),
        day_row(D3),
        day_row(D4, sessions=1, messages=4, input_tokens=41, output_tokens=21, latency_p50=400, latency_p95=500,
                feedback_up=1, feedback_none=1),
    ]  # fmt: skip
    assert result["totals"] == totals(
        sessions=3, messages=10, invocations=5, input_tokens=171, output_tokens=86, cache_read_tokens=3,
        cache_write_tokens=7, latency_p50=300, latency_p95=500, ttfb_p50=20, ttfb_p95=30, feedback_up=2,
        feedback_down=1, feedback_none=2, feedback_ratio=2 / 3,
    )  # fmt: skip
    assert result["tools"] == [
        {"tool": "calc", "calls": 3, "errors": 1, "error_rate": 1 / 3},
        {"tool": "search", "calls": 3, "errors": 3, "error_rate": 1.0},
    ]
    assert result["models"] == [
        {"model": "model-y", "input_tokens": 140, "output_tokens": 70, "invocations": 2},
        {"model": "model-x", "input_tokens": 30, "output_tokens": 15, "invocations": 2},
        {"model": None, "input_tokens": 1, "output_tokens": 1, "invocations": 1},
    ]


def test_days_are_inclusive_utc_days_given_as_dates_or_strings(sessions) -> None:
    assert dashboard_metrics(sessions, "2025-03-01", "2025-03-04") == dashboard_metrics(sessions, D1, D4)
    with_fifth = dashboard_metrics(sessions, D4, D5)
    assert [row["messages"] for row in with_fifth["days"]] == [4, 2]
    assert with_fifth["totals"]["latency_p95"] == 900
    (only,) = dashboard_metrics(sessions, D3, D3)["days"]
    assert only == day_row(D3)


def test_the_application_filter_keeps_its_sessions_only(sessions) -> None:
    result = dashboard_metrics(sessions, D1, D4, application="app-a")
    assert [row["sessions"] for row in result["days"]] == [1, 0, 0, 0]
    assert result["totals"] == totals(
        sessions=1, messages=4, invocations=2, input_tokens=30, output_tokens=15, cache_read_tokens=3,
        latency_p50=100, latency_p95=300, ttfb_p50=10, ttfb_p95=30, feedback_up=1, feedback_none=1, feedback_ratio=1.0,
    )  # fmt: skip
    assert result["tools"] == [{"tool": "calc", "calls": 2, "errors": 1, "error_rate": 0.5}]
    assert [model["model"] for model in result["models"]] == ["model-x"]
    assert dashboard_metrics(sessions, D1, D4, application="app-c")["totals"] == totals()


def test_the_metadata_filter_is_an_equality_on_the_stored_value(sessions) -> None:
    result = dashboard_metrics(sessions, D1, D4, metadata={"team": "blue"})
    assert [row["sessions"] for row in result["days"]] == [0, 1, 0, 0]
    assert [row["messages"] for row in result["days"]] == [0, 2, 0, 2]
    assert result["totals"]["feedback_ratio"] == 0.5
    assert [model["model"] for model in result["models"]] == ["model-y"]
    assert dashboard_metrics(sessions, D1, D4, metadata={"team": "red", "missing": 1})["totals"] == totals()


def test_the_agent_filter_keeps_that_agent_and_the_sessions_having_it(sessions) -> None:
    collected = dashboard_metrics(sessions, D1, D4, agent_id="ops.v2%$")
    assert [row["sessions"] for row in collected["days"]] == [0, 1, 0, 0]
    assert collected["totals"]["messages"] == 4
    assert (collected["totals"]["feedback_up"], collected["totals"]["feedback_down"]) == (1, 1)
    assert [(tool["tool"], tool["calls"]) for tool in collected["tools"]] == [("search", 3), ("calc", 1)]
    embedded = dashboard_metrics(sessions, D1, D4, agent_id="sup.port")
    assert embedded["totals"]["messages"] == 4
    assert embedded["models"] == [{"model": "model-x", "input_tokens": 30, "output_tokens": 15, "invocations": 2}]
    assert dashboard_metrics(sessions, D1, D4, agent_id="sup")["totals"] == totals()


def test_the_model_filter_keeps_agents_with_that_recorded_model(sessions) -> None:
    result = dashboard_metrics(sessions, D1, D4, model="model-y")
    assert result["totals"]["sessions"] == 1
    assert result["totals"]["messages"] == 4
    assert result["models"] == [{"model": "model-y", "input_tokens": 140, "output_tokens": 70, "invocations": 2}]
    both = dashboard_metrics(sessions, D1, D4, agent_id="sup.port", model="model-x")
    assert both["totals"]["invocations"] == 2
    assert dashboard_metrics(sessions, D1, D4, agent_id="sup.port", model="model-y")["totals"] == totals()


def test_an_empty_range_is_zero_filled(sessions) -> None:
    result = dashboard_metrics(sessions, date(2024, 1, 1), date(2024, 1, 2))
    assert result == {
        "start": "2024-01-01",
        "end": "2024-01-02",
        "days": [day_row(date(2024, 1, 1)), day_row(date(2024, 1, 2))],
        "totals": totals(),
        "tools": [],
        "models": [],
    }


def test_an_empty_database_answers_zeros(client, database_name) -> None:
    result = dashboard_metrics(client[database_name][COLLECTION], D1, D1)
    assert result["days"] == [day_row(D1)]
    assert result["totals"] == totals()


def nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


@pytest.mark.parametrize("count", [1, 2, 3, 19, 20, 21, 100, 101])
def test_percentiles_are_nearest_rank_of_the_invocations(client, database_name, count) -> None:
    rng = random.Random(count)
    latencies = [rng.choice([5, 12, 12, 40, 41, 300, 2500]) + rng.randrange(3) for _ in range(count)]
    ttfbs = [rng.randrange(1000) / 4 for _ in range(count)]  # floats too
    session = session_document(Session(session_id="p", session_type=SessionType.AGENT))
    session["created_at"] = at(D1, 1)
    session["agents"] = {"a": {"agent_data": {"agent_id": "a", "model": "m"}, "message_storage": "collection"}}
    client[database_name][COLLECTION].insert_one(session)
    client[database_name][MESSAGES].insert_many(
        {"session_id": "p", "agent_id": "a", "message_id": index, "created_at": iso(D1, 2),
         "event_loop_metrics": {"accumulated_metrics": {"latencyMs": latency, "timeToFirstByteMs": ttfb}}}
        for index, (latency, ttfb) in enumerate(zip(latencies, ttfbs, strict=True))
    )  # fmt: skip
    result = dashboard_metrics(client[database_name][COLLECTION], D1, D1)
    expected = {
        "latency_p50": nearest_rank(latencies, 50),
        "latency_p95": nearest_rank(latencies, 95),
        "ttfb_p50": nearest_rank(ttfbs, 50),
        "ttfb_p95": nearest_rank(ttfbs, 95),
    }
    assert {key: result["totals"][key] for key in expected} == expected
    assert {key: result["days"][0][key] for key in expected} == expected


def test_figures_of_other_types_are_skipped_not_counted_as_zero(client, database_name) -> None:
    session = session_document(Session(session_id="w", session_type=SessionType.AGENT))
    session["created_at"] = at(D1, 1)
    weird = [
        {"accumulated_metrics": {"latencyMs": None}, "accumulated_usage": {"inputTokens": "many"}},
        {"accumulated_metrics": "broken", "tool_usage": ["not", "a", "map"]},
        "not a document",
        {"accumulated_metrics": {"latencyMs": 40}, "accumulated_usage": {"inputTokens": 4}},
    ]
    session["agents"] = {
        "a": {
            "agent_data": {"agent_id": "a"},
            "messages": [
                {"message_id": i, "created_at": iso(D1, 2), "event_loop_metrics": metrics}
                for i, metrics in enumerate(weird)
            ],
        }
    }
    client[database_name][COLLECTION].insert_one(session)
    result = dashboard_metrics(client[database_name][COLLECTION], D1, D1)
    assert result["totals"] == totals(
        sessions=1, messages=4, invocations=3, input_tokens=4, latency_p50=40, latency_p95=40
    )
    assert result["tools"] == []


# ----------------------------------------------------------------------------- refused requests


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (D2, D1),
        (date(2023, 1, 1), date(2024, 1, 2)),  # 367 days
        ("2025-3-1", D1),
        ("2025-02-30", "2025-03-01"),
        ("20250301", "2025-03-01"),
        (datetime(2025, 3, 1, tzinfo=UTC), D1),
        (None, D1),
        (D1, 20250301),
        ("", D1),
    ],
)
def test_bad_ranges_are_refused_before_anything_is_sent(client, database_name, command_log, start, end) -> None:
    command_log.clear()
    with pytest.raises(DashboardQueryError):
        dashboard_metrics(client[database_name][COLLECTION], start, end)
    assert command_log.commands == []


@pytest.mark.parametrize(
    "filters",
    [
        {"application": ""},
        {"application": 5},
        {"agent_id": ""},
        {"agent_id": ["a"]},
        {"model": {"$ne": None}},
        {"metadata": {"$where": "1"}},
        {"metadata": {"a..b": 1}},
        {"metadata": "team=red"},
    ],
)
def test_bad_filters_are_refused_before_anything_is_sent(client, database_name, command_log, filters) -> None:
    command_log.clear()
    with pytest.raises(DashboardQueryError):
        dashboard_metrics(client[database_name][COLLECTION], D1, D1, **filters)
    assert command_log.commands == []


def test_the_longest_range_and_the_extreme_days_are_answered(client, database_name) -> None:
    collection = client[database_name][COLLECTION]
    assert MAX_RANGE_DAYS == 366
    assert len(dashboard_metrics(collection, date(2023, 1, 1), date(2024, 1, 1))["days"]) == 366
    assert dashboard_metrics(collection, "9999-12-31", "9999-12-31")["days"] == [day_row(date(9999, 12, 31))]
    assert dashboard_metrics(collection, "0001-01-01", "0001-01-01")["days"] == [day_row(date(1, 1, 1))]


def test_a_metadata_operator_is_a_literal_value_not_a_query(sessions) -> None:
    assert dashboard_metrics(sessions, D1, D4, metadata={"team": {"$ne": None}})["totals"] == totals()


# ----------------------------------------------------------------------------- cost and plans


def test_the_collection_layout_indexes_message_dates(client, database_name) -> None:
    MongoDBSessionRepository(
        client=client, database_name=database_name, collection_name=COLLECTION, message_storage="collection"
    )
    indexes = {index["name"]: index["key"] for index in client[database_name][MESSAGES].list_indexes()}
    assert dict(indexes["created_at"]) == {"created_at": 1}


@pytest.mark.parametrize(
    "filters", [{}, {"application": "app-a", "metadata": {"team": "red"}, "agent_id": "sup.port", "model": "model-x"}]
)
def test_a_request_costs_two_aggregates(sessions, command_log, filters) -> None:
    command_log.clear()
    dashboard_metrics(sessions, D1, date(2025, 12, 31), **filters)
    assert command_log.commands == ["aggregate", "aggregate"]


def many_sessions(count: int) -> tuple[list[dict], list[dict]]:
    """``count`` session documents over a year (half embedded, half in the collection layout) and their messages."""
    documents, messages = [], []
    start = at(date(2024, 1, 1), 0)
    for n in range(count):
        created = start + timedelta(hours=n)
        document = session_document(Session(session_id=f"s-{n:05d}", session_type=SessionType.AGENT))
        document.update(created_at=created, updated_at=created + timedelta(hours=1), application_name=f"app-{n % 3}")
        document["metadata"] = {"team": f"team-{n % 5}"}
        element = {
            "message_id": 0,
            "message": {"role": "assistant", "content": [{"text": "hi"}]},
            "created_at": (created + timedelta(minutes=30)).isoformat(timespec="microseconds"),
            "event_loop_metrics": elm(n % 700, 10, 5, ttfb=n % 90, tools={"calc": (1, n % 2)}),
        }
        agent: dict[str, Any] = {"agent_data": {"agent_id": "agent.x", "model": f"model-{n % 4}"}}
        if n % 2:
            agent["message_storage"] = "collection"
            messages.append({"session_id": document["_id"], "agent_id": "agent.x", **element})
        else:
            agent["messages"] = [element]
        document["agents"] = {escape_key("agent.x"): agent}
        documents.append(document)
    return documents, messages


@pytest.fixture(scope="module")
def many_database(mongo_uri):
    """A database shared by this module's tests over many sessions (they only read), dropped at the end."""
    name = f"test_many_{uuid.uuid4().hex[:12]}"
    yield name
    with MongoClient(mongo_uri) as mongo_client:
        mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def many_commands() -> Commands:
    return Commands()


@pytest.fixture(scope="module")
def many_client(mongo_uri, many_database, many_commands):
    """10,000 sessions over 14 months, indexed as the library indexes them (written once for the module)."""
    database_name = many_database
    with MongoClient(mongo_uri, event_listeners=[many_commands], tz_aware=True) as mongo_client:
        MongoDBSessionRepository(
            client=mongo_client,
            database_name=database_name,
            collection_name=COLLECTION,
            message_storage="collection",
            metadata_fields=["team"],
        )
        collection = mongo_client[database_name][COLLECTION]
        if APPLICATION_INDEX not in collection.index_information():  # the repository creates it (issue 15)
            keys = [("application_name", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
            collection.create_index(keys, name=APPLICATION_INDEX)
        documents, messages = many_sessions(10_000)
        collection.insert_many(documents)
        mongo_client[database_name][MESSAGES].insert_many(messages)
        yield mongo_client, collection


@pytest.fixture
def many(many_client, many_commands):
    """The many sessions' client, collection and the commands this test sends (none yet)."""
    many_commands.sent.clear()
    return (*many_client, many_commands)


def explained_indexes(database, command: dict) -> set[str]:
    """The indexes the server's plan of an aggregate scans (asserting it never scans a whole collection)."""
    aggregate = {key: command[key] for key in ("aggregate", "pipeline", "cursor", "hint") if key in command}
    plan = stages(database.command("explain", aggregate))
    assert not any(stage["stage"] == "COLLSCAN" for stage in plan), plan
    return {stage["indexName"] for stage in plan if stage["stage"] == "IXSCAN" and "indexName" in stage}


def union_pipelines(pipeline: list[dict]) -> list[dict]:
    return [stage["$unionWith"] for stage in pipeline if "$unionWith" in stage]


@pytest.mark.parametrize(
    ("filters", "sessions_index"),
    [
        ({}, "created_at_1__id_1"),
        ({"application": "app-1"}, APPLICATION_INDEX),
        ({"metadata": {"team": "team-2"}}, "created_at_1__id_1"),
        ({"agent_id": "agent.x", "model": "model-3"}, "created_at_1__id_1"),
        ({"model": "model-3", "metadata": {"team": "team-3"}, "application": "app-0"}, APPLICATION_INDEX),
    ],
)
def test_every_aggregate_starts_from_an_index_on_the_date_range(many, many_database, filters, sessions_index) -> None:
    mongo_client, collection, commands = many
    result = dashboard_metrics(collection, date(2024, 6, 1), date(2024, 6, 30), **filters)
    assert [next(iter(command)) for command in commands.sent] == ["aggregate", "aggregate"]
    database = mongo_client[many_database]
    per_day, panels = commands.sent
    assert explained_indexes(database, per_day) == {sessions_index}
    assert "updated_at_1" in explained_indexes(database, panels)
    (union,) = union_pipelines(panels["pipeline"])  # the messages collection's part, planned on its own
    assert union["coll"] == MESSAGES
    union_aggregate = {"aggregate": union["coll"], "pipeline": union["pipeline"], "cursor": {}}
    assert "created_at" in explained_indexes(database, union_aggregate)
    assert len(result["days"]) == 30
    assert result["totals"]["sessions"] > 0


def test_many_sessions_give_the_numbers_python_computes(many) -> None:
    _, collection, _ = many
    result = dashboard_metrics(collection, date(2024, 6, 1), date(2024, 6, 30), application="app-1")
    documents, _ = many_sessions(10_000)
    first, after = at(date(2024, 6, 1), 0), at(date(2024, 7, 1), 0)
    chosen = [d for d in documents if first <= d["created_at"] < after and d["application_name"] == "app-1"]
    latencies = [int(d["_id"][2:]) % 700 for d in chosen]  # every message is half an hour after its session
    assert (
        result["totals"]["sessions"] == result["totals"]["messages"] == result["totals"]["invocations"] == len(chosen)
    )
    assert result["totals"]["latency_p50"] == nearest_rank(latencies, 50)
    assert result["totals"]["latency_p95"] == nearest_rank(latencies, 95)
    errors = sum(int(d["_id"][2:]) % 2 for d in chosen)
    assert result["tools"] == [
        {"tool": "calc", "calls": len(chosen), "errors": errors, "error_rate": errors / len(chosen)}
    ]
    assert len(result["models"]) == 4


def test_a_whole_year_of_days_comes_back_in_the_first_reply(many) -> None:
    _, collection, commands = many
    result = dashboard_metrics(collection, date(2024, 1, 1), date(2024, 12, 31))
    assert [next(iter(command)) for command in commands.sent] == ["aggregate", "aggregate"]
    assert len(result["days"]) == 366
    assert all(row["sessions"] == 24 for row in result["days"])


# ----------------------------------------------------------------------------- encrypted sessions


def test_with_encryption_a_deterministic_metadata_filter_matches_encrypted_and_clear_sessions(
    client: MongoClient, database_name: str
) -> None:
    from mongodb_session_manager import EncryptionSettings
    from mongodb_session_manager.encryption import generate_local_key

    encryption = EncryptionSettings.local(
        generate_local_key(),
        key_vault_namespace=f"{database_name}.keyvault",
        deterministic_metadata_fields=["customer", "region"],
        random_metadata_fields=["address"],
    )
    sealed = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION,
                                      encryption=encryption)  # fmt: skip
    clear = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    for repo, session_id, customer in ((sealed, "e1", "alice"), (sealed, "e2", "bob"), (clear, "c1", "alice")):
        repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        repo.update_metadata(session_id, {"customer": customer, "address": "12 Hidden Lane"})
    clear.update_metadata("c1", {"region": "north"})
    sessions = client[database_name][COLLECTION]
    today = datetime.now(UTC).date()
    days = (today - timedelta(days=1), today + timedelta(days=1))

    def counted(**options: Any) -> int:
        return dashboard_metrics(sessions, *days, **options)["totals"]["sessions"]

    assert counted(metadata={"customer": "alice"}, encryption=encryption) == 2  # e1 (ciphertext) and c1 (clear)
    assert counted(metadata={"customer": "bob"}, encryption=encryption) == 1
    assert counted(metadata={"customer": "alice"}) == 1  # without the settings: the clear value only
    assert counted(metadata={"region": "north"}, encryption=encryption) == 1  # no encrypted value yet: no key
    with pytest.raises(DashboardQueryError, match="encrypted randomly"):
        dashboard_metrics(sessions, *days, metadata={"address": "12 Hidden Lane"}, encryption=encryption)
    with pytest.raises(DashboardQueryError, match="deterministically encrypted"):
        dashboard_metrics(sessions, *days, metadata={"customer": 1.5}, encryption=encryption)
