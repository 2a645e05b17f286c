"""Child process for ``test_multi_agent.py``: builds a Graph or Swarm persisted by ``MongoDBSessionManager``.

Usage::

    python multi_agent_child.py <step> <mongo_uri> <database_name> <session_id> [<json argument>]

Every step builds its multi-agent from scratch (as a new process after a restart would), runs it once and
prints one JSON report line prefixed with ``REPORT `` on stdout. Each node agent is a real ``strands.Agent``
driven by a ``ScriptedModel``; a node that must not run in a step gets an empty script, so calling its model
raises ``ScriptExhaustedError``. Node agents have no session manager of their own: strands rejects that
for Graph and Swarm nodes, only the orchestrator is persisted.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from strands import Agent, tool
from strands.multiagent import GraphBuilder, Swarm
from strands.types.tools import ToolContext

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

GRAPH_ID = "orders.graph"
SWARM_ID = "research.swarm"
TASK = "Summarise the quarterly numbers"
RESUME_TASK = "a different task, which a resumed run ignores in favour of the persisted one"
CRASH_EXIT_CODE = 17


def _report(**values: Any) -> None:
    print("REPORT " + json.dumps(values, default=str), flush=True)


def _texts(model: ScriptedModel) -> list[str]:
    """All text blocks of every request the model received, in order."""
    return [
        block["text"]
        for call in model.calls
        for message in call
        for block in message.get("content", [])
        if "text" in block
    ]


def _manager(uri: str, database: str, session_id: str) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        session_id=session_id, connection_string=uri, database_name=database, collection_name="sessions"
    )


# ----------------------------------------------------------------- graph A -> B


def _graph_step(uri: str, database: str, session_id: str, task: str, a_script: list[Any], b_script: list[Any]) -> None:
    a_model = ScriptedModel(a_script, model_id="model-a")
    b_model = ScriptedModel(b_script, model_id="model-b")
    manager = _manager(uri, database, session_id)
    builder = GraphBuilder()
    builder.add_node(Agent(name="A", model=a_model, callback_handler=None), "A")
    builder.add_node(Agent(name="B", model=b_model, callback_handler=None), "B")
    builder.add_edge("A", "B")
    builder.set_entry_point("A")
    builder.set_graph_id(GRAPH_ID)
    builder.set_execution_timeout(120)
    builder.set_node_timeout(60)
    builder.set_session_manager(manager)
    graph = builder.build()
    restored = {
        "resuming": graph._resume_from_session,
        "restored_completed": sorted(node.node_id for node in graph.state.completed_nodes),
        "restored_next": [node.node_id for node in graph._resume_next_nodes],
    }
    error = None
    result = None
    try:
        result = graph(task)
    except Exception as exc:  # the failing node's error propagates out of the graph
        error = f"{type(exc).__name__}: {exc}"
    _report(
        **restored,
        error=error,
        result_status=result.status.value if result else None,
        result_order=[node.node_id for node in result.execution_order] if result else None,
        state_status=graph.state.status.value,
        state_failed=sorted(node.node_id for node in graph.state.failed_nodes),
        a_calls=len(a_model.calls),
        b_calls=len(b_model.calls),
        b_texts=_texts(b_model),
        serialized=graph.serialize_state(),
    )
    manager.close()


def graph_fail(uri: str, database: str, session_id: str) -> None:
    """A answers; B's model has no script, so B raises and the graph fails after A completed."""
    _graph_step(uri, database, session_id, TASK, ["alpha figures are ready"], [])


def graph_resume(uri: str, database: str, session_id: str) -> None:
    """A must not run again (empty script); B now answers."""
    _graph_step(uri, database, session_id, RESUME_TASK, [], ["beta report written"])


# ----------------------------------------------------------------- swarm: crash after a handoff


@tool
def crash() -> str:
    """Simulate the process dying in the middle of a node (no cleanup, no final checkpoint)."""
    sys.stdout.flush()
    os._exit(CRASH_EXIT_CODE)


def _swarm_step(uri: str, database: str, session_id: str, task: str, researcher: list[Any], writer: list[Any]) -> None:
    researcher_model = ScriptedModel(researcher, model_id="model-researcher")
    writer_model = ScriptedModel(writer, model_id="model-writer")
    manager = _manager(uri, database, session_id)
    swarm = Swarm(
        [
            Agent(name="researcher", model=researcher_model, callback_handler=None),
            Agent(name="writer", model=writer_model, tools=[crash], callback_handler=None),
        ],
        session_manager=manager,
        id=SWARM_ID,
        execution_timeout=120,
        node_timeout=60,
    )
    restored = {
        "resuming": swarm._resume_from_session,
        "restored_current": swarm.state.current_node.node_id if swarm.state.current_node else None,
        "restored_history": [node.node_id for node in swarm.state.node_history],
    }
    result = swarm(task)
    _report(
        **restored,
        result_status=result.status.value,
        node_history=[node.node_id for node in result.node_history],
        result_nodes=sorted(result.results),
        researcher_calls=len(researcher_model.calls),
        writer_calls=len(writer_model.calls),
        writer_texts=_texts(writer_model),
        serialized=swarm.serialize_state(),
    )
    manager.close()


def swarm_crash(uri: str, database: str, session_id: str) -> None:
    """The researcher hands off to the writer, whose first action kills the process."""
    handoff = {
        "tool": "handoff_to_agent",
        "input": {
            "agent_name": "writer",
            "message": "draft the summary from my notes",
            "context": {"revenue": "up 12%"},
        },
    }
    _swarm_step(
        uri, database, session_id, TASK, [handoff, "handing off to the writer"], [{"tool": "crash", "input": {}}]
    )
    raise AssertionError("the crash tool should have ended the process")


def swarm_resume(uri: str, database: str, session_id: str) -> None:
    """The researcher must not run again (empty script); the writer finishes."""
    _swarm_step(uri, database, session_id, RESUME_TASK, [], ["final summary: revenue up 12%"])


# ----------------------------------------------------------------- swarm: interrupt inside a tool


@tool(context=True)
def weather(tool_context: ToolContext) -> str:
    """Ask a human for the weather (raises an interrupt until a response is given)."""
    return str(tool_context.interrupt("need_weather", reason="what is the weather?"))


def swarm_interrupt(uri: str, database: str, session_id: str, argument: str | None) -> None:
    """First run: the forecaster's tool interrupts. Second run (argument = interrupt id): answer and finish."""
    if argument is None:
        forecaster_script: list[Any] = [{"tool": "weather", "input": {}}]
        summarizer_script: list[Any] = []
        task: Any = TASK
    else:
        forecaster_script = [
            {
                "tool": "handoff_to_agent",
                "input": {"agent_name": "summarizer", "message": "the human says the weather is sunny"},
            },
            "handed off",
        ]
        summarizer_script = ["it will be sunny"]
        task = [{"interruptResponse": {"interruptId": argument, "response": "sunny"}}]
    forecaster_model = ScriptedModel(forecaster_script, model_id="model-forecaster")
    summarizer_model = ScriptedModel(summarizer_script, model_id="model-summarizer")
    manager = _manager(uri, database, session_id)
    swarm = Swarm(
        [
            Agent(name="forecaster", model=forecaster_model, tools=[weather], callback_handler=None),
            Agent(name="summarizer", model=summarizer_model, callback_handler=None),
        ],
        session_manager=manager,
        id=SWARM_ID,
        execution_timeout=120,
        node_timeout=60,
    )
    restored = {
        "resuming": swarm._resume_from_session,
        "interrupt_activated": swarm._interrupt_state.activated,
    }
    result = swarm(task)
    _report(
        **restored,
        result_status=result.status.value,
        interrupts=[interrupt.to_dict() for interrupt in result.interrupts],
        node_history=[node.node_id for node in result.node_history],
        forecaster_calls=len(forecaster_model.calls),
        forecaster_first_call=forecaster_model.calls[0] if forecaster_model.calls else None,
        summarizer_calls=len(summarizer_model.calls),
        summarizer_texts=_texts(summarizer_model),
        serialized=swarm.serialize_state(),
    )
    manager.close()


def main() -> None:
    step, uri, database, session_id, *rest = sys.argv[1:]
    argument = rest[0] if rest else None
    steps = {
        "graph_fail": graph_fail,
        "graph_resume": graph_resume,
        "swarm_crash": swarm_crash,
        "swarm_resume": swarm_resume,
    }
    if step == "swarm_interrupt":
        swarm_interrupt(uri, database, session_id, argument)
    else:
        steps[step](uri, database, session_id)


if __name__ == "__main__":
    main()
