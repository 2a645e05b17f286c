"""Async streaming with ``agent.stream_async``: tokens as they arrive, metrics at the end, several streams at once.

Run it with ``uv run python examples/example_stream_async.py`` (embedded MongoDB and the offline demo model when
nothing is configured).

1. One agent streams two answers; the script prints each token as it arrives, the tool call, the time to the
   first token, and the metrics strands reports for the turn.
2. Three sessions stream concurrently on one event loop, each with its own manager and agent.
3. The event-loop metrics the session manager stored on each latest answer are read back from MongoDB.
"""

import asyncio
import time
import uuid

from strands import Agent
from strands.models import Model

from mongodb_session_manager import MongoDBSessionManager, create_mongodb_session_manager
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

AGENT_ID = "assistant"


def new_session(session_id: str, model: Model) -> tuple[Agent, MongoDBSessionManager]:
    session_manager = create_mongodb_session_manager(session_id=session_id)
    agent = Agent(
        agent_id=AGENT_ID,
        model=model,
        tools=[calculator],
        system_prompt="You are a helpful assistant. Use the calculator tool for arithmetic.",
        session_manager=session_manager,
        callback_handler=None,
    )
    return agent, session_manager


async def stream_and_print(agent: Agent, prompt: str) -> None:
    """Stream one answer, printing tokens as they arrive."""
    print(f"  user:      {prompt}")
    print("  assistant: ", end="", flush=True)
    started = time.perf_counter()
    first_token_ms = None
    tokens = 0
    async for event in agent.stream_async(prompt):
        if event.get("data"):
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - started) * 1000
            tokens += 1
            print(event["data"], end="", flush=True)
        elif "message" in event and any("toolUse" in block for block in event["message"]["content"]):
            names = [block["toolUse"]["name"] for block in event["message"]["content"] if "toolUse" in block]
            print(f"[called {', '.join(names)}] ", end="", flush=True)
        elif "result" in event:
            result = event["result"]
            print(
                f"\n    {tokens} token events, the first after {first_token_ms or 0:.1f} ms; strands' metrics so far: "
                f"usage {result.metrics.accumulated_usage}, model latency "
                f"{result.metrics.accumulated_metrics['latencyMs']} ms"
            )


async def stream_quietly(agent: Agent, prompt: str) -> tuple[int, str]:
    """Stream one answer without printing; return the number of token events and the text."""
    chunks = [event["data"] async for event in agent.stream_async(prompt) if event.get("data")]
    return len(chunks), "".join(chunks)


async def main() -> None:
    model = create_model()
    print(f"Model: {describe_model(model)}")

    session_id = f"stream-async-{uuid.uuid4().hex[:8]}"
    print(f"1. Streaming in session {session_id!r}:")
    # Opening a session reads MongoDB: do it off the event loop, as a server handling other requests must.
    agent, session_manager = await asyncio.to_thread(new_session, session_id, model)
    await stream_and_print(agent, "Hi! My name is Alice.")
    await stream_and_print(agent, "What is 12 * (3 + 4)?")

    print("2. Three sessions streaming concurrently:")
    sessions = await asyncio.gather(
        *(asyncio.to_thread(new_session, f"stream-async-{uuid.uuid4().hex[:8]}", model) for _ in range(3))
    )
    prompts = ["What is 1 + 2?", "My name is Bob.", "What is 10 / 4?"]
    results = await asyncio.gather(*(stream_quietly(agent, p) for (agent, _), p in zip(sessions, prompts, strict=True)))
    for (_agent, manager), prompt, (tokens, text) in zip(sessions, prompts, results, strict=True):
        print(f"  {manager.session_id}: {prompt!r} -> {text.strip()!r} ({tokens} token events)")

    print("3. Metrics stored by the session manager on each latest answer:")
    for _agent, manager in [(agent, session_manager), *sessions]:
        latest = manager.session_repository.latest_message_document(manager.session_id, AGENT_ID)
        stored = latest["event_loop_metrics"]
        print(
            f"  {manager.session_id}: latency {stored['accumulated_metrics']['latencyMs']} ms, "
            f"total tokens {stored['accumulated_usage']['totalTokens']}"
        )
        manager.close()


if __name__ == "__main__":
    require_mongodb("example_stream_async")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    asyncio.run(main())
