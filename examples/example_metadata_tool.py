"""The ``manage_metadata`` tool: an agent reads and writes its session's metadata, and your code can call it too.

Run it with ``uv run python examples/example_metadata_tool.py`` (embedded MongoDB and the offline demo model when
nothing is configured).

1. An agent gets ``session_manager.get_metadata_tool()``. A real model decides by itself to call
   ``manage_metadata(action="set", metadata={...})``. The offline demo model only knows the calculator, so the
   script then invokes the agent's tool itself with ``agent.tool.manage_metadata(...)``: the call and its result are
   recorded in the conversation like a model's tool call.
2. The same tool called directly as a function: get, set, get some keys, delete, JSON text input, and errors.
   Every call goes through the manager, so metadata hooks see it too.
"""

import uuid

from strands import Agent

from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.demo_model import DemoModel, create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

SYSTEM_PROMPT = (
    "You are a helpful assistant. When the user tells you something about themselves, store it in the session "
    "metadata with the manage_metadata tool (action 'set'), using short snake_case keys."
)


def called_tools(agent: Agent) -> list[str]:
    """Names of the tools called so far in the conversation."""
    return [block["toolUse"]["name"] for m in agent.messages for block in m["content"] if "toolUse" in block]


def main() -> None:
    session_id = f"metadata-tool-{uuid.uuid4().hex[:8]}"
    model = create_model()
    print(f"Model: {describe_model(model)}")
    print(f"Session {session_id!r}")

    with create_mongodb_session_manager(session_id=session_id) as session_manager:
        metadata_tool = session_manager.get_metadata_tool()

        print("1. The agent uses the tool")
        agent = Agent(
            agent_id="assistant",
            model=model,
            tools=[metadata_tool],
            system_prompt=SYSTEM_PROMPT,
            session_manager=session_manager,
            callback_handler=None,
        )
        prompt = "My name is Alice and I prefer the dark theme. Please remember that in this session."
        print(f"  user:      {prompt}")
        print(f"  assistant: {str(agent(prompt)).strip()}")
        if "manage_metadata" in called_tools(agent):
            print("  the model called manage_metadata by itself")
        else:
            reason = "the offline demo model never calls it" if isinstance(model, DemoModel) else "the model did not"
            print(f"  ({reason}; the app invokes the agent's tool instead)")
            result = agent.tool.manage_metadata(action="set", metadata={"user_name": "Alice", "theme": "dark"})
            print(f"  agent.tool.manage_metadata(action='set', ...) -> {result['content'][0]['text']}")
        print(f"  stored metadata: {session_manager.get_metadata()['metadata']}")
        print(f"  tool calls in the stored conversation: {called_tools(agent)} ({len(agent.messages)} messages)")

        print("2. Direct calls, as a plain function")
        calls = [
            {"action": "get"},
            {"action": "set", "metadata": {"status": "active", "level": 5, "preferences.language": "en"}},
            {"action": "get", "keys": ["status", "level"]},
            {"action": "update", "metadata": '{"level": 6}'},
            {"action": "delete", "keys": ["theme"]},
            {"action": "get"},
            {"action": "archive"},
            {"action": "set", "metadata": {"$bad key": 1}},
        ]
        for arguments in calls:
            shown = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
            print(f"  manage_metadata({shown})\n    -> {metadata_tool(**arguments)}")


if __name__ == "__main__":
    require_mongodb("example_metadata_tool")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
