"""FastAPI with the global factory: one MongoDB client for the whole app, one session manager per request.

Run it with ``uv run --extra playground python examples/example_fastapi.py`` (the extra brings FastAPI): it
serves the app on a free local port, sends a few real HTTP requests with httpx from a second thread, prints the
answers and ``/metrics``, shuts down and exits. ``--serve`` keeps serving (http://127.0.0.1:8881/docs) for manual
use.

* The lifespan calls ``initialize_global_factory`` at start-up and ``close_global_factory`` at shutdown.
* Each request asks ``get_global_factory().create_session_manager(session_id)`` for a manager (no new
  connection) and builds a fresh agent: the server keeps nothing in memory between requests, the
  conversation comes back from MongoDB.
* ``GET /metrics`` returns the shared pool's stats (hosts, options, live connection counts; no credentials).
"""

import argparse
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from strands import Agent

from mongodb_session_manager import close_global_factory, get_global_factory, initialize_global_factory
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

SYSTEM_PROMPT = "You are a helpful assistant. Use the calculator tool for arithmetic."
SERVE_PORT = 8881
"""Port of ``--serve``: the playground uses 8880 and the Session Viewer 8882, so all can run at once."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the shared MongoDB client once for the app, and close it when the app stops."""
    initialize_global_factory(maxPoolSize=50)  # the library's default database and collection
    app.state.model = create_model()
    print(f"[server] factory initialized; model: {describe_model(app.state.model)}")
    yield
    close_global_factory()
    print("[server] factory closed")


app = FastAPI(title="mongodb-session-manager FastAPI example", lifespan=lifespan)


class ChatRequest(BaseModel):
    session_id: str = Field(pattern=r"^[\w.:-]{1,128}$")
    message: str = Field(min_length=1, max_length=4000)


class ChatResponse(BaseModel):
    session_id: str
    answer: str
    messages_in_session: int
    metrics: dict[str, Any]


@app.post("/chat")
def chat(body: ChatRequest, request: Request) -> ChatResponse:
    """Answer one message; a plain ``def`` route, so FastAPI runs it in its thread pool (pymongo is blocking)."""
    with get_global_factory().create_session_manager(body.session_id) as session_manager:
        agent = Agent(
            agent_id="assistant",
            model=request.app.state.model,
            tools=[calculator],
            system_prompt=SYSTEM_PROMPT,
            session_manager=session_manager,
            callback_handler=None,
        )
        result = agent(body.message)
    return ChatResponse(
        session_id=body.session_id,
        answer=str(result).strip(),
        messages_in_session=len(agent.messages),
        metrics={**result.metrics.accumulated_usage, **result.metrics.accumulated_metrics},
    )


@app.get("/metrics")
def metrics() -> dict[str, Any]:
    """Connection pool stats of the global factory."""
    return get_global_factory().get_connection_stats()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def wait_until_serving(server: uvicorn.Server) -> str:
    """Wait for the server to listen and return its URL."""
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_requests(url: str) -> None:
    """What a client of the API does: chat three times in one session, then read /metrics."""
    print(f"Serving on {url}")
    session_id = f"fastapi-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=120) as client:
        for message in ["Hi! My name is Alice.", "What is 21 * 2?", "What is my name?"]:
            reply = client.post("/chat", json={"session_id": session_id, "message": message})
            reply.raise_for_status()
            answer = reply.json()
            print(f"POST /chat {message!r}")
            print(f"  -> {answer['answer']}  ({answer['messages_in_session']} messages in the session)")
        stats = client.get("/metrics").json()
        print(f"GET /metrics: status={stats['status']} hosts={stats['hosts']} connections={stats['connections']}")
        print(f"  pool options: {stats['options']}")
    print("Each request used a new session manager and a new agent on the one shared client.")


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
    require_mongodb("example_fastapi")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if args.serve:
        uvicorn.run(app, host="127.0.0.1", port=args.port)
    else:
        demo()
