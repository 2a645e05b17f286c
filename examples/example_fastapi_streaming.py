"""FastAPI streaming (Server-Sent Events) with the global factory: answers arrive token by token.

Run it with ``uv run --extra playground python examples/example_fastapi_streaming.py`` (the extra brings
FastAPI): it serves the app on a free local port, and a second thread posts messages with httpx and prints the SSE
events as they arrive, then reads ``/metrics``, shuts down and exits. ``--serve`` keeps serving on
http://127.0.0.1:8883 for manual use, e.g.::

    curl -N -X POST localhost:8883/chat/stream -H 'content-type: application/json' \\
         -d '{"session_id": "demo-1", "message": "What is 6 * 7?"}'

``POST /chat/stream`` answers with ``text/event-stream``: ``data: {"type": "token", "text": ...}`` for each
token, ``{"type": "tool", "name": ...}`` when the agent calls a tool, then ``{"type": "done", "metrics": {...}}``
(or ``{"type": "error", ...}``). One session manager per request from the global factory; the agent is built
per request and its history restored from MongoDB. The chat playground (``uv run --extra playground playground``)
is a fuller version of this backend with a browser UI.
"""

import argparse
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from strands import Agent
from strands.models import Model

from mongodb_session_manager import (
    MongoDBSessionManager,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

SYSTEM_PROMPT = "You are a helpful assistant. Use the calculator tool for arithmetic."
SERVE_PORT = 8883
"""Port of ``--serve``: the playground uses 8880 and the Session Viewer 8882, so all can run at once."""

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the shared MongoDB client once for the app, and close it when the app stops."""
    initialize_global_factory()  # the library's default database and collection
    app.state.model = create_model()
    print(f"[server] factory initialized; model: {describe_model(app.state.model)}")
    yield
    close_global_factory()
    print("[server] factory closed")


app = FastAPI(title="mongodb-session-manager streaming example", lifespan=lifespan)


class ChatRequest(BaseModel):
    session_id: str = Field(pattern=r"^[\w.:-]{1,128}$")
    message: str = Field(min_length=1, max_length=4000)


def sse(event: dict[str, Any]) -> str:
    """One Server-Sent Event carrying JSON."""
    return f"data: {json.dumps(event)}\n\n"


def new_agent(session_manager: MongoDBSessionManager, model: Model) -> Agent:
    """A fresh agent for this request; the session manager restores its history from MongoDB."""
    return Agent(
        agent_id="assistant",
        model=model,
        tools=[calculator],
        system_prompt=SYSTEM_PROMPT,
        session_manager=session_manager,
        callback_handler=None,
    )


async def reply_events(session_id: str, message: str, model: Model) -> AsyncIterator[str]:
    """Stream the agent's answer as SSE events; the session is persisted as the agent goes."""
    # Opening the session and restoring the agent read MongoDB: run them in the thread pool.
    session_manager = await run_in_threadpool(get_global_factory().create_session_manager, session_id)
    try:
        agent = await run_in_threadpool(new_agent, session_manager, model)
        announced: set[str] = set()
        metrics: dict[str, Any] = {}
        async for event in agent.stream_async(message):
            if event.get("data"):
                yield sse({"type": "token", "text": event["data"]})
            elif "current_tool_use" in event:
                tool_use = event["current_tool_use"]
                if tool_use.get("name") and tool_use.get("toolUseId") not in announced:
                    announced.add(tool_use.get("toolUseId"))
                    yield sse({"type": "tool", "name": tool_use["name"]})
            elif "result" in event:
                result = event["result"]
                metrics = {**result.metrics.accumulated_usage, **result.metrics.accumulated_metrics}
        yield sse({"type": "done", "metrics": metrics})
    except Exception:
        logger.exception("session_id=<%s> | streaming reply failed", session_id)
        yield sse({"type": "error", "message": "the reply failed; see the server log"})
    finally:
        session_manager.close()


@app.post("/chat/stream")
async def chat_stream(body: ChatRequest, request: Request) -> StreamingResponse:
    """Answer one message as a stream of Server-Sent Events."""
    return StreamingResponse(
        reply_events(body.session_id, body.message, request.app.state.model),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@app.get("/metrics")
def metrics() -> dict[str, Any]:
    """Connection pool stats of the global factory."""
    return get_global_factory().get_connection_stats()


def wait_until_serving(server: uvicorn.Server) -> str:
    """Wait for the server to listen and return its URL."""
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}"


def stream_one(client: httpx.Client, session_id: str, message: str) -> None:
    """Post a message and print the answer token by token as the events arrive."""
    print(f"  user:      {message}")
    print("  assistant: ", end="", flush=True)
    tokens = 0
    with client.stream("POST", "/chat/stream", json={"session_id": session_id, "message": message}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            if event["type"] == "token":
                tokens += 1
                print(event["text"], end="", flush=True)
            elif event["type"] == "tool":
                print(f"[calling {event['name']}] ", end="", flush=True)
            elif event["type"] == "done":
                print(f"\n  done after {tokens} token events; metrics {event['metrics']}")
            else:
                raise RuntimeError(f"the server reported: {event}")


def make_requests(url: str) -> None:
    """What a client does: stream three answers in one session, then read /metrics."""
    print(f"Serving on {url}")
    session_id = f"fastapi-streaming-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=120) as client:
        for message in ["Hi! My name is Alice.", "What is 6 * 7?", "What is my name?"]:
            stream_one(client, session_id, message)
        stats = client.get("/metrics").json()
        print(f"GET /metrics: status={stats['status']} hosts={stats['hosts']} connections={stats['connections']}")


def demo() -> None:
    """Serve the app on a free local port while a second thread makes the requests, then stop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    failures: list[BaseException] = []

    def client_side() -> None:
        try:
            make_requests(wait_until_serving(server))
        except BaseException as error:
            failures.append(error)
        finally:
            server.should_exit = True

    threading.Thread(target=client_side, daemon=True).start()
    server.run()  # returns when client_side sets should_exit; the lifespan then closes the factory
    if failures:
        raise failures[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep serving instead of running the demo requests")
    parser.add_argument("--port", type=int, default=SERVE_PORT, help=f"port of --serve (default {SERVE_PORT})")
    args = parser.parse_args()
    require_mongodb("example_fastapi_streaming")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if args.serve:
        uvicorn.run(app, host="127.0.0.1", port=args.port)
    else:
        demo()
