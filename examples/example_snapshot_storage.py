"""Snapshot sessions, checkpoints and a memory store, all on MongoDB through ``MongoDBStorage``.

Run it with ``uv run python examples/example_snapshot_storage.py`` (embedded MongoDB and the offline demo model
when nothing is configured).

1. An agent with a tool runs under strands' ``SnapshotSessionManager``: the whole agent is saved as one
   snapshot after each invocation, plus an immutable checkpoint each time (``snapshot_trigger``).
2. A new agent with the same session id comes back with its messages and state; the first checkpoint is
   restored (time travel).
3. A ``FileMemoryStore`` on the same storage keeps notes and finds them again.
"""

import asyncio
import uuid

from strands import Agent
from strands.session import SnapshotSessionManager
from strands.vended_memory_stores.file_memory_store import FileMemoryStore

from mongodb_session_manager import MongoDBStorage
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.documents import DEFAULT_DATABASE
from mongodb_session_manager.startup import require_mongodb


def make_agent(storage: MongoDBStorage, session_id: str) -> tuple[Agent, SnapshotSessionManager]:
    """Build the agent; its manager restores the latest snapshot of the session, if there is one."""
    manager = SnapshotSessionManager(session_id, storage=storage, snapshot_trigger=lambda *, agent_data, **_: True)
    agent = Agent(
        agent_id="assistant",
        model=create_model(),
        tools=[calculator],
        session_manager=manager,
        callback_handler=None,
    )
    return agent, manager


def main() -> None:
    session_id = f"snapshots-{uuid.uuid4().hex[:8]}"
    storage = MongoDBStorage()  # the library's default database, collection "strands_storage"
    agent, _ = make_agent(storage, session_id)
    print(f"Model: {describe_model(agent.model)}")
    print(f"Session {session_id!r}:")
    for prompt in ("Hi! My name is Alice.", "What is 12 * (3 + 4)?"):
        print(f"  user:      {prompt}")
        print(f"  assistant: {str(agent(prompt)).strip()}")
    agent.state.set("favourite_number", 84)
    agent("Thanks!")

    keys = asyncio.run(storage.list(f"session/{session_id}/"))
    print(f"stored {len(keys)} blobs in {DEFAULT_DATABASE}.strands_storage:")
    for key in keys:
        print(f"  {key}")

    resumed, manager = make_agent(storage, session_id)
    print(f"a new agent restored {len(resumed.messages)} messages and state {resumed.state.get()}")
    checkpoints = asyncio.run(manager.list_snapshot_ids(resumed))
    asyncio.run(manager.restore_snapshot(resumed, snapshot_id=checkpoints[0]))
    print(f"checkpoints: {len(checkpoints)}; restored the first: {len(resumed.messages)} messages")

    notes = FileMemoryStore(name="team-notes", storage=storage)
    asyncio.run(notes.add("# Deployment\nWe deploy with blue green releases."))
    asyncio.run(notes.add("# Code style\nFormat Python with ruff."))
    found = asyncio.run(notes.search("how do we deploy"))
    print(f"memory search 'how do we deploy': {[entry.metadata['path'] for entry in found]}")


if __name__ == "__main__":
    require_mongodb("example_snapshot_storage")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
