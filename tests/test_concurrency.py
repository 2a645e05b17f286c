"""Concurrency: a slow or unreachable MongoDB delays only the caller that waits for it, never the others.

Two places where that used to fail: index creation held a process-wide lock across its network call, and an
async agent (``stream_async`` / ``invoke_async``) did the manager's blocking writes on the event-loop thread.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.errors import OperationFailure
from strands import Agent
from strands.multiagent import GraphBuilder
from strands.types.content import Message
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager, StorageUnavailableError
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel

SERVER_SELECTION_TIMEOUT_MS = 1000
UNREACHABLE_URI = f"mongodb://127.0.0.1:1/?serverSelectionTimeoutMS={SERVER_SELECTION_TIMEOUT_MS}"
BLOCK_MS = 200
HEARTBEAT_SECONDS = 0.01
MAX_LOOP_STALL_SECONDS = 0.05
COLLECTION = "sessions"
AGENT_ID = "assistant"
SCRIPT = [{"tool": "calculator", "input": {"expression": "6 * 7"}, "id": "call-1"}, "It is 42."]


# --------------------------------------------------------------------------- index creation


def test_managers_built_in_parallel_against_an_unreachable_server_each_fail_after_one_timeout() -> None:
    threads = 8
    start = threading.Barrier(threads)
    outcomes: list[tuple[BaseException | None, float]] = []
    outcomes_lock = threading.Lock()

    def build() -> None:
        start.wait()
        began = time.perf_counter()
        error: BaseException | None = None
        try:
            MongoDBSessionManager("unreachable", connection_string=UNREACHABLE_URI, database_name="unreachable")
        except BaseException as raised:
            error = raised
        with outcomes_lock:
            outcomes.append((error, time.perf_counter() - began))

    workers = [threading.Thread(target=build) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert len(outcomes) == threads
    assert all(isinstance(error, StorageUnavailableError) for error, _ in outcomes), outcomes
    # Queued behind one another, the last would wait 8 timeouts; each on its own waits about one.
    slowest = max(elapsed for _, elapsed in outcomes)
    assert slowest < 3 * SERVER_SELECTION_TIMEOUT_MS / 1000, f"slowest construction took {slowest:.2f} s"


# --------------------------------------------------------------------------- async agents


@contextmanager
def _fail_point(client: MongoClient, mode: Any, data: dict[str, Any]) -> Iterator[None]:
    """Enable the server's ``failCommand`` failpoint; skip when the server does not offer test commands."""
    try:
        client.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})
    except OperationFailure as error:
        pytest.skip(f"server rejects configureFailPoint (needs enableTestCommands): {error}")
    try:
        yield
    finally:
        client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def _slow_server(client: MongoClient) -> AbstractContextManager[None]:
    """Make the server hold every insert, update, find and aggregate for ``BLOCK_MS`` before answering."""
    commands = ["insert", "update", "find", "aggregate"]
    return _fail_point(client, "alwaysOn", {"failCommands": commands, "blockConnection": True, "blockTimeMS": BLOCK_MS})


def _agent(client: MongoClient, database_name: str, session_id: str) -> Agent:
    manager = MongoDBSessionManager(session_id, client=client, database_name=database_name, collection_name=COLLECTION)
    return Agent(
        agent_id=AGENT_ID,
        model=ScriptedModel(SCRIPT),
        tools=[calculator],
        session_manager=manager,
        callback_handler=None,
    )


async def _max_loop_stall(turn: Callable[[], Awaitable[Any]]) -> float:
    """Run ``turn`` beside a heartbeat task; return the longest time the heartbeat waited beyond its sleep."""
    worst = 0.0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_SECONDS)
            worst = max(worst, time.perf_counter() - before - HEARTBEAT_SECONDS)

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    try:
        await turn()
    finally:
        done.set()
        await beating
    return worst


async def _drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def _stored(client: MongoClient, database_name: str, session_id: str) -> list[SessionMessage]:
    manager = MongoDBSessionManager(session_id, client=client, database_name=database_name, collection_name=COLLECTION)
    return manager.session_repository.list_messages(session_id, AGENT_ID)


def _run_independent(stored: list[SessionMessage]) -> list[tuple[int, dict[str, Any], Any]]:
    """What a run decides (ids, content, redaction): no timestamps, random tracking ids or measured latency."""
    return [(item.message_id, _without_run_details(item.message), item.redact_message) for item in stored]


def _without_run_details(message: Message) -> dict[str, Any]:
    kept: dict[str, Any] = {key: value for key, value in message.items() if key != "tracking_id"}
    if "metadata" in kept:
        kept["metadata"] = {**kept["metadata"], "metrics": {}}
    return kept


@pytest.mark.parametrize("mode", ["stream_async", "invoke_async"])
def test_an_async_turn_on_a_slow_server_never_stalls_the_event_loop_and_stores_what_a_sync_turn_stores(
    client: MongoClient, database_name: str, command_log: Any, mode: str
) -> None:
    sync_agent = _agent(client, database_name, "sync-session")
    sync_agent("What is 6 * 7?")

    async_agent = _agent(client, database_name, "async-session")
    command_log.clear()
    turn = {
        "stream_async": lambda: _drain(async_agent.stream_async("What is 6 * 7?")),
        "invoke_async": lambda: async_agent.invoke_async("What is 6 * 7?"),
    }[mode]
    with _slow_server(client):
        stall = asyncio.run(_max_loop_stall(turn))

    assert len(command_log.writes) >= 4, f"the turn's writes did not reach the server: {command_log.commands}"
    assert stall < MAX_LOOP_STALL_SECONDS, f"the event loop stalled for {stall * 1000:.0f} ms"
    stored = _stored(client, database_name, "async-session")
    assert [item.message for item in stored] == async_agent.messages
    assert _run_independent(stored) == _run_independent(_stored(client, database_name, "sync-session"))
    assert [item.message_id for item in stored] == [0, 1, 2, 3]


class _MultiAgentWrites(monitoring.CommandListener):
    """Records, in the order the server answered them, how many nodes each multi-agent state write had completed."""

    def __init__(self, multi_agent_id: str) -> None:
        self._field = f"multi_agents.{multi_agent_id}.state"
        self._pending: dict[int, int] = {}
        self.completed_nodes: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            state = event.command["updates"][0]["u"].get("$set", {}).get(self._field)
            if state is not None:
                self._pending[event.request_id] = len(state["completed_nodes"])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._pending:
            self.completed_nodes.append(self._pending.pop(event.request_id))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._pending.pop(event.request_id, None)


def test_state_writes_of_parallel_graph_nodes_land_in_the_order_the_nodes_finished(
    mongo_uri: str, database_name: str
) -> None:
    writes = _MultiAgentWrites("graph")
    with MongoClient(mongo_uri, event_listeners=[writes], heartbeatFrequencyMS=500) as client:
        manager = MongoDBSessionManager(
            "graph-session", client=client, database_name=database_name, collection_name=COLLECTION
        )
        builder = GraphBuilder()
        for name in ("left", "right"):  # two entry points: strands runs them as concurrent tasks
            builder.add_node(Agent(name=name, model=ScriptedModel(["done"]), callback_handler=None), name)
            builder.set_entry_point(name)
        builder.set_graph_id("graph")
        builder.set_execution_timeout(60)
        builder.set_session_manager(manager)
        graph = builder.build()

        # Only the first node's state write is held: the second node's newer state must not land before it.
        data = {"failCommands": ["update"], "blockConnection": True, "blockTimeMS": BLOCK_MS}
        with _fail_point(client, {"times": 1}, data):
            result = asyncio.run(graph.invoke_async("Go"))

    assert result.status.value == "completed"
    assert writes.completed_nodes == sorted(writes.completed_nodes), writes.completed_nodes
    assert writes.completed_nodes[-1] == 2
