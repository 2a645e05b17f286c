"""The playground backend over HTTP: streamed replies, history, session info and feedback, on a real MongoDB."""

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from bson import ObjectId
from fastapi.testclient import TestClient
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionRepository, get_global_factory
from mongodb_session_manager.demo_model import DemoModel
from mongodb_session_manager.startup import describe_uri
from mongodb_session_manager.testing import ScriptedModel
from playground.chat import Settings, create_app
from playground.chat.api import _paced
from playground.chat.app import STATIC_DIR
from playground.chat.server import main
from web_common.assets import COMMON_STATIC_DIR

COLLECTION = "chat_sessions"
LOCAL = "http://localhost"  # an allowed Host: the default allow-list refuses TestClient's "testserver"


@pytest.fixture
def settings(mongo_uri: str, database_name: str) -> Settings:
    return Settings(
        mongodb_uri=mongo_uri, database_name=database_name, collection_name=COLLECTION, demo_token_delay_ms=0
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, model=DemoModel()), base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def sessions(mongo_uri: str, database_name: str) -> Iterator:
    with MongoClient(mongo_uri) as mongo:
        yield mongo[database_name][COLLECTION]


def chat(api: TestClient, session_id: str, message: str) -> list[dict]:
    """Send a message and return the Server-Sent Events of the reply."""
    response = api.post("/api/chat/stream", json={"session_id": session_id, "message": message})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line.removeprefix("data: ")) for line in response.text.splitlines() if line.startswith("data: ")]


def answer(events: list[dict]) -> str:
    return "".join(event["text"] for event in events if event["type"] == "token")


def test_reply_streams_tokens_then_done_with_metrics(api):
    events = chat(api, "chat-1", "Hi! My name is Alice.")

    assert [event["type"] for event in events[:-1]] == ["token"] * (len(events) - 1)
    assert len(events) > 5, "the answer arrives in several tokens"
    assert answer(events) == "[demo model] Nice to meet you, Alice! I will remember your name."
    done = events[-1]
    assert done["type"] == "done"
    assert done["metrics"]["latencyMs"] > 0
    assert done["metrics"]["totalTokens"] == done["metrics"]["inputTokens"] + done["metrics"]["outputTokens"] > 0


def test_tool_call_and_its_result_are_streamed_before_the_answer(api):
    events = chat(api, "chat-1", "What is 12 * (3 + 4)?")

    assert events[0] == {"type": "tool", "name": "calculator", "input": {"expression": "12 * (3 + 4)"}}
    assert events[1] == {"type": "tool_result", "status": "success", "text": "84"}
    assert answer(events) == "[demo model] The result is 84."


def test_each_request_restores_the_conversation_from_mongodb(api, sessions):
    chat(api, "chat-1", "Hi! My name is Alice.")
    chat(api, "chat-1", "What is 6 * 7?")
    assert answer(chat(api, "chat-1", "What is my name?")) == "[demo model] Your name is Alice."

    history = api.get("/api/sessions/chat-1/history").json()
    shown = [(m["role"], m["text"], [c["name"] for c in m["tool_calls"]]) for m in history["messages"]]
    assert shown == [
        ("user", "Hi! My name is Alice.", []),
        ("assistant", "[demo model] Nice to meet you, Alice! I will remember your name.", []),
        ("user", "What is 6 * 7?", []),
        ("assistant", "", ["calculator"]),
        ("user", "", []),
        ("assistant", "[demo model] The result is 42.", []),
        ("user", "What is my name?", []),
        ("assistant", "[demo model] Your name is Alice.", []),
    ]
    assert history["messages"][4]["tool_results"] == [{"status": "success", "text": "42"}]
    assert [m["message_id"] for m in history["messages"]] == list(range(8))
    assert sessions.count_documents({}) == 1


def test_history_of_a_new_session_is_empty_and_creates_nothing(api, sessions):
    assert api.get("/api/sessions/chat-new/history").json() == {"session_id": "chat-new", "messages": []}
    assert sessions.count_documents({}) == 0


def test_session_info_shows_metadata_model_metrics_and_feedback(api):
    done = chat(api, "chat-1", "Hi! My name is Alice.")[-1]
    api.post("/api/sessions/chat-1/feedback", json={"rating": "down", "comment": "too short"})

    info = api.get("/api/sessions/chat-1").json()

    assert info["session_id"] == "chat-1"
    assert info["model"] == "demo-model"
    assert info["system_prompt"].startswith("You are a friendly assistant")
    assert info["message_count"] == 2
    assert info["metadata"]["channel"] == "playground"
    assert info["metadata"]["title"] == "Hi! My name is Alice."
    assert "last_message_at" in info["metadata"]
    assert info["latest_metrics"] == done["metrics"]
    assert [(f["rating"], f["comment"]) for f in info["feedbacks"]] == [("down", "too short")]
    assert info["created_at"] and info["updated_at"] and info["feedbacks"][0]["created_at"]


@pytest.mark.parametrize("layout", ["embedded", "collection", "promoted"])
def test_history_and_info_read_the_messages_in_either_layout(settings, sessions, layout):
    """PLAYGROUND_MESSAGE_STORAGE=embedded or collection, or an agent promoted by an operator meanwhile."""
    if layout == "collection":
        settings = settings.model_copy(update={"message_storage": "collection"})
    with TestClient(create_app(settings, model=DemoModel()), base_url=LOCAL) as api:
        chat(api, "chat-1", "Hi! My name is Alice.")
        if layout == "promoted":  # what an operator's `mongodb-session-manager migrate --to collection` does
            repository = MongoDBSessionRepository(
                client=sessions.database.client, database_name=sessions.database.name, collection_name=COLLECTION
            )
            assert repository.migrate_session("chat-1", to="collection")
        done = chat(api, "chat-1", "What is 6 * 7?")[-1]
        history = api.get("/api/sessions/chat-1/history").json()
        info = api.get("/api/sessions/chat-1").json()

    stored = sessions.find_one({"_id": "chat-1"})["agents"]["assistant"]
    in_collection = sessions.database[f"{COLLECTION}.messages"].count_documents({"session_id": "chat-1"})
    if layout == "embedded":
        assert len(stored["messages"]) == 6 and in_collection == 0
    else:
        assert stored["message_storage"] == "collection" and "messages" not in stored and in_collection == 6
    assert [(m["message_id"], m["role"]) for m in history["messages"]] == [
        (index, "user" if index % 2 == 0 else "assistant") for index in range(6)
    ]
    assert history["messages"][5]["text"] == "[demo model] The result is 42."
    assert info["message_count"] == 6
    assert info["latest_metrics"] == done["metrics"] == history["messages"][5]["metrics"]
    assert info["metadata"]["title"] == "Hi! My name is Alice."
    assert info["model"] == "demo-model" and info["system_prompt"].startswith("You are a friendly assistant")


def test_history_gives_each_answer_the_metrics_stored_with_it(api, sessions):
    first = chat(api, "chat-1", "Hi! My name is Alice.")[-1]["metrics"]
    second = chat(api, "chat-1", "What is 6 * 7?")[-1]["metrics"]

    history = api.get("/api/sessions/chat-1/history").json()["messages"]

    # only the message closing each invocation carries metrics: not the user's, not the tool call
    assert [m["metrics"] is not None for m in history] == [False, True, False, False, False, True]
    assert (history[1]["metrics"], history[5]["metrics"]) == (first, second)
    stored = sessions.find_one({"_id": "chat-1"})["agents"]["assistant"]["messages"][5]["event_loop_metrics"]
    assert second == {
        "latencyMs": stored["accumulated_metrics"]["latencyMs"],
        "timeToFirstByteMs": stored["accumulated_metrics"].get("timeToFirstByteMs"),
        "inputTokens": stored["accumulated_usage"]["inputTokens"],
        "outputTokens": stored["accumulated_usage"]["outputTokens"],
        "totalTokens": stored["accumulated_usage"]["totalTokens"],
    }
    assert second["latencyMs"] > 0 and second["totalTokens"] > 0


def test_session_info_shows_stored_values_as_json_like_the_viewer(api, sessions):
    chat(api, "chat-1", "Hello")
    repository = MongoDBSessionRepository(
        client=sessions.database.client, database_name=sessions.database.name, collection_name=COLLECTION
    )
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    repository.update_metadata(
        "chat-1", {"photo": b"\x89PNG", "seen": when, "ref": ObjectId("0123456789abcdef01234567"), "query": {"$gt": 1}}
    )

    metadata = api.get("/api/sessions/chat-1").json()["metadata"]

    assert metadata["photo"] == {"binary_size_bytes": 4}  # a size, never the bytes
    assert metadata["seen"] == "2025-01-02T03:04:05.000000+00:00"
    assert metadata["ref"] == "0123456789abcdef01234567"
    assert metadata["query"] == {"$gt": 1}  # read through the library: as it was written
    assert metadata["last_message_at"].endswith("+00:00")


def test_the_playground_reads_sessions_only_through_the_library():
    source = (STATIC_DIR / "api.py").read_text()
    assert not [term for term in ("repository.collection", "$agents", "agents.", ".aggregate(") if term in source]


def test_title_is_the_first_message_and_stays(api):
    chat(api, "chat-1", "Hi! My name is Alice.")
    chat(api, "chat-1", "What is 1 + 1?")
    assert api.get("/api/sessions/chat-1").json()["metadata"]["title"] == "Hi! My name is Alice."


def test_session_info_of_an_unknown_session_is_404(api):
    assert api.get("/api/sessions/chat-unknown").status_code == 404


def test_feedback_is_stored_in_the_session_document(api, sessions):
    chat(api, "chat-1", "Hello")

    response = api.post("/api/sessions/chat-1/feedback", json={"rating": "up", "comment": "  Great answer "})

    assert response.status_code == 201
    assert response.json()["feedback"]["rating"] == "up"
    stored = sessions.find_one({"_id": "chat-1"})["feedbacks"]
    assert [(f["rating"], f["comment"], f["source"]) for f in stored] == [("up", "Great answer", "playground")]
    assert stored[0]["created_at"] is not None


def test_feedback_without_rating_is_stored(api, sessions):
    chat(api, "chat-1", "Hello")
    assert api.post("/api/sessions/chat-1/feedback", json={"comment": "just a note"}).status_code == 201
    assert sessions.find_one({"_id": "chat-1"})["feedbacks"][0]["rating"] is None


def test_feedback_for_an_unknown_session_is_404_and_creates_nothing(api, sessions):
    response = api.post("/api/sessions/chat-unknown/feedback", json={"rating": "up"})
    assert response.status_code == 404
    assert sessions.count_documents({}) == 0


@pytest.mark.parametrize("body", [{"rating": "excellent"}, {"rating": "up", "comment": "x" * 1001}])
def test_invalid_feedback_is_refused(api, sessions, body):
    chat(api, "chat-1", "Hello")
    assert api.post("/api/sessions/chat-1/feedback", json=body).status_code == 422
    assert sessions.find_one({"_id": "chat-1"})["feedbacks"] == []


@pytest.mark.parametrize("session_id", ["", "has space", "a" * 129, "$where", "-starts-with-dash"])
def test_invalid_session_ids_are_refused(api, sessions, session_id):
    response = api.post("/api/chat/stream", json={"session_id": session_id, "message": "Hello"})
    assert response.status_code == 422
    assert sessions.count_documents({}) == 0


def test_invalid_session_id_in_the_path_is_refused(api):
    assert api.get("/api/sessions/has%20space").status_code == 422
    assert api.get("/api/sessions/has%20space/history").status_code == 422


def test_too_long_and_empty_messages_are_refused(mongo_uri, database_name, sessions):
    settings = Settings(mongodb_uri=mongo_uri, database_name=database_name, collection_name=COLLECTION)
    app = create_app(settings.model_copy(update={"max_message_chars": 10}), model=DemoModel())
    with TestClient(app, base_url=LOCAL) as api:
        for message in ["x" * 11, ""]:
            response = api.post("/api/chat/stream", json={"session_id": "chat-1", "message": message})
            assert response.status_code == 422
    assert sessions.count_documents({}) == 0


def test_a_failing_model_ends_the_stream_with_an_error_event(settings, caplog):
    with TestClient(create_app(settings, model=ScriptedModel([])), base_url=LOCAL) as api:
        events = chat(api, "chat-1", "Hello")
    assert events == [{"type": "error", "message": "The assistant could not answer; see the server log."}]
    assert "reply failed" in caplog.text


def test_info_labels_the_offline_demo_model(api):
    info = api.get("/api/info").json()
    assert info["demo_model"] is True
    assert info["model"].startswith("offline demo model")


def test_global_factory_lives_as_long_as_the_app(settings):
    with TestClient(create_app(settings, model=DemoModel()), base_url=LOCAL):
        factory = get_global_factory()
        assert factory.database_name == settings.database_name
        assert factory.get_connection_stats()["status"] == "connected"
    with pytest.raises(RuntimeError):
        get_global_factory()


def test_page_scripts_and_stylesheet_are_served_with_a_strict_policy(api):
    scripts = [f"/js/{path.name}" for path in sorted((STATIC_DIR / "js").glob("*.js"))]
    assert "/js/app.js" in scripts and len(scripts) > 5
    files = [("/chat.html", "text/html"), ("/chat.css", "text/css"), ("/static/common/dom.js", "text/javascript")]
    for name, media_type in files + [(script, "text/javascript") for script in scripts]:
        response = api.get(name)
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(media_type)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert api.head("/chat.html").status_code == 200
    assert api.get("/", follow_redirects=False).headers["location"] == "/chat.html"


def test_every_module_the_page_loads_is_served(api):
    """The page loads js/app.js; each module's imports (its own and the shared /static/common/dom.js) resolve."""
    assert '<script type="module" src="/js/app.js"></script>' in api.get("/chat.html").text
    seen, pending = set(), ["/js/app.js"]
    while pending:
        url = pending.pop()
        response = api.get(url)
        assert response.status_code == 200, url
        seen.add(url)
        for specifier in re.findall(r'^(?:import|export) .* from "([^"]+)";$', response.text, re.MULTILINE):
            target = (
                specifier if specifier.startswith("/") else url.rsplit("/", 1)[0] + "/" + specifier.removeprefix("./")
            )
            if target not in seen:
                pending.append(target)
    assert "/static/common/dom.js" in seen
    assert {f"/js/{path.name}" for path in (STATIC_DIR / "js").glob("*.js")} <= seen, "no module is left unused"


@pytest.mark.parametrize(
    "path",
    [
        "/app.py",
        "/server.py",
        "/Makefile",
        "/api.py",
        "/../pyproject.toml",
        "/chat-widget.js",
        "/js",
        "/js/",
        "/js/missing.js",
        "/js/%2E%2E%2Fapi.py",
        "/static/common",
        "/static/common/",
        "/static/common/values.py",
        "/static/common/%2E%2E%2Fvalues.py",
    ],
)
def test_source_files_are_not_served(api, path):
    assert api.get(path).status_code == 404


def test_frontend_never_parses_text_as_html():
    sinks = ["inner" + "HTML", "outer" + "HTML", "insertAdjacent" + "HTML", "document.write", "eval("]
    files = [STATIC_DIR / "chat.html", *sorted((STATIC_DIR / "js").glob("*.js")), COMMON_STATIC_DIR / "dom.js"]
    for path in files:
        source = path.read_text()
        assert not [sink for sink in sinks if sink in source], path.name
    assert "http" not in (STATIC_DIR / "chat.html").read_text().replace("http-equiv", ""), "no third-party files"


def test_describe_uri_never_shows_credentials():
    assert describe_uri("mongodb://user:secret@db.example.com:27017/app?authSource=admin") == (
        "mongodb://db.example.com:27017/app"
    )
    assert describe_uri("mongodb+srv://u:p@cluster0.example.net/") == "mongodb+srv://cluster0.example.net/"


def test_main_stops_with_a_message_on_invalid_configuration(monkeypatch, capsys):
    monkeypatch.setenv("PLAYGROUND_PORT", "not-a-port")
    assert main([]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_makefile_runs_the_console_script():
    makefile = (Path(STATIC_DIR) / "Makefile").read_text()
    assert "run:\n\tuv run --extra playground playground" in makefile


@pytest.mark.asyncio
async def test_paced_demo_stream_lets_the_agent_finish_before_the_tokens_are_shown():
    finished = []

    async def agent_events():
        for word in ["one", " two", " three"]:
            yield {"type": "token", "text": word}
        finished.append(True)  # the agent has persisted its answer
        yield {"type": "done", "metrics": {}}

    paced = _paced(agent_events(), delay=0.01)
    assert await anext(paced) == {"type": "token", "text": "one"}
    assert finished == [True], "the pauses are taken after the agent has run, never inside its model call"
    assert [event["type"] async for event in paced] == ["token", "token", "done"]


@pytest.mark.asyncio
async def test_paced_demo_stream_passes_on_the_agents_error():
    async def agent_events():
        yield {"type": "token", "text": "one"}
        raise RuntimeError("model failed")

    paced = _paced(agent_events(), delay=0.01)
    assert (await anext(paced))["text"] == "one"
    with pytest.raises(RuntimeError, match="model failed"):
        await anext(paced)


class HeldFirstReply(DemoModel):
    """The demo model, holding its first answer until a second request has reached the model."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.second_call = threading.Event()

    async def stream(self, messages, tool_specs=None, system_prompt=None, **kwargs):
        self.calls += 1
        if self.calls == 1:
            for _ in range(1000):
                if self.second_call.is_set():
                    break
                await asyncio.sleep(0.01)
        else:
            self.second_call.set()
        async for event in super().stream(messages, tool_specs, system_prompt, **kwargs):
            yield event


CONCURRENT_REPLY = {"type": "error", "message": "Another reply to this conversation was saved at the same time."}


async def send(client: httpx.AsyncClient, message: str) -> list[dict]:
    response = await client.post("/api/chat/stream", json={"session_id": "chat-1", "message": message})
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


@asynccontextmanager
async def serving(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client calling it in this event loop."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as client:
            yield client


def stored_ids(sessions) -> list[int]:
    messages = sessions.find_one({"_id": "chat-1"})["agents"]["assistant"]["messages"]
    return [message["message_id"] for message in messages]


@pytest.mark.asyncio
async def test_two_replies_racing_on_one_conversation_never_store_a_duplicate(settings, sessions):
    async with serving(create_app(settings, model=DemoModel())) as client:
        await send(client, "Hello")
    model = HeldFirstReply()

    async with serving(create_app(settings, model=model)) as client:
        first = asyncio.create_task(send(client, "My name is Alice."))
        while model.calls == 0:  # the first reply has stored its user message and waits in the model
            await asyncio.sleep(0.01)
        second = await send(client, "My name is Bob.")
        first = await first

    assert first[-1] == CONCURRENT_REPLY  # its answer would have reused the id of the second user message
    assert second[-1]["type"] == "done"
    ids = stored_ids(sessions)
    assert ids == sorted(set(ids)), "no message id is stored twice"


@pytest.mark.asyncio
async def test_first_messages_racing_on_a_new_session_both_open_it(settings, sessions):
    async with serving(create_app(settings, model=DemoModel())) as client:
        replies = await asyncio.gather(send(client, "My name is Alice."), send(client, "My name is Bob."))

    assert all(reply[-1]["type"] == "done" or reply[-1] == CONCURRENT_REPLY for reply in replies)
    assert any(reply[-1]["type"] == "done" for reply in replies)
    assert sessions.count_documents({}) == 1
    ids = stored_ids(sessions)
    assert ids == sorted(set(ids)), "no message id is stored twice"
