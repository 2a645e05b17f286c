"""Session Viewer API over snapshot sessions: strands' ``SnapshotSessionManager`` agents on ``MongoDBStorage``.

The snapshots are written by real agents (scripted model, a tool, two agents, checkpoints, compression); the
viewer reads them through ``MongoDBStorage`` on its own client, read-only, with the backend password only.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from strands import Agent
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBStorage
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel
from session_viewer.backend import Settings, create_app

BACKEND_PASSWORD = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
XSS_TEXT = "<img src=x onerror=alert(1)>"
SEARCH = "/api/v1/snapshots/search"


def _agent(session_id: str, agent_id: str, script: list[Any], storage: MongoDBStorage, **options: Any) -> Agent:
    manager = SnapshotSessionManager(session_id, storage=storage, **options)
    return Agent(
        agent_id=agent_id,
        model=ScriptedModel(script),
        tools=[calculator],
        system_prompt="You do sums.",
        session_manager=manager,
        callback_handler=None,
    )


def _write(mongo_uri: str, database_name: str, collection_name: str = "strands_storage") -> None:
    """Three snapshot sessions: two agents with a tool, state and checkpoints (gzip-compressed); two plain ones."""
    storage = MongoDBStorage(mongo_uri, database_name=database_name, collection_name=collection_name, compress="gzip")
    every_turn = {"snapshot_trigger": lambda *, agent_data, **_: True}
    maths = _agent(
        "snap-maths",
        "calc",
        [{"tool": "calculator", "input": {"expression": "6 * 7"}, "id": "t1"}, "It is **42**.", "Again 42."],
        storage,
        **every_turn,
    )
    maths("What is 6 * 7?")
    maths.state.set("favourite_number", 42)
    maths(XSS_TEXT)
    _agent("snap-maths", "critic", ["Looks right."], storage)("Check it")
    _agent("snap-alpha", "solo", ["Hi."], storage)("Hello")
    _agent("snap-zulu", "solo", ["Bye."], storage)("Goodbye")


@pytest.fixture
def snapshots(mongo_uri: str, database_name: str) -> None:
    _write(mongo_uri, database_name)


@pytest.fixture
def app_client(mongo_uri: str, database_name: str) -> Callable[..., Any]:
    """Factory: a started app for the test database, as a ``TestClient`` context manager."""

    @contextmanager
    def start(client_options: dict[str, Any] | None = None, **overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            _env_file=None,
            mongodb_uri=mongo_uri,
            database_name=database_name,
            collection_name="sessions",
            backend_password=BACKEND_PASSWORD,
            **overrides,
        )
        with TestClient(create_app(settings, client_options=client_options), base_url="http://localhost") as client:
            yield client

    return start


@pytest.fixture
def api(app_client: Callable[..., Any], snapshots: None) -> Iterator[TestClient]:
    with app_client() as client:
        yield client


def test_snapshot_sessions_are_listed_in_id_order_with_agents_and_checkpoints(
    api: TestClient, database_name: str
) -> None:
    page = api.get(SEARCH, headers=AUTH).json()

    assert page == {
        "available": True,
        "collection": f"{database_name}.strands_storage",
        "total": 3,
        "limit": 20,
        "offset": 0,
        "sessions": [
            {"session_id": "snap-alpha", "agent_ids": ["solo"], "checkpoint_count": 0},
            {"session_id": "snap-maths", "agent_ids": ["calc", "critic"], "checkpoint_count": 2},
            {"session_id": "snap-zulu", "agent_ids": ["solo"], "checkpoint_count": 0},
        ],
    }


def test_the_snapshot_list_pages_and_filters_by_a_literal_id_part(api: TestClient) -> None:
    page = api.get(SEARCH, headers=AUTH, params={"limit": 1, "offset": 1}).json()
    assert (page["total"], [s["session_id"] for s in page["sessions"]]) == (3, ["snap-maths"])
    page = api.get(SEARCH, headers=AUTH, params={"session_id": "ZUL"}).json()
    assert (page["total"], [s["session_id"] for s in page["sessions"]]) == (1, ["snap-zulu"])
    assert api.get(SEARCH, headers=AUTH, params={"session_id": "snap-.*"}).json()["total"] == 0
    assert api.get(SEARCH, headers=AUTH, params={"limit": 101}).status_code == 422


def test_listing_reads_keys_only_never_a_snapshot(
    app_client: Callable[..., Any], snapshots: None, command_log: Any
) -> None:
    with app_client(client_options={"event_listeners": [command_log]}) as api:
        command_log.clear()
        assert api.get(SEARCH, headers=AUTH).json()["total"] == 3
        assert command_log.commands == ["listCollections", "find"], command_log.commands  # no read per session


def test_the_latest_snapshot_shows_as_a_read_only_timeline_with_agent_state(api: TestClient) -> None:
    session = api.get("/api/v1/snapshots/snap-maths", headers=AUTH).json()

    assert (session["session_id"], session["checkpoint_count"]) == ("snap-maths", 2)
    assert session["snapshot_created_at"]
    agents = {agent["agent_id"]: agent for agent in session["agents"]}
    assert agents["calc"]["state"] == {"favourite_number": 42}
    assert (agents["calc"]["message_count"], agents["critic"]["message_count"]) == (6, 2)
    assert "feedback_counts" not in session and "metadata" not in session
    timeline = session["timeline"]
    assert [(item["agent_id"], item["message_id"], item["role"]) for item in timeline] == [
        ("calc", 0, "user"),
        ("calc", 1, "assistant"),
        ("calc", 2, "user"),
        ("calc", 3, "assistant"),
        ("calc", 4, "user"),
        ("calc", 5, "assistant"),
        ("critic", 0, "user"),
        ("critic", 1, "assistant"),
    ]
    kinds = [[block["kind"] for block in item["blocks"]] for item in timeline[:4]]
    assert kinds == [["text"], ["tool_use"], ["tool_result"], ["text"]]
    assert timeline[1]["blocks"][0]["input"] == {"expression": "6 * 7"}
    assert timeline[2]["blocks"][0]["content"] == [{"kind": "text", "text": "42"}]
    strong = timeline[3]["blocks"][0]["markdown"]["children"][0]["children"][1]
    assert strong["type"] == "strong"
    literal = timeline[4]["blocks"][0]["markdown"]["children"][0]["children"][0]
    assert (literal["type"], literal["text"]) == ("text", XSS_TEXT)


def test_a_missing_or_malformed_snapshot_session_is_404(api: TestClient) -> None:
    for session_id in ("nope", "snap", "snap-maths/scopes", "..", "snap-maths%2Fscopes", "snap-maths%5C", "snap%00x"):
        assert api.get(f"/api/v1/snapshots/{session_id}", headers=AUTH).status_code == 404, session_id


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-password-wrong-password"}])
def test_snapshot_routes_need_the_backend_password(api: TestClient, headers: dict[str, str]) -> None:
    for path in (SEARCH, "/api/v1/snapshots/snap-maths"):
        assert api.get(path, headers=headers).status_code == 401, path


def test_no_session_password_opens_a_snapshot_session(api: TestClient) -> None:
    response = api.get("/api/v1/snapshots/snap-maths", headers={"X-Session-Password": "anything-at-all-0123"})
    assert response.status_code == 401


def test_without_the_storage_collection_snapshots_are_not_offered(
    app_client: Callable[..., Any], mongo_uri: str, database_name: str
) -> None:
    with app_client() as api:
        assert api.get("/api/v1/collections", headers=AUTH).json()["snapshots"] is None
        page = api.get(SEARCH, headers=AUTH).json()
        assert (page["available"], page["total"], page["sessions"]) == (False, 0, [])
        _write(mongo_uri, database_name)
        assert api.get(SEARCH, headers=AUTH).json()["available"] is True  # the listing checks at once


def test_the_snapshot_collection_is_configurable(
    app_client: Callable[..., Any], mongo_uri: str, database_name: str
) -> None:
    _write(mongo_uri, database_name, collection_name="agent_snapshots")
    with app_client(snapshot_collection_name="agent_snapshots") as api:
        assert api.get("/api/v1/collections", headers=AUTH).json()["snapshots"] == f"{database_name}.agent_snapshots"
        page = api.get(SEARCH, headers=AUTH).json()
        assert (page["collection"], page["total"]) == (f"{database_name}.agent_snapshots", 3)
        assert api.get("/api/v1/snapshots/snap-alpha", headers=AUTH).status_code == 200
    with app_client() as api:
        assert api.get(SEARCH, headers=AUTH).json()["available"] is False
