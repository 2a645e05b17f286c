"""Calculator tool agent: the agent calls a tool, and the call, its result and the answer's metrics are stored.

Run it with ``uv run python examples/example_calculator_tool.py``. With no ``MONGODB_URI`` it uses the embedded
development MongoDB server; without ``STRANDS_MODEL_PROVIDER``, the offline demo model (which calls ``calculator`` for
arithmetic).

It prints each exchange, then what the session document holds for the agent: every message with its content
blocks (text, ``toolUse``, ``toolResult``) and the event-loop metrics stored on the latest answer.
"""

import uuid

from strands import Agent

from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

AGENT_ID = "calculator"
PROMPTS = ["What is 6 * 7?", "And what is (100 - 58) / 2?"]


def describe_block(block: dict) -> str:
    """One line for a stored content block."""
    if "text" in block:
        return f"text {block['text']!r}"
    if "toolUse" in block:
        return f"toolUse {block['toolUse']['name']}({block['toolUse']['input']})"
    if "toolResult" in block:
        result = block["toolResult"]
        return f"toolResult {result['status']}: {result['content'][0].get('text')!r}"
    return next(iter(block))


def main() -> None:
    session_id = f"calculator-{uuid.uuid4().hex[:8]}"
    model = create_model()
    print(f"Model: {describe_model(model)}")
    print(f"Session {session_id!r} (the library's default database and collection, where the viewer looks)")

    with create_mongodb_session_manager(session_id=session_id) as session_manager:
        agent = Agent(
            agent_id=AGENT_ID,
            model=model,
            tools=[calculator],
            system_prompt="You are a careful assistant. Always use the calculator tool for arithmetic.",
            session_manager=session_manager,
            callback_handler=None,
        )
        for prompt in PROMPTS:
            print(f"  user:      {prompt}")
            print(f"  assistant: {str(agent(prompt)).strip()}")

        print("Stored messages (read back from MongoDB):")
        for stored in session_manager.session_repository.list_messages(session_id, AGENT_ID):
            blocks = "; ".join(describe_block(block) for block in stored.message["content"])
            print(f"  #{stored.message_id} {stored.message['role']:<9} {blocks}")

        latest = session_manager.session_repository.latest_message_document(session_id, AGENT_ID)
        metrics = latest["event_loop_metrics"]
        print(
            "Event-loop metrics stored on the latest answer (its turn's model calls, tool cycle included): "
            f"latency {metrics['accumulated_metrics']['latencyMs']} ms, tokens {metrics['accumulated_usage']}"
        )


if __name__ == "__main__":
    require_mongodb("example_calculator_tool")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
