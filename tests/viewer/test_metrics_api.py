"""``GET /api/v1/metrics``: the usage dashboard over sessions written by the library, its defaults and its 400s.

Sessions, agents, messages (with each invocation's ``event_loop_metrics``) and feedback are written through
``MongoDBSessionRepository`` in both message layouts, then placed on the days the tests chose; one session is a
real strands agent's, written today.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel
from session_viewer.backend import Settings, create_app

COLLECTION = "sessions"
BACKEND_PASSWORD = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
METRICS = "/api/v1/metrics"
D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def turn(repo, session_id, agent_id, first_id, day, latency, ttfb, tokens, tools) -> None:
    """A user message and the assistant message closing the invocation, with its figures."""
    stamp = at(day, 10).isoformat()
    question = {"role": "user", "content": [{"text": "question"}]}
    repo.create_message(session_id, agent_id, SessionMessage(question, first_id, created_at=stamp))
    metrics: dict[str, Any] = {
        "accumulated_metrics": {"latencyMs": latency, **({"timeToFirstByteMs": ttfb} if ttfb is not None else {})},
        "accumulated_usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
        "tool_usage": {name: {"call_count": calls, "error_count": errors} for name, (calls, errors) in tools.items()},
    }
    answer = {"role": "assistant", "content": [{"text": "answer"}]}
    repo.create_message(
        session_id,
        agent_id,
        SessionMessage(answer, first_id + 1, created_at=stamp),
        extra_fields={"event_loop_metrics": metrics},
    )


@pytest.fixture
def seeded(mongo_uri: str, database_name: str) -> Iterator[None]:
    """``shop-1`` (application shop, team red, embedded agent ``support`` on model-a): D1 latency 100 ttfb 10
    tokens 10/5 with calc 2 calls 1 error, feedback up on D1. ``bank-1`` (application bank, team blue,
    collection-layout agent ``pl.anner`` on model-b): D2 latency 300 no ttfb tokens 30/15 with search 1/0,
    feedback down and one without a rating on D2. Both created on their first day."""
    with MongoClient(mongo_uri, tz_aware=True) as client:
        sessions = client[database_name][COLLECTION]
        for session_id, application, team, agent_id, model, layout, day in (
            ("shop-1", "shop", "red", "support", "model-a", "embedded", D1),
            ("bank-1", "bank", "blue", "pl.anner", "model-b", "collection", D2),
        ):
            repo = MongoDBSessionRepository(
                client=client,
                database_name=database_name,
                collection_name=COLLECTION,
                metadata_fields=["team"],
                message_storage=layout,
            )
            repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
            sessions.update_one(
                {"_id": session_id}, {"$set": {"created_at": at(day, 8), "application_name": application}}
            )
            repo.update_metadata(session_id, {"team": team, "customer": "alice"})
            agent = SessionAgent(agent_id=agent_id, state={}, conversation_manager_state={})
            repo.create_agent(session_id, agent, agent_config={"model": model})
        shop = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
        turn(shop, "shop-1", "support", 0, D1, 100, 10, (10, 5), {"calc": (2, 1)})
        turn(shop, "bank-1", "pl.anner", 0, D2, 300, None, (30, 15), {"search": (1, 0)})
        for session_id, rating, day in (("shop-1", "up", D1), ("bank-1", "down", D2), ("bank-1", None, D2)):
            shop.add_feedback(session_id, {"rating": rating})
            count = len(shop.get_feedbacks(session_id))
            sessions.update_one({"_id": session_id}, {"$set": {f"feedbacks.{count - 1}.created_at": at(day, 12)}})
        yield


@pytest.fixture
def api(mongo_uri: str, database_name: str, seeded: None) -> Iterator[TestClient]:
    with app_for(mongo_uri, database_name) as client:
        yield client


@contextmanager
def app_for(mongo_uri: str, database_name: str, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        mongodb_uri=mongo_uri,
        database_name=database_name,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
        **overrides,
    )
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


def metrics(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get(METRICS, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def empty_day(day: date) -> dict[str, Any]:
    return {
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


def test_the_dashboard_needs_the_backend_password(api: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Session-Password": "x" * 32}):
        response = api.get(METRICS, params={"start": "2025-03-01", "end": "2025-03-03"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_dashboard_answers_exact_numbers_for_both_layouts(api: TestClient) -> None:
    assert metrics(api, start="2025-03-01", end="2025-03-03") == {
        "start": "2025-03-01",
        "end": "2025-03-03",
        "days": [
            {**empty_day(D1), "sessions": 1, "messages": 2, "input_tokens": 10, "output_tokens": 5,
             "latency_p50": 100, "latency_p95": 100, "ttfb_p50": 10, "ttfb_p95": 10, "feedback_up": 1},
            {**empty_day(D2), "sessions": 1, "messages": 2, "input_tokens": 30, "output_tokens": 15,
             "latency_p50": 300, "latency_p95": 300, "feedback_down": 1, "feedback_none": 1},
            empty_day(D3),
        ],
        "totals": {
            "sessions": 2, "messages": 4, "invocations": 2, "input_tokens": 40, "output_tokens": 20,
            "cache_read_tokens": 0, "cache_write_tokens": 0, "latency_p50": 100, "latency_p95": 300,
            "ttfb_p50": 10, "ttfb_p95": 10, "feedback_up": 1, "feedback_down": 1, "feedback_none": 1,
            "feedback_ratio": 0.5,
        },
        "tools": [
            {"tool": "calc", "calls": 2, "errors": 1, "error_rate": 0.5},
            {"tool": "search", "calls": 1, "errors": 0, "error_rate": 0.0},
        ],
        "models": [
            {"model": "model-b", "input_tokens": 30, "output_tokens": 15, "invocations": 1},
            {"model": "model-a", "input_tokens": 10, "output_tokens": 5, "invocations": 1},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "messages", "feedback_ratio"),
    [
        ({"application": "shop"}, [2, 0, 0], 1.0),
        ({"application": "bank"}, [0, 2, 0], 0.0),
        ({"filters": '{"team": "blue"}'}, [0, 2, 0], 0.0),
        ({"agent": "pl.anner"}, [0, 2, 0], 0.0),
        ({"model": "model-a"}, [2, 0, 0], 1.0),
        ({"model": "model-a", "application": "bank"}, [0, 0, 0], None),
        ({"application": "", "agent": "", "model": "", "filters": ""}, [2, 2, 0], 0.5),  # empty means no filter
    ],
)
def test_the_dashboard_filters(api: TestClient, params, messages, feedback_ratio) -> None:
    result = metrics(api, start="2025-03-01", end="2025-03-03", **params)
    assert [row["messages"] for row in result["days"]] == messages
    assert result["totals"]["feedback_ratio"] == feedback_ratio


def test_without_dates_the_last_30_days_ending_today(mongo_uri: str, database_name: str) -> None:
    manager = MongoDBSessionManager(
        "today", connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    )
    try:
        model = ScriptedModel(["Hello there"], latency_ms=7)
        Agent(agent_id="greeter", model=model, session_manager=manager, callback_handler=None)("Hi")
    finally:
        manager.close()
    today = datetime.now(UTC).date()
    with app_for(mongo_uri, database_name) as api:
        result = metrics(api)
        assert (result["start"], result["end"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
        assert len(result["days"]) == 30
        assert {key: result["days"][-1][key] for key in ("sessions", "messages", "latency_p50")} == {
            "sessions": 1,
            "messages": 2,
            "latency_p50": 7,
        }
        assert result["totals"]["invocations"] == 1
        assert result["models"][0]["model"] == "scripted-model"
        only_end = metrics(api, end="2025-03-03")
        assert (only_end["start"], only_end["end"]) == ("2025-02-02", "2025-03-03")
        only_start = metrics(api, start=(today - timedelta(days=2)).isoformat())
        assert only_start["end"] == today.isoformat()
        assert only_start["totals"]["messages"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday"},
        {"start": "2025-13-01", "end": "2025-12-01"},
        {"start": "2025-02-29", "end": "2025-03-01"},
        {"end": "2025-3-1"},
        {"start": "2025-03-01", "end": "20250303"},
        {"start": "99999-01-01", "end": "99999-01-02"},
        {"start": "2025-03-03", "end": "2025-03-01"},
        {"start": "2023-01-01", "end": "2024-01-02"},  # 367 days
        {"start": "9999-12-31"},  # ends today: before it starts
        {"start": "2025-03-01", "end": "2025-03-03", "filters": '{"customer": "alice"}'},  # not indexed
        {"start": "2025-03-01", "end": "2025-03-03", "filters": '{"team": {"$ne": null}}'},
        {"start": "2025-03-01", "end": "2025-03-03", "filters": "team=red"},
    ],
)
def test_bad_ranges_and_filters_are_400(api: TestClient, params: dict[str, str]) -> None:
    response = api.get(METRICS, params=params, headers=AUTH)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("params", "days"),
    [
        ({"start": "9999-12-31", "end": "9999-12-31"}, 1),
        ({"end": "9999-12-31"}, 30),
        ({"start": "0001-01-01", "end": "0001-01-01"}, 1),
        ({"end": "0001-01-05"}, 5),  # the default start stops at the first day there is
        ({"start": "2023-01-01", "end": "2024-01-01"}, 366),
    ],
)
def test_extreme_and_longest_ranges_are_answered(api: TestClient, params: dict[str, str], days: int) -> None:
    result = metrics(api, **params)
    assert len(result["days"]) == days
    assert result["totals"]["sessions"] == 0


def test_an_unreachable_database_is_503(mongo_uri: str, database_name: str) -> None:
    with app_for("mongodb://127.0.0.1:9/", database_name, server_selection_timeout_ms=200) as client:
        response = client.get(METRICS, headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def test_the_collection_parameter_chooses_the_collection_read(api: TestClient, database_name: str) -> None:
    params = {"start": "2025-03-01", "end": "2025-03-03"}
    chosen = metrics(api, collection=f"{database_name}.{COLLECTION}", **params)
    assert chosen["totals"]["messages"] == 4
    response = api.get(METRICS, params={"collection": f"{database_name}.missing", **params}, headers=AUTH)
    assert response.status_code == 400
