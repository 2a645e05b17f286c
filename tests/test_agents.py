"""Real strands agents (scripted model) persisted by MongoDBSessionManager and resumed."""

import subprocess
import sys
import textwrap

import pytest
from strands import Agent, tool
from strands.agent.conversation_manager import SlidingWindowConversationManager

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


LAYOUTS = {
    "embedded": {},
    "collection": {"message_storage": "collection"},
    "promoted": {"max_embedded_messages": 2},  # agents move to the collection layout during the test
}


@pytest.fixture(params=list(LAYOUTS))
def manager_for(client, database_name, request):
    """Managers of one session store, run once per message layout (and once with agents promoted mid-test)."""

    def make(session_id: str = "s-1") -> MongoDBSessionManager:
        return MongoDBSessionManager(
            session_id, client=client, database_name=database_name, collection_name="c", **LAYOUTS[request.param]
        )

    return make


def test_sliding_window_state_restores_the_same_window(manager_for):
    window = SlidingWindowConversationManager(window_size=4, should_truncate_results=False)
    agent = Agent(
        agent_id="a",
        model=ScriptedModel([f"answer {i}" for i in range(5)]),
        session_manager=manager_for(),
        conversation_manager=window,
        callback_handler=None,
    )
    for i in range(5):
        agent(f"question {i}")
    assert window.removed_message_count > 0

    resumed_window = SlidingWindowConversationManager(window_size=4, should_truncate_results=False)
    resumed = Agent(
        agent_id="a",
        model=ScriptedModel(["more"]),
        session_manager=manager_for(),
        conversation_manager=resumed_window,
        callback_handler=None,
    )
    assert resumed_window.removed_message_count == window.removed_message_count
    assert resumed.messages == agent.messages


def test_two_agents_in_one_session_keep_separate_histories(manager_for, client, database_name):
    manager = manager_for()
    translator = Agent(
        agent_id="translator", model=ScriptedModel(["Kaixo"]), session_manager=manager, callback_handler=None
    )
    support = Agent(
        agent_id="support.v2", model=ScriptedModel(["Reset it"]), session_manager=manager, callback_handler=None
    )
    translator("Translate hello")
    support("How do I reset my password?")

    other = manager_for()
    resumed_translator = Agent(
        agent_id="translator", model=ScriptedModel([]), session_manager=other, callback_handler=None
    )
    resumed_support = Agent(
        agent_id="support.v2", model=ScriptedModel([]), session_manager=other, callback_handler=None
    )
    assert resumed_translator.messages == translator.messages
    assert resumed_support.messages == support.messages
    assert set(client[database_name]["c"].find_one({"_id": "s-1"})["agents"]) == {"translator", "support%2Ev2"}


def test_same_agent_id_twice_in_one_manager_is_refused(manager_for):
    manager = manager_for()
    Agent(agent_id="a", model=ScriptedModel([]), session_manager=manager, callback_handler=None)
    with pytest.raises(Exception, match="unique"):
        Agent(agent_id="a", model=ScriptedModel([]), session_manager=manager, callback_handler=None)


@pytest.mark.slow
def test_tool_conversation_resumes_in_a_new_process(mongo_uri, database_name):
    script = textwrap.dedent(
        """
        import sys
        from mongodb_session_manager.testing import ScriptedModel
        from strands import Agent, tool
        from mongodb_session_manager import MongoDBSessionManager

        @tool
        def add(a: int, b: int) -> int:
            '''Add two integers.'''
            return a + b

        uri, db, step = sys.argv[1:4]
        manager = MongoDBSessionManager("proc", connection_string=uri, database_name=db, collection_name="c")
        if step == "first":
            model = ScriptedModel([{"tool": "add", "input": {"a": 2, "b": 3}}, "The sum is 5."])
            agent = Agent(agent_id="calc", model=model, tools=[add], session_manager=manager, callback_handler=None)
            agent("What is 2 + 3?")
            agent.state.set("last_sum", 5)
            manager.sync_agent(agent)
        else:
            model = ScriptedModel(["You asked about 2 + 3."])
            agent = Agent(agent_id="calc", model=model, tools=[add], session_manager=manager, callback_handler=None)
            print(len(agent.messages), agent.state.get("last_sum"))
            agent("What did I ask?")
            print([m["role"] for m in model.calls[0]])
        manager.close()
        """
    )
    run = lambda step: subprocess.run(  # noqa: E731
        [sys.executable, "-c", script, mongo_uri, database_name, step],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run("first")
    lines = run("second").stdout.splitlines()
    assert lines[0] == "4 5"
    assert lines[1] == "['user', 'assistant', 'user', 'assistant', 'user']"


def test_redaction_replaces_the_latest_message(manager_for):
    manager = manager_for()
    agent = Agent(
        agent_id="a", model=ScriptedModel(["my card is 4111"]), session_manager=manager, callback_handler=None
    )
    agent("hello")
    redacted = {"role": "assistant", "content": [{"text": "[redacted]"}]}
    manager.redact_latest_message(redacted, agent)
    resumed = Agent(agent_id="a", model=ScriptedModel([]), session_manager=manager_for(), callback_handler=None)
    assert resumed.messages[-1] == redacted
