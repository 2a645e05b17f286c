"""Agent configuration persistence: the model id and system prompt of every agent are stored with the session.

Run it with ``uv run python examples/example_agent_config.py`` (embedded MongoDB and the offline demo model
when nothing is configured).

1. Two agents talk in one session; their model and system prompt are captured automatically.
2. ``list_agents()`` and ``get_agent_config(agent_id)`` read them back; ``update_agent_config`` changes one.
3. A later request rebuilds the agent from the stored configuration instead of hard-coding it.
"""

import uuid

from strands import Agent

from mongodb_session_manager import SessionNotFoundError, create_mongodb_session_manager
from mongodb_session_manager.demo_model import create_model, describe_model
from mongodb_session_manager.startup import require_mongodb


def main() -> None:
    session_id = f"agent-config-{uuid.uuid4().hex[:8]}"
    model = create_model()
    print(f"Model: {describe_model(model)}")
    print(f"Session {session_id!r}")

    with create_mongodb_session_manager(session_id=session_id) as session_manager:
        support = Agent(
            agent_id="support",
            model=model,
            system_prompt="You answer customer questions politely.",
            session_manager=session_manager,
            callback_handler=None,
        )
        reviewer = Agent(
            agent_id="reviewer",
            model=model,
            system_prompt="You check answers for mistakes.",
            session_manager=session_manager,
            callback_handler=None,
        )
        print(f"  support:  {str(support('Hello, my name is Alice.')).strip()}")
        print(f"  reviewer: {str(reviewer('Was that answer friendly?')).strip()}")

        print("list_agents():")
        for config in session_manager.list_agents():
            print(f"  {config['agent_id']}: model={config['model']!r}, system_prompt={config['system_prompt']!r}")

        session_manager.update_agent_config("support", system_prompt="You answer customer questions in one sentence.")
        print(f"after update_agent_config: {session_manager.get_agent_config('support')}")

        try:
            session_manager.update_agent_config("nobody", system_prompt="...")
        except SessionNotFoundError as error:
            print(f"update_agent_config on an unknown agent raises {type(error).__name__}: {error}")

    print("A later request rebuilds the agent from what is stored:")
    with create_mongodb_session_manager(session_id=session_id) as session_manager:
        config = session_manager.get_agent_config("support")
        print(f"  stored model id {config['model']!r} (pick the provider's model with it in your app)")
        support = Agent(
            agent_id="support",
            model=create_model(),
            system_prompt=config["system_prompt"],
            session_manager=session_manager,
            callback_handler=None,
        )
        print(f"  restored {len(support.messages)} messages; system prompt {support.system_prompt!r}")
        print(f"  support:  {str(support('What is my name?')).strip()}")


if __name__ == "__main__":
    require_mongodb("example_agent_config")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
