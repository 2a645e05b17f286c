"""The playground's agent, built fresh for every request: the session manager restores its conversation."""

from strands import Agent
from strands.models import Model

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.demo_model import calculator

AGENT_ID = "assistant"


def build_agent(session_manager: MongoDBSessionManager, model: Model, system_prompt: str) -> Agent:
    """Return a new agent for one request; its history, state and metrics are persisted by ``session_manager``."""
    return Agent(
        agent_id=AGENT_ID,
        name="Playground assistant",
        model=model,
        system_prompt=system_prompt,
        tools=[calculator, session_manager.get_metadata_tool()],
        session_manager=session_manager,
        callback_handler=None,
    )
