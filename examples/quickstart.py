"""Quick start: an agent whose history survives into a new process (STRANDS_MODEL_PROVIDER=bedrock: a real model).

Run it with ``uv run python examples/quickstart.py``. With no ``MONGODB_URI`` it uses the embedded
development MongoDB server (a background process shared with the other examples); unless ``STRANDS_MODEL_PROVIDER``
names a provider (``bedrock``, ``anthropic`` or ``openai``) it uses the offline demo model
(``mongodb_session_manager.demo_model``), whatever credentials the environment holds.

1. This process talks to an agent (one tool call included) and stores some agent state.
2. It then starts a NEW Python process that opens the same session id and agent id: the history and
   the state come back from MongoDB, and the agent answers a question only the history can answer.
"""

import json
import os
import subprocess
import sys
import uuid

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, create_mongodb_session_manager
from mongodb_session_manager.demo_model import calculator, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

AGENT_ID = "assistant"
SYSTEM_PROMPT = "You are a helpful assistant. Use the calculator for arithmetic."


def make_agent(session_id: str) -> tuple[Agent, MongoDBSessionManager]:
    """Open the session (created on first use) and attach it to a new agent.

    The session lives in the library's default database and collection, where the Session Viewer looks first.
    """
    session_manager = create_mongodb_session_manager(session_id=session_id)
    agent = Agent(
        agent_id=AGENT_ID,
        model=create_model(),
        system_prompt=SYSTEM_PROMPT,
        tools=[calculator],
        session_manager=session_manager,
        callback_handler=None,
    )
    return agent, session_manager


def ask(agent: Agent, prompt: str) -> None:
    """Send one prompt and print the exchange, with the tool calls the agent made on the way."""
    print(f"  user:      {prompt}")
    before = len(agent.messages)
    answer = str(agent(prompt)).strip()
    for message in agent.messages[before:]:
        for block in message["content"]:
            if "toolUse" in block:
                call = block["toolUse"]
                print(f"  tool call: {call['name']}({json.dumps(call['input'])})")
            elif "toolResult" in block:
                result = " ".join(part.get("text", "") for part in block["toolResult"]["content"])
                print(f"  tool result: {result.strip()}")
    print(f"  assistant: {answer}")


def first_process(session_id: str) -> None:
    """Have a short conversation, then resume it in a child process."""
    agent, session_manager = make_agent(session_id)
    print(f"Model: {describe_model(agent.model)}")
    print(f"Session {session_id!r}, process 1 (pid {os.getpid()}):")
    ask(agent, "Hi! My name is Alice.")
    ask(agent, "What is 12 * (3 + 4)?")
    agent.state.set("favourite_number", 84)
    session_manager.sync_agent(agent)
    print(f"  stored {len(agent.messages)} messages and state {agent.state.get()}")
    session_manager.close()

    print("Starting a new process with the same session id...")
    subprocess.run([sys.executable, __file__, "--resume", session_id], check=True)
    print("Read it in the Session Viewer: uv run --extra viewer session-viewer")


def resumed_process(session_id: str) -> None:
    """Open the same session in a fresh process and show that everything came back."""
    agent, session_manager = make_agent(session_id)
    print(f"Session {session_id!r}, process 2 (pid {os.getpid()}, a new process):")
    print(f"  restored {len(agent.messages)} messages and state {agent.state.get()}")
    ask(agent, "What is my name?")
    print(f"  agent config: {session_manager.get_agent_config(AGENT_ID)}")
    session_manager.close()


if __name__ == "__main__":
    require_mongodb("quickstart")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if sys.argv[1:2] == ["--resume"]:
        resumed_process(sys.argv[2])
    else:
        first_process(f"quickstart-{uuid.uuid4().hex[:8]}")
