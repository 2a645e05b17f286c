"""Graphs and Swarms persisted by ``MongoDBSessionManager`` resume in a new process.

Each cross-process test runs ``multi_agent_child.py`` twice with ``sys.executable``: the first process
leaves a multi-agent half done (a failed node, a hard crash, an interrupt), the second builds the same
multi-agent from scratch with the same session id and multi-agent id and must continue from the state
stored in MongoDB. Node agents are real ``strands.Agent``s on ``ScriptedModel``; a node that must not run
again gets an empty script, so touching its model would raise. The stored state is read with pymongo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.multiagent import GraphBuilder, Swarm

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

CHILD = Path(__file__).resolve().parent / "multi_agent_child.py"
CHILD_TIMEOUT_SECONDS = 120
COLLECTION = "sessions"
TASK = "Summarise the quarterly numbers"
GRAPH_ID = "orders.graph"
GRAPH_KEY = "orders%2Egraph"
SWARM_ID = "research.swarm"
SWARM_KEY = "research%2Eswarm"
CRASH_EXIT_CODE = 17


def _run_child(
    step: str, mongo_uri: str, database_name: str, session_id: str, *extra: str, expect_rc: int = 0
) -> dict[str, Any] | None:
    """Run one child step in a fresh interpreter and return its JSON report (None when it printed none)."""
    completed = subprocess.run(
        [sys.executable, str(CHILD), step, mongo_uri, database_name, session_id, *extra],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        cwd=CHILD.parent,
    )
    assert completed.returncode == expect_rc, (
        f"step {step} exited {completed.returncode}, expected {expect_rc}\n"
        f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr[-4000:]}"
    )
    reports = [line[len("REPORT ") :] for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(reports[-1]) if reports else None


def _session_document(mongo_uri: str, database_name: str, session_id: str) -> dict[str, Any]:
    client: MongoClient[dict[str, Any]]
    with MongoClient(mongo_uri) as client:
        document = client[database_name][COLLECTION].find_one({"_id": session_id})
    assert document is not None, f"session {session_id} was not stored"
    return document


def _stored_state(mongo_uri: str, database_name: str, session_id: str, key: str) -> dict[str, Any]:
    """The multi-agent state exactly as MongoDB holds it, under its escaped key."""
    entries = _session_document(mongo_uri, database_name, session_id)["multi_agents"]
    assert key in entries, f"no multi-agent entry {key!r}; stored keys: {sorted(entries)}"
    return entries[key]["state"]


def _json(value: Any) -> Any:
    """Normalise a value the way the child's JSON report did, to compare it with one."""
    return json.loads(json.dumps(value, default=str))


# ----------------------------------------------------------------- 1. Graph A -> B


def _run_graph_failure_then_resume(mongo_uri: str, database_name: str) -> dict[str, Any]:
    session_id = f"graph-{uuid.uuid4().hex[:8]}"
    first = _run_child("graph_fail", mongo_uri, database_name, session_id)
    after_failure = _stored_state(mongo_uri, database_name, session_id, GRAPH_KEY)
    second = _run_child("graph_resume", mongo_uri, database_name, session_id)
    after_resume = _stored_state(mongo_uri, database_name, session_id, GRAPH_KEY)
    document = _session_document(mongo_uri, database_name, session_id)
    return {
        "first": first,
        "after_failure": after_failure,
        "second": second,
        "after_resume": after_resume,
        "document": document,
    }


@pytest.fixture(scope="module")
def graph_run(mongo_uri: str) -> Iterator[dict[str, Any]]:
    """The Graph failure-then-resume scenario, run once (two processes) for every test that reads it."""
    database_name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield _run_graph_failure_then_resume(mongo_uri, database_name)
    finally:
        with MongoClient(mongo_uri) as client:
            client.drop_database(database_name)


@pytest.mark.slow
def test_graph_failed_node_is_resumed_in_a_new_process(graph_run: dict[str, Any]) -> None:
    """A -> B: process 1 fails at B after A completed; process 2 runs only B, from the state in MongoDB.

    Asserted: after process 1 the stored state says A completed, B failed and B is next; process 2 restores
    that (A completed, B next) before running, never calls A's model (its script is empty), feeds B the
    persisted task and A's persisted answer, and stores B as completed with nothing left to run.
    The graph's overall status after the resume is asserted separately (see the xfail test below).
    """
    run = graph_run
    first, second = run["first"], run["second"]

    # Process 1: A ran, B's model raised and the error left the graph.
    assert first is not None
    assert first["resuming"] is False
    assert first["a_calls"] == 1
    assert first["b_calls"] == 1
    assert first["error"].startswith("ScriptExhaustedError")
    assert first["state_status"] == "failed"

    stored = run["after_failure"]
    assert stored["type"] == "graph"
    assert stored["id"] == GRAPH_ID
    assert stored["status"] == "failed"
    assert stored["completed_nodes"] == ["A"]
    assert stored["failed_nodes"] == ["B"]
    assert stored["next_nodes_to_execute"] == ["B"]
    assert stored["execution_order"] == ["A"]
    assert stored["current_task"] == TASK
    assert stored["node_results"]["A"]["status"] == "completed"
    assert stored["node_results"]["A"]["result"]["message"]["content"] == [{"text": "alpha figures are ready"}]
    assert stored["node_results"]["B"]["result"]["type"] == "exception"
    assert stored == first["serialized"], "the final checkpoint of process 1 is its serialize_state()"

    # Process 2: restored from MongoDB at construction, then only B ran.
    assert second is not None
    assert second["resuming"] is True
    assert second["restored_completed"] == ["A"]
    assert second["restored_next"] == ["B"]
    assert second["error"] is None
    assert second["a_calls"] == 0, "A's model must not be called again"
    assert second["b_calls"] == 1
    assert second["b_texts"] == [
        f"Original Task: {TASK}",
        "\nInputs from previous nodes:",
        "\nFrom A:",
        "  - Agent: alpha figures are ready\n",
    ], "B gets the persisted task and A's persisted answer, not the task passed to the resumed call"
    assert second["result_order"] == ["A", "B"]

    resumed = run["after_resume"]
    assert sorted(resumed["completed_nodes"]) == ["A", "B"]
    assert resumed["next_nodes_to_execute"] == []
    assert resumed["execution_order"] == ["A", "B"]
    assert resumed["node_results"]["B"]["status"] == "completed"
    assert resumed["node_results"]["B"]["result"]["message"]["content"] == [{"text": "beta report written"}]
    assert resumed["node_results"]["A"] == stored["node_results"]["A"]
    assert resumed["execution_count"] == 2
    assert resumed == second["serialized"]

    # Only the orchestrator is persisted: Graph node agents may not have a session manager of their own.
    assert run["document"]["agents"] == {}
    assert list(run["document"]["multi_agents"]) == [GRAPH_KEY]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "strands 1.62 Graph._from_dict restores failed_nodes and a successful re-run of B never removes B "
        "from it, so stream_async ends with Status.FAILED (B is both completed and failed); the same happens "
        "with strands' own FileSessionManager"
    ),
)
def test_graph_resumed_after_failure_reports_completed(graph_run: dict[str, Any]) -> None:
    """Once B succeeds on resume, the graph and its stored state should say ``completed``."""
    run = graph_run
    assert run["second"]["result_status"] == "completed"
    assert run["after_resume"]["status"] == "completed"
    assert run["after_resume"]["failed_nodes"] == []


# ----------------------------------------------------------------- 2. Swarm


@pytest.mark.slow
def test_swarm_resumes_at_persisted_node_after_process_crash(mongo_uri: str, database_name: str) -> None:
    """researcher -> writer: process 1 dies (``os._exit``) inside the writer; process 2 continues at the writer.

    What strands 1.62 supports (``Swarm.deserialize_state``): a swarm is resumable when the stored
    ``next_nodes_to_execute`` is non-empty, i.e. its status was ``executing`` (a crash mid-run) or
    ``interrupted``. A ``completed`` or ``failed`` swarm stores an empty frontier and restarts from the entry
    point, so "node raised" is *not* a resume point for a Swarm (unlike a Graph); a hard crash is.

    Asserted: the checkpoint written after the researcher's turn (``AfterNodeCallEvent``) survives the crash
    with status ``executing``, history ``[researcher]``, frontier ``[writer]``, the handoff message and the
    shared context. Process 2 restores exactly that at construction (current node ``writer``), never calls
    the researcher's model (empty script), hands the writer the persisted task, handoff message, history
    and shared context, and stores a completed swarm.
    """
    session_id = f"swarm-{uuid.uuid4().hex[:8]}"
    crashed = _run_child("swarm_crash", mongo_uri, database_name, session_id, expect_rc=CRASH_EXIT_CODE)
    assert crashed is None, "process 1 must die before reporting"

    stored = _stored_state(mongo_uri, database_name, session_id, SWARM_KEY)
    assert stored["type"] == "swarm"
    assert stored["id"] == SWARM_ID
    assert stored["status"] == "executing"
    assert stored["node_history"] == ["researcher"]
    assert stored["next_nodes_to_execute"] == ["writer"]
    assert stored["current_task"] == TASK
    assert stored["context"]["shared_context"] == {"researcher": {"revenue": "up 12%"}}
    assert stored["context"]["handoff_message"] == "draft the summary from my notes"
    assert sorted(stored["node_results"]) == ["researcher"]
    assert stored["node_results"]["researcher"]["status"] == "completed"

    resumed = _run_child("swarm_resume", mongo_uri, database_name, session_id)
    assert resumed is not None
    assert resumed["resuming"] is True
    assert resumed["restored_current"] == "writer"
    assert resumed["restored_history"] == ["researcher"]
    assert resumed["researcher_calls"] == 0, "the researcher's model must not be called again"
    assert resumed["writer_calls"] == 1
    (writer_input,) = resumed["writer_texts"]
    assert "Handoff Message: draft the summary from my notes" in writer_input
    assert f"User Request: {TASK}" in writer_input
    assert "Previous agents who worked on this: researcher" in writer_input
    assert "researcher: {'revenue': 'up 12%'}" in writer_input
    assert resumed["result_status"] == "completed"
    assert resumed["node_history"] == ["researcher", "writer"]
    assert resumed["result_nodes"] == ["researcher", "writer"]

    final = _stored_state(mongo_uri, database_name, session_id, SWARM_KEY)
    assert final["status"] == "completed"
    assert final["node_history"] == ["researcher", "writer"]
    assert final["next_nodes_to_execute"] == []
    assert final["node_results"]["researcher"] == stored["node_results"]["researcher"]
    assert final["node_results"]["writer"]["result"]["message"]["content"] == [
        {"text": "final summary: revenue up 12%"}
    ]
    assert final == resumed["serialized"]
    assert _session_document(mongo_uri, database_name, session_id)["agents"] == {}


@pytest.mark.slow
def test_swarm_interrupt_is_answered_in_a_new_process(mongo_uri: str, database_name: str) -> None:
    """A tool interrupt raised in process 1 is answered in process 2 from the state stored in MongoDB.

    Asserted: process 1 stops ``interrupted`` with the forecaster as the frontier and the forecaster's
    conversation (the pending ``weather`` tool use) inside the stored interrupt state. Process 2 passes only
    the ``interruptResponse``; the restored forecaster resumes its pending tool call (the tool now returns
    the human's answer, the model is not asked to call it again), hands off to the summarizer, and the swarm
    completes with the persisted task.
    """
    session_id = f"swarm-int-{uuid.uuid4().hex[:8]}"
    first = _run_child("swarm_interrupt", mongo_uri, database_name, session_id)
    assert first is not None
    assert first["result_status"] == "interrupted"
    assert first["forecaster_calls"] == 1
    assert first["summarizer_calls"] == 0
    (interrupt,) = first["interrupts"]
    assert interrupt["name"] == "need_weather"

    stored = _stored_state(mongo_uri, database_name, session_id, SWARM_KEY)
    assert stored["status"] == "interrupted"
    assert stored["next_nodes_to_execute"] == ["forecaster"]
    interrupt_state = stored["_internal_state"]["interrupt_state"]
    assert interrupt_state["activated"] is True
    assert list(interrupt_state["interrupts"]) == [interrupt["id"]]
    pending_message = interrupt_state["context"]["forecaster"]["messages"][-1]
    (pending_block,) = pending_message["content"]
    tool_use_id = pending_block["toolUse"]["toolUseId"]
    assert pending_block["toolUse"]["name"] == "weather"
    assert stored == first["serialized"]

    second = _run_child("swarm_interrupt", mongo_uri, database_name, session_id, interrupt["id"])
    assert second is not None
    assert second["resuming"] is True
    assert second["interrupt_activated"] is True
    assert second["result_status"] == "completed"
    assert second["node_history"] == ["forecaster", "summarizer"]
    assert second["forecaster_calls"] == 2
    restored_conversation = second["forecaster_first_call"]
    assert restored_conversation[-2]["content"][0]["toolUse"]["toolUseId"] == tool_use_id
    tool_result = restored_conversation[-1]["content"][0]["toolResult"]
    assert tool_result["toolUseId"] == tool_use_id
    assert tool_result["content"] == [{"text": "sunny"}]
    assert second["summarizer_calls"] == 1
    (summarizer_input,) = second["summarizer_texts"]
    assert "Handoff Message: the human says the weather is sunny" in summarizer_input
    assert f"User Request: {TASK}" in summarizer_input

    final = _stored_state(mongo_uri, database_name, session_id, SWARM_KEY)
    assert final["status"] == "completed"
    assert final["next_nodes_to_execute"] == []
    assert final["_internal_state"]["interrupt_state"]["activated"] is False
    assert final == second["serialized"]


# ----------------------------------------------------------------- 3. escaped multi-agent keys


@pytest.mark.parametrize(
    ("multi_agent_id", "stored_key"),
    [("graph.v2", "graph%2Ev2"), ("team$a%b.c", "team%24a%25b%2Ec")],
)
def test_multi_agent_key_is_escaped_and_reads_back_as_serialize_state(
    mongo_uri: str, database_name: str, multi_agent_id: str, stored_key: str
) -> None:
    """A multi-agent id with ``.``/``$``/``%`` is stored under one escaped key and reads back unchanged."""
    session_id = f"escape-{uuid.uuid4().hex[:8]}"
    with MongoDBSessionManager(
        session_id=session_id, connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    ) as manager:
        builder = GraphBuilder()
        builder.add_node(Agent(name="A", model=ScriptedModel(["done"]), callback_handler=None), "A")
        builder.set_entry_point("A")
        builder.set_graph_id(multi_agent_id)
        builder.set_execution_timeout(60)
        builder.set_session_manager(manager)
        graph = builder.build()

        created = _session_document(mongo_uri, database_name, session_id)["multi_agents"]
        assert list(created) == [stored_key], "initialize_multi_agent creates the entry under the escaped key"

        result = graph(TASK)
        assert result.status.value == "completed"
        expected = graph.serialize_state()
        assert expected["id"] == multi_agent_id

        document = _session_document(mongo_uri, database_name, session_id)
        assert list(document["multi_agents"]) == [stored_key], "no nested or extra entries"
        assert document["multi_agents"][stored_key]["state"] == _json(expected)
        assert manager.session_repository.read_multi_agent(session_id, multi_agent_id) == expected

    # A new manager and a new graph with the same id find the entry (a completed graph restarts clean).
    with MongoDBSessionManager(
        session_id=session_id, connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    ) as manager:
        assert manager.session_repository.read_multi_agent(session_id, multi_agent_id) == expected
        swarm = Swarm(
            [Agent(name="solo", model=ScriptedModel([]), callback_handler=None)],
            session_manager=manager,
            id=f"{multi_agent_id}.swarm",
        )
        entries = _session_document(mongo_uri, database_name, session_id)["multi_agents"]
        assert sorted(entries) == sorted([stored_key, f"{stored_key}%2Eswarm"])
        assert entries[f"{stored_key}%2Eswarm"]["state"] == _json(swarm.serialize_state())
