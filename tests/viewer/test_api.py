"""Session Viewer API tests against the wire-protocol server, over sessions written by the real library.

Sessions are written by ``MongoDBSessionManager`` with real strands agents (scripted model, a tool, two agents,
an image, feedback, metadata, a redaction); each test starts the app with its own settings.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gridfs import GridFSBucket
from pymongo import MongoClient
from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel
from session_viewer.backend import Settings, create_app
from web_common.throttle import PasswordThrottle

COLLECTION = "sessions"
BACKEND_PASSWORD = "correct-horse-battery-staple"
ALLOWED_ORIGIN = "https://viewer.example"
XSS_TEXT = "<img src=x onerror=alert(1)>"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
INDEXED_FIELDS = ["status", "priority", "vip"]
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
LOCAL = "http://localhost"  # an allowed Host: the default allow-list refuses TestClient's "testserver"


@tool
def calculator(expression: str) -> str:
    """Evaluate a product such as ``6*7``."""
    left, right = expression.split("*")
    return str(int(left) * int(right))


@pytest.fixture
def sync_client(mongo_uri: str) -> Iterator[MongoClient]:
    """A plain client for seeding and inspecting data (no command listener)."""
    with MongoClient(mongo_uri, tz_aware=True) as client:
        yield client


def _manager(client: MongoClient, database_name: str, session_id: str) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        session_id,
        client=client,
        database_name=database_name,
        collection_name=COLLECTION,
        metadata_fields=INDEXED_FIELDS,
    )


@pytest.fixture
def seeded(sync_client: MongoClient, database_name: str) -> dict[str, Any]:
    """Sessions written by real agents: two agents with a tool, an image, feedback, metadata, a redaction.

    Returns the viewer password of each session and the texts the tests look for.
    """
    manager = _manager(sync_client, database_name, "support-1")
    support = Agent(
        agent_id="support",
        model=ScriptedModel(
            [
                {"tool": "calculator", "input": {"expression": "6*7"}, "id": "t1"},
                "It is **42**.",
                "Plain answer",
                "my secret answer",
            ]
        ),
        tools=[calculator],
        system_prompt="You help customers.",
        session_manager=manager,
        callback_handler=None,
    )
    planner = Agent(
        agent_id="planner.v2",
        model=ScriptedModel([f"Plan: {XSS_TEXT}"]),
        system_prompt="You plan.",
        session_manager=manager,
        callback_handler=None,
    )
    support("What is 6*7?")
    planner([{"text": "Look at this"}, {"image": {"format": "png", "source": {"bytes": PNG_BYTES}}}])
    support(XSS_TEXT)
    manager.add_feedback({"rating": "up", "comment": "great"})
    support("tell me a secret")
    manager.redact_latest_message({"role": "assistant", "content": [{"text": "[redacted by policy]"}]}, support)
    manager.update_metadata({"status": "open", "priority": 2, "vip": True, "customer": "alice"})

    other = _manager(sync_client, database_name, "support-2")
    Agent(agent_id="support", model=ScriptedModel(["Hello"]), session_manager=other, callback_handler=None)("Hi")
    other.add_feedback({"rating": "down", "comment": "slow"})
    other.add_feedback({"rating": None, "comment": "meh"})
    other.update_metadata({"status": "closed", "priority": 1, "vip": False})

    literal = _manager(sync_client, database_name, "weird.*id")
    _manager(sync_client, database_name, "weirdXYid")
    return {
        "support-1": manager.get_session_viewer_password(),
        "support-2": other.get_session_viewer_password(),
        "weird.*id": literal.get_session_viewer_password(),
    }


def make_settings(mongo_uri: str, database_name: str, **overrides: Any) -> Settings:
    """Settings for a test app (no ``.env`` file is read)."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri,
        "database_name": database_name,
        "collection_name": COLLECTION,
        "backend_password": BACKEND_PASSWORD,
        "allowed_origins_str": ALLOWED_ORIGIN,
        "enum_fields_str": "status,metadata.vip",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def app_client(mongo_uri: str, database_name: str) -> Callable[..., Any]:
    """Factory: a started app (lifespan run) for the test database, as a ``TestClient`` context manager."""

    @contextmanager
    def start(client_options: dict[str, Any] | None = None, **overrides: Any) -> Iterator[TestClient]:
        app = create_app(make_settings(mongo_uri, database_name, **overrides), client_options=client_options)
        with TestClient(app, base_url=LOCAL) as client:
            yield client

    return start


@pytest.fixture
def api(app_client: Callable[..., Any], seeded: dict[str, Any]) -> Iterator[TestClient]:
    """A started app over the seeded sessions."""
    with app_client() as client:
        yield client


def search(api: TestClient, headers: dict[str, str] | None = None, **params: Any) -> Any:
    """GET the search endpoint with the backend password (unless other headers are given)."""
    return api.get("/api/v1/sessions/search", params=params, headers=AUTH if headers is None else headers)


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [session["session_id"] for session in response.json()["sessions"]]


# ----------------------------------------------------------------------------- health and static files


def test_health_answers_without_authentication(api: TestClient) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_reports_an_unreachable_database_as_degraded(app_client: Callable[..., Any]) -> None:
    with app_client(mongodb_uri="mongodb://127.0.0.1:9/", server_selection_timeout_ms=200) as client:
        assert client.get("/health").json() == {"status": "degraded", "database": "unavailable"}
        response = client.get("/api/v1/sessions/search", headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def test_responses_carry_a_strict_content_security_policy(api: TestClient) -> None:
    headers = api.get("/health").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert search(api).headers["cache-control"] == "no-store"


# ----------------------------------------------------------------------------- search


def test_search_lists_sessions_newest_first_with_counts_computed_by_mongodb(api: TestClient) -> None:
    response = search(api)
    body = response.json()
    assert body["total"] == 4
    assert (body["limit"], body["offset"]) == (20, 0)
    assert ids(response) == ["weirdXYid", "weird.*id", "support-2", "support-1"]
    first = body["sessions"][3]
    assert first["metadata"] == {"status": "open", "priority": 2, "vip": True, "customer": "alice"}
    assert first["agent_ids"] == ["support", "planner.v2"]
    assert first["message_count"] == 10
    assert first["feedback_counts"] == {"up": 1, "down": 0, "neutral": 0}
    assert first["created_at"].endswith("+00:00") and first["updated_at"] >= first["created_at"]
    assert body["sessions"][2]["feedback_counts"] == {"up": 0, "down": 1, "neutral": 1}


def test_search_filters_metadata_with_and_logic(api: TestClient) -> None:
    assert ids(search(api, filters='{"status": "open"}')) == ["support-1"]
    assert ids(search(api, filters='{"vip": false}')) == ["support-2"]
    assert ids(search(api, filters='{"status": "open", "priority": 2}')) == ["support-1"]
    assert ids(search(api, filters='{"status": "open", "priority": 1}')) == []
    assert search(api, filters='{"status": "closed"}').json()["total"] == 1


def test_search_session_id_is_a_literal_prefix_in_id_order(api: TestClient) -> None:
    assert ids(search(api, session_id="support-")) == ["support-1", "support-2"]  # session-id order
    assert ids(search(api, session_id="weird.*")) == ["weird.*id"]  # literal: no regex
    assert ids(search(api, session_id="weird")) == ["weird.*id", "weirdXYid"]
    assert ids(search(api, session_id="port-")) == []  # anchored
    assert ids(search(api, session_id="SUPPORT")) == []  # an index range is case-sensitive
    assert ids(search(api, session_id="(")) == []
    assert search(api, session_id="weird.*").json()["total"] == 1


def test_search_session_id_contains_mode_is_a_literal_case_insensitive_partial_match(api: TestClient) -> None:
    assert ids(search(api, session_id=".*", session_id_mode="contains")) == ["weird.*id"]
    newest_first = ["support-2", "support-1"]
    assert ids(search(api, session_id="PORT-", session_id_mode="contains")) == newest_first
    assert ids(search(api, session_id="(", session_id_mode="contains")) == []
    assert search(api, session_id=".*", session_id_mode="contains").json()["total"] == 1
    assert search(api, session_id="x", session_id_mode="regex").status_code == 422


def test_search_filters_by_application_and_shows_it(
    api: TestClient, sync_client: MongoClient, database_name: str
) -> None:
    for session_id, application in (("billing-1", "billing"), ("chat-1", "chat"), ("billing-2", "billing")):
        MongoDBSessionManager(
            session_id,
            client=sync_client,
            database_name=database_name,
            collection_name=COLLECTION,
            application_name=application,
        )

    page = search(api, application="billing").json()
    assert [s["session_id"] for s in page["sessions"]] == ["billing-2", "billing-1"]
    assert page["total"] == 2
    assert {s["application_name"] for s in page["sessions"]} == {"billing"}
    assert ids(search(api, application="billing", session_id="bill")) == ["billing-1", "billing-2"]
    assert ids(search(api, application="billing", session_id="-1", session_id_mode="contains")) == ["billing-1"]
    assert ids(search(api, application="nobody")) == []
    everything = {s["session_id"]: s["application_name"] for s in search(api, application="").json()["sessions"]}
    assert everything["chat-1"] == "chat" and everything["support-1"] is None  # written without one
    assert api.get("/api/v1/sessions/chat-1", headers=AUTH).json()["application_name"] == "chat"
    for bad in ("x" * 129, "a\x00b"):
        response = search(api, application=bad)
        assert response.status_code == 400
        assert "application" in response.json()["detail"]


def test_search_by_creation_date_range(api: TestClient, sync_client: MongoClient, database_name: str) -> None:
    created = sync_client[database_name][COLLECTION].find_one({"_id": "support-2"})["created_at"]
    exact = created.isoformat()
    assert ids(search(api, created_at_start=exact, created_at_end=exact)) == ["support-2"]
    assert "support-1" not in ids(search(api, created_at_start=exact))
    assert ids(search(api, created_at_end=exact)) == ["support-2", "support-1"]
    today = created.date().isoformat()
    assert len(ids(search(api, created_at_start=today, created_at_end=today))) == 4  # a date means the whole day
    assert ids(search(api, created_at_end="2001-01-01T00:00:00Z")) == []


def test_search_refuses_bad_dates(api: TestClient) -> None:
    for params in ({"created_at_start": "yesterday"}, {"created_at_end": "2024-13-01"}):
        response = search(api, **params)
        assert response.status_code == 400
        assert "ISO 8601" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"created_at_end": "9999-12-31"}, 4),  # the whole last day: its end is past what a datetime holds
        ({"created_at_end": "9999-12-31T23:59:59.999999-05:00"}, 4),  # year 10000 in UTC
        ({"created_at_start": "0001-01-01T00:00:00+01:00"}, 4),  # year 0 in UTC
        ({"created_at_start": "0001-01-01", "created_at_end": "9999-12-31"}, 4),
        ({"created_at_start": "9999-12-31T23:30:00-01:00"}, 0),  # after every stored date
        ({"created_at_end": "0001-01-01T00:30:00+01:00"}, 0),  # before every stored date
        ({"created_at_start": "9999-12-31", "created_at_end": "9999-12-31"}, 0),
    ],
)
def test_search_answers_the_extreme_dates_it_accepts(api: TestClient, params: dict[str, str], found: int) -> None:
    response = search(api, **params)
    assert response.status_code == 200, response.text
    assert len(response.json()["sessions"]) == found


def test_search_pages_with_limit_and_offset(api: TestClient) -> None:
    assert ids(search(api, limit=2)) == ["weirdXYid", "weird.*id"]
    page = search(api, limit=2, offset=2).json()
    assert [s["session_id"] for s in page["sessions"]] == ["support-2", "support-1"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 2)
    assert ids(search(api, offset=10)) == []


def test_search_refuses_a_page_size_above_the_maximum(app_client: Callable[..., Any], seeded: dict) -> None:
    with app_client(max_page_size=3, default_page_size=2) as api:
        assert search(api).json()["limit"] == 2
        assert len(ids(search(api, limit=3))) == 3
        too_big = search(api, limit=4)
        assert too_big.status_code == 422
        assert "at most 3" in too_big.json()["detail"]
        assert search(api, limit=0).status_code == 422
        assert search(api, offset=-1).status_code == 422


# ----------------------------------------------------------------------------- filter safety


@pytest.mark.parametrize(
    "filters",
    [
        '{"status": {"$ne": null}}',
        '{"status": {"$where": "sleep(1000)"}}',
        '{"status": {"$regex": ".*"}}',
        '{"status": ["open"]}',
        '{"status": null}',
        '{"priority": NaN}',
    ],
)
def test_filter_values_must_be_literals(api: TestClient, filters: str) -> None:
    response = search(api, filters=filters)
    assert response.status_code == 400
    assert "operators are not allowed" in response.json()["detail"]


@pytest.mark.parametrize("filters", ['{"$where": "sleep(1000)"}', '{"customer": "alice"}', '{"session_id": "x"}'])
def test_only_indexed_metadata_fields_are_filterable(api: TestClient, filters: str) -> None:
    response = search(api, filters=filters)
    assert response.status_code == 400
    assert "not a filterable (indexed) metadata field" in response.json()["detail"]


@pytest.mark.parametrize("filters", ["not json", "[1, 2]", '"open"'])
def test_filters_must_be_a_json_object(api: TestClient, filters: str) -> None:
    response = search(api, filters=filters)
    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]


def test_a_newly_indexed_field_becomes_filterable_at_once(
    api: TestClient, sync_client: MongoClient, database_name: str
) -> None:
    assert search(api, filters='{"customer": "alice"}').status_code == 400
    sync_client[database_name][COLLECTION].create_index("metadata.customer")
    assert ids(search(api, filters='{"customer": "alice"}')) == ["support-1"]


# ----------------------------------------------------------------------------- metadata fields


def test_metadata_fields_lists_indexed_fields_with_types_and_enum_values(api: TestClient) -> None:
    response = api.get("/api/v1/metadata-fields", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "fields": [
            {"field": "priority", "path": "metadata.priority", "type": "number", "values": None},
            {"field": "status", "path": "metadata.status", "type": "enum", "values": ["closed", "open"]},
            {"field": "vip", "path": "metadata.vip", "type": "enum", "values": [False, True]},
        ]
    }


def test_an_enum_field_with_too_many_values_is_described_by_type(app_client: Callable[..., Any], seeded: dict) -> None:
    with app_client(enum_max_values=1) as api:
        fields = {f["field"]: f for f in api.get("/api/v1/metadata-fields", headers=AUTH).json()["fields"]}
    assert fields["status"] == {"field": "status", "path": "metadata.status", "type": "string", "values": None}
    assert fields["vip"]["type"] == "boolean"


# ----------------------------------------------------------------------------- one session: the timeline


def test_timeline_merges_agents_and_feedback_in_time_order(api: TestClient) -> None:
    response = api.get("/api/v1/sessions/support-1", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == "support-1"
    assert body["metadata"]["status"] == "open"
    assert body["feedback_counts"] == {"up": 1, "down": 0, "neutral": 0}
    assert body["agents"] == [
        {"agent_id": "support", "model": "scripted-model", "system_prompt": "You help customers.", "message_count": 8},
        {"agent_id": "planner.v2", "model": "scripted-model", "system_prompt": "You plan.", "message_count": 2},
    ]
    order = [
        (item["type"], item.get("agent_id"), item.get("message_id"), item.get("role")) for item in body["timeline"]
    ]
    assert order == [
        ("message", "support", 0, "user"),
        ("message", "support", 1, "assistant"),
        ("message", "support", 2, "user"),
        ("message", "support", 3, "assistant"),
        ("message", "planner.v2", 0, "user"),
        ("message", "planner.v2", 1, "assistant"),
        ("message", "support", 4, "user"),
        ("message", "support", 5, "assistant"),
        ("feedback", None, None, None),
        ("message", "support", 6, "user"),
        ("message", "support", 7, "assistant"),
    ]
    timestamps = [item["timestamp"] for item in body["timeline"]]
    assert timestamps == sorted(timestamps)
    assert body["timeline"][8] == {
        "type": "feedback",
        "timestamp": timestamps[8],
        "rating": "up",
        "comment": "great",
    }


def test_timeline_shows_tool_calls_and_results_as_such(api: TestClient) -> None:
    timeline = api.get("/api/v1/sessions/support-1", headers=AUTH).json()["timeline"]
    assert timeline[1]["blocks"] == [
        {"kind": "tool_use", "name": "calculator", "tool_use_id": "t1", "input": {"expression": "6*7"}}
    ]
    assert timeline[2]["blocks"] == [
        {"kind": "tool_result", "tool_use_id": "t1", "status": "success", "content": [{"kind": "text", "text": "42"}]}
    ]
    answer = timeline[3]["blocks"][0]["markdown"]
    assert answer["children"][0]["children"][1] == {
        "type": "strong",
        "children": [{"type": "text", "text": "42", "children": []}],
    }


def test_timeline_reports_metrics_on_assistant_messages(api: TestClient) -> None:
    timeline = api.get("/api/v1/sessions/support-1", headers=AUTH).json()["timeline"]
    metrics = timeline[3]["metrics"]
    assert metrics["latencyMs"] >= 1
    assert metrics["totalTokens"] == metrics["inputTokens"] + metrics["outputTokens"] > 0
    assert metrics["cycleCount"] == 2
    assert [(tool["name"], tool["calls"], tool["errors"]) for tool in metrics["toolUsage"]] == [("calculator", 1, 0)]
    assert metrics["timeToFirstByteMs"] is None and metrics["cacheReadInputTokens"] is None  # not reported
    assert timeline[0]["metrics"] is None


def test_the_detail_shows_first_byte_cache_guardrail_and_application(
    app_client: Callable[..., Any], sync_client: MongoClient, database_name: str
) -> None:
    trace = {"inputAssessment": {"g": {"topicPolicy": {"topics": [{"name": "Refunds", "action": "BLOCKED"}]}}}}
    manager = MongoDBSessionManager(
        "guarded", client=sync_client, database_name=database_name, collection_name=COLLECTION, application_name="shop"
    )
    model = ScriptedModel(
        ["Hello", {"text": "Sorry.", "guardrail": {"trace": trace}}], time_to_first_byte_ms=40, cache_read_tokens=7
    )
    agent = Agent(agent_id="support", model=model, session_manager=manager, callback_handler=None)
    agent("Hi")
    agent("I want a refund")

    with app_client() as api:
        detail = api.get("/api/v1/sessions/guarded", headers=AUTH).json()

    assert detail["application_name"] == "shop"
    first_answer, refund_question = detail["timeline"][1], detail["timeline"][2]
    assert (first_answer["metrics"]["timeToFirstByteMs"], first_answer["metrics"]["cacheReadInputTokens"]) == (40, 7)
    assert first_answer["guardrail"] is None
    assert refund_question["redacted"] is True
    assert refund_question["guardrail"]["action"] == "redacted"
    assert refund_question["guardrail"]["policies"] == ["topicPolicy:Refunds"]
    summary = detail["guardrail_summary"]
    assert (summary["total"], summary["by_action"], summary["by_policy"]) == (
        1,
        {"redacted": 1},
        {"topicPolicy:Refunds": 1},
    )
    assert [(event["agent_id"], event["message_id"]) for event in summary["latest"]] == [("support", 2)]


def test_attachments_are_described_never_shipped(api: TestClient) -> None:
    response = api.get("/api/v1/sessions/support-1", headers=AUTH)
    image_message = response.json()["timeline"][4]
    assert image_message["blocks"][1] == {
        "kind": "attachment",
        "attachment_type": "image",
        "format": "png",
        "name": None,
        "size_bytes": len(PNG_BYTES),
    }
    assert "iVBORw0KGgo" not in response.text  # the base64 form of the PNG signature
    assert len(response.content) < len(PNG_BYTES)


def test_stored_html_comes_back_as_literal_text(api: TestClient) -> None:
    timeline = api.get("/api/v1/sessions/support-1", headers=AUTH).json()["timeline"]
    user_text = timeline[6]["blocks"][0]["markdown"]
    assert user_text == {
        "type": "document",
        "children": [{"type": "paragraph", "children": [{"type": "text", "text": XSS_TEXT, "children": []}]}],
    }
    planner_text = timeline[5]["blocks"][0]["markdown"]["children"][0]["children"]
    assert planner_text == [{"type": "text", "text": f"Plan: {XSS_TEXT}", "children": []}]


def test_a_redacted_message_shows_the_redaction_not_the_original(api: TestClient) -> None:
    response = api.get("/api/v1/sessions/support-1", headers=AUTH)
    redacted = response.json()["timeline"][10]
    assert redacted["redacted"] is True
    assert redacted["blocks"][0]["markdown"]["children"][0]["children"][0]["text"] == "[redacted by policy]"
    assert "my secret answer" not in response.text
    assert response.json()["timeline"][9]["redacted"] is False


def test_session_detail_never_ships_agent_state_or_passwords(api: TestClient, seeded: dict) -> None:
    response = api.get("/api/v1/sessions/support-1", headers=AUTH)
    assert seeded["support-1"] not in response.text
    assert "conversation_manager_state" not in response.text


def test_a_missing_session_is_404_with_the_backend_password(api: TestClient) -> None:
    response = api.get("/api/v1/sessions/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"detail": "session not found"}


def test_session_ids_with_dots_and_stars_are_addressable(api: TestClient) -> None:
    assert api.get("/api/v1/sessions/weird.*id", headers=AUTH).json()["timeline"] == []


# ----------------------------------------------------------------------------- both message layouts

LAYOUT_SETTINGS = {
    "inline": {},  # the default embedded layout
    "rows": {"message_storage": "collection"},
    "grown.up": {"max_embedded_messages": 2},  # promoted to the collection layout by its third message
}


@pytest.fixture
def mixed_layouts(sync_client: MongoClient, database_name: str) -> None:
    """Session "layouts": three agents taking turns, one per message layout (embedded, collection, promoted)."""
    managers = []
    agents = []
    for agent_id, settings in LAYOUT_SETTINGS.items():
        manager = MongoDBSessionManager(
            "layouts", client=sync_client, database_name=database_name, collection_name=COLLECTION, **settings
        )
        managers.append(manager)
        model = ScriptedModel([f"{agent_id} answer 1", f"{agent_id} answer 2"])
        agents.append(Agent(agent_id=agent_id, model=model, session_manager=manager, callback_handler=None))
    for question in ("first", "second"):
        for agent in agents:
            agent(question)
    for manager in managers:
        manager.close()
    stored = sync_client[database_name][COLLECTION].find_one({"_id": "layouts"})["agents"]
    assert [stored[key].get("message_storage") for key in ("inline", "rows", "grown%2Eup")] == [
        None,
        "collection",
        "collection",
    ]


def test_every_layout_shows_its_messages_once_in_order_in_the_timeline(
    app_client: Callable[..., Any], mixed_layouts: None, command_log: Any
) -> None:
    with app_client(client_options={"event_listeners": [command_log]}) as api:
        command_log.clear()
        body = api.get("/api/v1/sessions/layouts", headers=AUTH).json()
        assert len(command_log.commands) == 3, command_log.commands  # session fields; messages: document + rows

    assert [(agent["agent_id"], agent["message_count"]) for agent in body["agents"]] == [
        ("inline", 4),
        ("rows", 4),
        ("grown.up", 4),
    ]
    shown = [(item["agent_id"], item["message_id"], item["role"]) for item in body["timeline"]]
    expected = []
    for turn in (0, 1):
        for agent_id in LAYOUT_SETTINGS:
            expected += [(agent_id, 2 * turn, "user"), (agent_id, 2 * turn + 1, "assistant")]
    assert shown == expected
    answers = [item["blocks"][0]["markdown"]["children"][0]["children"][0]["text"] for item in body["timeline"][1::2]]
    assert answers == [f"{agent_id} answer {turn}" for turn in (1, 2) for agent_id in LAYOUT_SETTINGS]
    assert all(item["metrics"] is not None for item in body["timeline"][1::2])


def test_the_list_counts_messages_in_every_layout_with_one_more_command(
    app_client: Callable[..., Any], seeded: dict, mixed_layouts: None, command_log: Any
) -> None:
    with app_client(client_options={"event_listeners": [command_log]}) as api:
        command_log.clear()
        sessions = {s["session_id"]: s for s in search(api).json()["sessions"]}
        assert len(command_log.commands) == 3, command_log.commands  # page, count, and the $group on messages
        command_log.clear()
        embedded_only = search(api, session_id="support").json()["sessions"]
        assert len(command_log.commands) == 2, command_log.commands

    assert sessions["layouts"]["message_count"] == 12
    assert sessions["layouts"]["agent_ids"] == list(LAYOUT_SETTINGS)
    assert sessions["support-1"]["message_count"] == 10
    assert [s["message_count"] for s in embedded_only] == [10, 2]  # support-1, support-2: session-id order


def test_stored_values_that_look_encoded_are_shown_as_written(
    app_client: Callable[..., Any], sync_client, database_name
):
    manager = _manager(sync_client, database_name, "encoded")
    tool_input = {"$ref": "#/defs/a", "a.b": 2**70, "looks_stored": {"__msm_int__": "5"}}
    model = ScriptedModel([{"tool": "calculator", "input": {"expression": "6*7", **tool_input}, "id": "t1"}, "ok"])
    Agent(agent_id="a", model=model, tools=[calculator], session_manager=manager, callback_handler=None)("go")

    with app_client() as api:
        timeline = api.get("/api/v1/sessions/encoded", headers=AUTH).json()["timeline"]
    assert timeline[1]["blocks"][0]["input"] == {"expression": "6*7", **tool_input}


def test_a_timeline_with_the_database_unreachable_is_503(app_client: Callable[..., Any]) -> None:
    with app_client(mongodb_uri="mongodb://127.0.0.1:9/", server_selection_timeout_ms=200) as client:
        response = client.get("/api/v1/sessions/any", headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


# ----------------------------------------------------------------------------- which collection is read


@pytest.fixture
def other_collections(sync_client: MongoClient, database_name: str, seeded: dict) -> dict[str, str]:
    """Beside the seeded sessions: another session collection (messages in the collection layout, a GridFS
    bucket), a collection of other documents and a view on the sessions. Returns the archived session's password.
    """
    with MongoDBSessionManager(
        "archived-1",
        client=sync_client,
        database_name=database_name,
        collection_name="archive",
        metadata_fields=["region"],
        message_storage="collection",
    ) as manager:
        Agent(agent_id="support", model=ScriptedModel(["Archived answer"]), session_manager=manager)("Old question")
        manager.update_metadata({"region": "eu"})
        password = manager.get_session_viewer_password()
    GridFSBucket(sync_client[database_name], bucket_name="archive").upload_from_stream("blob", b"bytes")
    sync_client[database_name]["orders"].insert_one({"_id": "order-1", "total": 12})
    sync_client[database_name].command("create", "sessions_view", viewOn=COLLECTION, pipeline=[])
    assert {"archive.messages", "archive.files", "archive.chunks"} <= set(
        sync_client[database_name].list_collection_names()
    )
    return {"archived-1": password}


def test_collections_lists_the_configured_one_first_then_those_holding_sessions(
    api: TestClient, other_collections: dict, database_name: str
) -> None:
    response = api.get("/api/v1/collections", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["default"] == f"{database_name}.{COLLECTION}"
    assert body["collections"][0] == body["default"]
    ours = [name for name in body["collections"] if name.startswith(f"{database_name}.")]
    assert ours == [f"{database_name}.{COLLECTION}", f"{database_name}.archive"]  # no messages, GridFS, view, orders
    assert not [name for name in body["collections"] if name.split(".")[0] in ("admin", "local", "config")]


def test_collections_need_the_backend_password(api: TestClient, seeded: dict) -> None:
    assert api.get("/api/v1/collections").status_code == 401
    assert api.get("/api/v1/collections", headers={"X-Session-Password": seeded["support-1"]}).status_code == 401


def test_search_fields_and_timeline_read_the_chosen_collection(
    api: TestClient, other_collections: dict, database_name: str
) -> None:
    archive = f"{database_name}.archive"
    assert ids(search(api, collection=archive)) == ["archived-1"]
    assert ids(search(api, collection=f"{database_name}.{COLLECTION}")) == ids(search(api))
    assert ids(search(api, collection=archive, filters='{"region": "eu"}')) == ["archived-1"]
    assert search(api, filters='{"region": "eu"}').status_code == 400  # not an indexed field of the default one

    fields = api.get("/api/v1/metadata-fields", params={"collection": archive}, headers=AUTH).json()["fields"]
    assert [field["field"] for field in fields] == ["region"]

    detail = api.get("/api/v1/sessions/archived-1", params={"collection": archive}, headers=AUTH)
    assert detail.status_code == 200, detail.text
    assert [item["role"] for item in detail.json()["timeline"]] == ["user", "assistant"]
    assert api.get("/api/v1/sessions/archived-1", headers=AUTH).status_code == 404  # not in the default one


def test_a_session_password_opens_its_session_in_the_chosen_collection(
    api: TestClient, other_collections: dict, database_name: str
) -> None:
    headers = {"X-Session-Password": other_collections["archived-1"]}
    archive = {"collection": f"{database_name}.archive"}
    assert api.get("/api/v1/sessions/archived-1", params=archive, headers=headers).status_code == 200
    assert api.get("/api/v1/sessions/archived-1", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "collection",
    ["orders", "sessions_view", "archive.messages", "archive.files", "archive.chunks", "missing", "", "."],
)
def test_a_collection_that_holds_no_sessions_is_refused(
    api: TestClient, other_collections: dict, database_name: str, collection: str
) -> None:
    namespace = f"{database_name}.{collection}" if collection not in ("", ".") else collection
    for path in ("/api/v1/sessions/search", "/api/v1/metadata-fields", "/api/v1/sessions/archived-1"):
        response = api.get(path, params={"collection": namespace}, headers=AUTH)
        if namespace == "":
            assert response.status_code != 400, path  # empty: the configured collection
            continue
        assert response.status_code == 400, (path, response.text)
        assert "collection" in response.json()["detail"]


@pytest.mark.parametrize("namespace", ["admin.system.version", "local.startup_log", "nodot", "db."])
def test_system_and_malformed_namespaces_are_refused(api: TestClient, namespace: str) -> None:
    response = search(api, collection=namespace)
    assert response.status_code == 400, response.text


def test_a_new_session_collection_is_found_without_a_restart(
    api: TestClient, sync_client: MongoClient, database_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from session_viewer.backend import namespaces

    monkeypatch.setattr(namespaces, "_MIN_REFRESH_SECONDS", 0.0)
    assert f"{database_name}.late" not in api.get("/api/v1/collections", headers=AUTH).json()["collections"]
    with MongoDBSessionManager("late-1", client=sync_client, database_name=database_name, collection_name="late"):
        pass
    assert ids(search(api, collection=f"{database_name}.late")) == ["late-1"]


def test_the_listing_is_cached_and_the_configured_collection_costs_no_listing(
    app_client: Callable[..., Any], seeded: dict, command_log: Any
) -> None:
    with app_client(client_options={"event_listeners": [command_log]}) as api:
        command_log.clear()
        search(api)
        assert "listDatabases" not in command_log.commands
        command_log.clear()
        api.get("/api/v1/collections", headers=AUTH)
        assert command_log.commands.count("listDatabases") == 1, command_log.commands
        assert set(command_log.commands) == {"listDatabases", "listCollections", "find"}, command_log.commands
        command_log.clear()
        api.get("/api/v1/collections", headers=AUTH)
        assert command_log.commands == []


# ----------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-password-wrong-password"},
        {"Authorization": f"Basic {BACKEND_PASSWORD}"},
        {"Authorization": f"Bearer {BACKEND_PASSWORD}x"},
        {"Authorization": "Bearer "},
    ],
)
def test_api_routes_need_the_backend_password(api: TestClient, headers: dict[str, str]) -> None:
    for path in ("/api/v1/sessions/search", "/api/v1/metadata-fields", "/api/v1/sessions/support-1"):
        response = api.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "detail" in response.json()


def test_the_backend_password_opens_every_route(api: TestClient) -> None:
    for path in ("/api/v1/sessions/search", "/api/v1/metadata-fields", "/api/v1/sessions/support-2"):
        assert api.get(path, headers=AUTH).status_code == 200, path


def test_a_session_password_opens_only_its_own_session(api: TestClient, seeded: dict) -> None:
    own = {"X-Session-Password": seeded["support-1"]}
    assert api.get("/api/v1/sessions/support-1", headers=own).status_code == 200
    assert api.get("/api/v1/sessions/support-2", headers=own).status_code == 401
    assert api.get("/api/v1/sessions/nope", headers=own).status_code == 401  # existence is not revealed
    assert search(api, headers=own).status_code == 401
    assert api.get("/api/v1/metadata-fields", headers=own).status_code == 401
    wrong = {"X-Session-Password": seeded["support-1"][:-1] + "?"}
    assert api.get("/api/v1/sessions/support-1", headers=wrong).status_code == 401
    assert api.get("/api/v1/sessions/support-1", headers={"X-Session-Password": ""}).status_code == 401


def test_a_session_password_must_match_exactly(api: TestClient, seeded: dict) -> None:
    password = seeded["support-2"]
    detail = "/api/v1/sessions/support-2"
    api.app.state.password_throttle = PasswordThrottle(max_failures=10)  # more wrong attempts than the default
    assert api.get(detail, headers={"X-Session-Password": password}).status_code == 200
    for attempt in (
        seeded["support-1"],  # another session's password
        password + "x",
        password[:-1],
        password.swapcase(),
        f" {password}",
        BACKEND_PASSWORD,  # the backend password goes in Authorization, not here
    ):
        assert api.get(detail, headers={"X-Session-Password": attempt}).status_code == 401, attempt
    # Non-ASCII bytes in the header (read as latin-1 text) are refused, never a server error.
    non_ascii = (password[:-2] + "é").encode()
    assert api.get(detail, headers={"X-Session-Password": non_ascii}).status_code == 401


def test_a_session_without_a_string_password_opens_only_with_the_backend_password(
    api: TestClient, sync_client: MongoClient, database_name: str
) -> None:
    sessions = sync_client[database_name][COLLECTION]
    sessions.insert_one({"_id": "no-password", "created_at": datetime.now(UTC)})
    sessions.insert_one({"_id": "number-password", "session_viewer_password": 12345, "created_at": datetime.now(UTC)})
    for session_id, attempt in (("no-password", "None"), ("number-password", "12345")):
        detail = f"/api/v1/sessions/{session_id}"
        assert api.get(detail, headers={"X-Session-Password": attempt}).status_code == 401, session_id
        assert api.get(detail, headers=AUTH).status_code == 200, session_id


def test_the_backend_password_must_match_exactly(api: TestClient, seeded: dict) -> None:
    assert search(api).status_code == 200
    for token in (BACKEND_PASSWORD.upper(), BACKEND_PASSWORD[:-1], seeded["support-1"]):
        assert search(api, headers={"Authorization": f"Bearer {token}"}).status_code == 401, token
    non_ascii = f"Bearer {BACKEND_PASSWORD[:-1]}é".encode()
    assert search(api, headers={"Authorization": non_ascii}).status_code == 401


# ----------------------------------------------------------------------------- configuration


def test_a_short_backend_password_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(_env_file=None, backend_password="short")
    monkeypatch.setenv("BACKEND_PASSWORD", "fifteen-chars!!")
    with pytest.raises(ValidationError, match="BACKEND_PASSWORD must be at least 16 characters"):
        Settings(_env_file=None)


def test_without_a_backend_password_there_is_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKEND_PASSWORD", raising=False)
    settings = Settings(_env_file=None)
    assert settings.backend_password is None
    with pytest.raises(ValueError, match="BACKEND_PASSWORD is not set"):
        create_app(settings)
    resolved, generated = settings.resolve_password()
    assert generated is not None and len(generated) >= 32
    assert resolved.backend_password.get_secret_value() == generated
    assert settings.resolve_password()[1] != generated
    configured = Settings(_env_file=None, backend_password=BACKEND_PASSWORD)
    assert configured.resolve_password() == (configured, None)


def test_a_generated_password_opens_the_api(mongo_uri: str, database_name: str, seeded: dict) -> None:
    settings, generated = make_settings(mongo_uri, database_name, backend_password=None).resolve_password()
    with TestClient(create_app(settings), base_url=LOCAL) as api:
        assert search(api, headers={"Authorization": f"Bearer {generated}"}).status_code == 200
        assert search(api).status_code == 401


def test_env_example_documents_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    import session_viewer.backend

    example = Path(session_viewer.backend.__file__).parent / ".env.example"
    documented = example.read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in documented, name
    monkeypatch.delenv("BACKEND_PASSWORD", raising=False)
    monkeypatch.delenv("MONGODB_URI", raising=False)
    settings = Settings(_env_file=example)
    assert (settings.backend_password, settings.mongodb_uri, settings.allowed_origins) == (None, None, [])
    assert (settings.database_name, settings.collection_name) == ("database_name", "collection_name")


def test_cli_prints_a_generated_password_once(
    mongo_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    import uvicorn

    import web_common.cli
    from session_viewer.backend import cli

    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: served.append((server.config.app, sockets)))
    monkeypatch.setattr(web_common.cli, "reachable_mongodb", lambda uri, timeout_ms: uri)  # fake credentials: no ping
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BACKEND_PASSWORD", raising=False)
    monkeypatch.setenv("MONGODB_URI", mongo_uri.replace("mongodb://", "mongodb://user:pw@"))
    assert cli.main(["--port", "0"]) == 0
    err = capsys.readouterr().err
    app, sockets = served[0]
    port = sockets[0].getsockname()[1]
    sockets[0].close()
    password = app.state.settings.backend_password.get_secret_value()
    assert err.count(password) == 1
    assert "user:pw" not in err and "using MongoDB at mongodb://" in err
    assert f"session-viewer: open http://127.0.0.1:{port}/" in err


def test_cli_refuses_a_short_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from session_viewer.backend import cli

    monkeypatch.setenv("BACKEND_PASSWORD", "short")
    assert cli.main([]) == 2
    assert "BACKEND_PASSWORD" in capsys.readouterr().err


# ----------------------------------------------------------------------------- CORS and request size


def test_cors_allows_only_configured_origins(api: TestClient) -> None:
    allowed = search(api, headers={**AUTH, "Origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    other = search(api, headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight_headers = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-session-password",
    }
    preflight = api.options("/api/v1/sessions/search", headers=preflight_headers)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    refused = api.options("/api/v1/sessions/search", headers={**preflight_headers, "Origin": "https://evil.example"})
    assert refused.status_code == 400


@pytest.mark.parametrize("origins", ["*", "https://viewer.example, *"])
def test_a_wildcard_origin_is_refused(origins: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'\\*' is not allowed"):
        Settings(_env_file=None, backend_password=BACKEND_PASSWORD, allowed_origins_str=origins)


def test_oversized_requests_are_refused(app_client: Callable[..., Any], seeded: dict) -> None:
    with app_client(max_request_bytes=1024) as api:
        assert search(api, session_id="x" * 900).status_code == 200
        long_url = search(api, session_id="x" * 1100)
        assert long_url.status_code == 414
        assert long_url.json() == {"detail": "request URL too long"}
        assert api.get("/api/v1/sessions/" + "y" * 1100, headers=AUTH).status_code == 414
        body = api.request("GET", "/api/v1/sessions/search", headers=AUTH, content=b"z" * 2048)
        assert body.status_code == 413
        assert body.json() == {"detail": "request body too large"}


# ----------------------------------------------------------------------------- 10,000 sessions


BULK_SESSIONS = 10_000
BULK_MESSAGE_TEXT = "lorem ipsum " * 250  # 3,000 bytes per stored message
PAGE_REPLY_LIMIT = 20 * 500  # a summary is about 230 bytes; one page of messages would be 60,000


@pytest.fixture
def bulk_sessions(sync_client: MongoClient, database_name: str) -> None:
    """10,000 session documents built by the library, each with one agent and a 3 KB message."""
    from strands.types.session import Session, SessionType

    from mongodb_session_manager import MongoDBSessionRepository
    from mongodb_session_manager.documents import session_document

    MongoDBSessionRepository(
        client=sync_client, database_name=database_name, collection_name=COLLECTION, metadata_fields=["tier"]
    )
    collection = sync_client[database_name][COLLECTION]
    base = datetime(2024, 1, 1, tzinfo=UTC)
    batch = []
    for number in range(BULK_SESSIONS):
        document = session_document(Session(session_id=f"bulk-{number:05d}", session_type=SessionType.AGENT))
        document["created_at"] = document["updated_at"] = base + timedelta(seconds=number)
        document["metadata"] = {"tier": "gold" if number % 2 else "silver"}
        document["agents"] = {
            "agent": {
                "agent_data": {"agent_id": "agent"},
                "messages": [
                    {
                        "message_id": 0,
                        "message": {"role": "user", "content": [{"text": BULK_MESSAGE_TEXT}]},
                        "created_at": document["session_data"]["created_at"],
                    }
                ],
            }
        }
        document["feedbacks"] = [{"rating": "up", "created_at": base}] if number % 3 == 0 else []
        batch.append(document)
        if len(batch) == 1_000:
            collection.insert_many(batch)
            batch = []


def test_paging_10000_sessions_costs_two_commands_and_ships_no_messages(
    app_client: Callable[..., Any], bulk_sessions: None, command_log: Any
) -> None:
    with app_client(client_options={"event_listeners": [command_log]}) as api:
        assert search(api, filters='{"tier": "gold"}').status_code == 200  # reads the index list once
        command_log.clear()

        first = search(api, limit=20).json()
        assert len(command_log.commands) <= 2, command_log.commands
        assert command_log.reply_bytes < PAGE_REPLY_LIMIT
        assert first["total"] == BULK_SESSIONS
        assert [s["session_id"] for s in first["sessions"]] == [f"bulk-{n:05d}" for n in range(9999, 9979, -1)]
        assert first["sessions"][0]["message_count"] == 1
        assert first["sessions"][0]["feedback_counts"] == {"up": 1, "down": 0, "neutral": 0}

        command_log.clear()
        last = search(api, limit=20, offset=9_980).json()
        assert len(command_log.commands) <= 2, command_log.commands
        assert command_log.reply_bytes < PAGE_REPLY_LIMIT
        assert last["total"] == BULK_SESSIONS
        assert [s["session_id"] for s in last["sessions"]] == [f"bulk-{n:05d}" for n in range(19, -1, -1)]

        command_log.clear()
        gold = search(api, limit=100, offset=4_900, filters='{"tier": "gold"}', session_id="bulk-0").json()
        assert len(command_log.commands) <= 2, command_log.commands
        assert (gold["total"], gold["total_capped"]) == (1_000, True)  # 5,000 match: the count stops at its cap
        assert [s["session_id"] for s in gold["sessions"]][-1] == "bulk-09999"  # a prefix lists in id order
        assert len(gold["sessions"]) == 100
