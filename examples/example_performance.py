"""Per-request connections vs the factory: what a new MongoDB client per request costs, measured on your setup.

Run it with ``uv run python examples/example_performance.py [--requests 30] [--concurrency 8]`` (embedded MongoDB
when ``MONGODB_URI`` is unset; point ``MONGODB_URI`` at your real deployment to measure what matters to you).

Each simulated web request opens the session, restores an agent, answers one message and updates the metadata:

* per request: ``MongoDBSessionManager(session_id, connection_string=...)`` builds and closes its own client;
* factory: ``factory.create_session_manager(session_id)`` borrows the one shared client.

Both run against the same MongoDB. The script prints median request times and their ratio, throughput with
concurrent requests, and what pymongo's monitoring saw: commands (round trips) and connections opened per
request. The numbers depend on the machine and above all on the network distance to MongoDB (TLS and
authentication make new connections dearer); nothing here is a promise. The model is always the offline demo
model: this measures the storage path, which a real model's latency would hide.
"""

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.demo_model import DemoModel, describe_model
from mongodb_session_manager.pool import ConnectionCounter
from mongodb_session_manager.startup import require_mongodb
from mongodb_session_manager.testing import CommandLog


class Monitor:
    """The listeners to give a client (the library's command log and connection counter), and their counts."""

    def __init__(self) -> None:
        self.commands, self.connections = CommandLog(count_bytes=False), ConnectionCounter()
        self.listeners = [self.commands, self.connections]
        self._connections_before = 0

    def reset(self) -> None:
        self.commands.clear()
        self._connections_before = self.connections.snapshot()["created_total"]

    @property
    def connections_opened(self) -> int:
        """Connections the client opened since the last ``reset``."""
        return self.connections.snapshot()["created_total"] - self._connections_before


def handle_request(session_manager: MongoDBSessionManager, model: DemoModel) -> None:
    """The work of one request: restore the agent, answer, update the metadata."""
    agent = Agent(agent_id="assistant", model=model, session_manager=session_manager, callback_handler=None)
    agent("My name is Alice.")
    session_manager.update_metadata({"last_request": time.time()})


def measure(name: str, run_one: Callable[[str], None], session_ids: list[str], monitor: Monitor, workers: int) -> dict:
    """Time each request sequentially, then the same number concurrently; return medians and counts."""
    run_one(f"{session_ids[0]}-warmup")
    monitor.reset()
    durations = []
    for session_id in session_ids:
        started = time.perf_counter()
        run_one(session_id)
        durations.append(time.perf_counter() - started)
    counts = {
        "commands": monitor.commands.round_trips / len(session_ids),
        "connections": monitor.connections_opened / len(session_ids),
    }
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run_one, [f"{session_id}-concurrent" for session_id in session_ids]))
    throughput = len(session_ids) / (time.perf_counter() - started)
    result = {"median_ms": statistics.median(durations) * 1000, "throughput": throughput, **counts}
    print(
        f"  {name:<12} median {result['median_ms']:6.1f} ms/request | {throughput:6.1f} requests/s with {workers} "
        f"threads | {result['commands']:.1f} commands and {result['connections']:.2f} new connections per request"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    uri = require_mongodb("example_performance")  # MONGODB_URI, or the embedded development server
    model = DemoModel()
    run = f"perf-{uuid.uuid4().hex[:8]}"
    print(f"Model: {describe_model(model)}")
    print(f"{args.requests} requests per approach, in the default database and collection (removed afterwards)")

    per_request_monitor = Monitor()

    def per_request(session_id: str) -> None:
        with MongoDBSessionManager(
            session_id,
            connection_string=uri,
            event_listeners=per_request_monitor.listeners,
        ) as session_manager:
            handle_request(session_manager, model)

    factory_monitor = Monitor()
    factory = MongoDBSessionManagerFactory(
        connection_string=uri,
        minPoolSize=0,  # no background pre-filling, so the counts show only what the requests needed
        event_listeners=factory_monitor.listeners,
    )

    def from_factory(session_id: str) -> None:
        with factory.create_session_manager(session_id) as session_manager:
            handle_request(session_manager, model)

    ids = [f"{run}-{i}" for i in range(args.requests)]
    slow = measure("per request", per_request, [f"{i}-a" for i in ids], per_request_monitor, args.concurrency)
    fast = measure("factory", from_factory, [f"{i}-b" for i in ids], factory_monitor, args.concurrency)

    print(
        f"Median ratio (per request / factory): {slow['median_ms'] / fast['median_ms']:.1f}x; "
        f"throughput ratio (factory / per request): {fast['throughput'] / slow['throughput']:.1f}x on this setup"
    )
    removed = (
        factory.client[factory.database_name][factory.collection_name]
        .delete_many({"_id": {"$regex": f"^{run}-"}})
        .deleted_count
    )
    print(f"Removed the {removed} sessions this run created")
    factory.close()


if __name__ == "__main__":
    main()
