"""``event_loop_metrics``: the cost of one invocation, on the message that closes it, whatever the Agent's lifetime."""

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from pymongo import MongoClient
from strands import Agent, tool
from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

LATENCY_MS = 7
"""Every scripted model call reports this latency, so stored figures can be compared exactly."""


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Weather(BaseModel):
    """A forecast."""

    city: str
    degrees: int


class ApproveAdditions(HookProvider):
    """Interrupts every ``add`` call until the user approves it."""

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.approve)

    def approve(self, event: BeforeToolCallEvent) -> None:
        if event.interrupt("approve_add", reason="may I add?") != "yes":
            event.cancel_tool = "not approved"


@pytest.fixture
def make_manager(client: MongoClient, database_name: str):
    def make(session_id: str) -> MongoDBSessionManager:
        return MongoDBSessionManager(session_id, client=client, database_name=database_name, collection_name="s")

    return make


@pytest.fixture
def stored_messages(client: MongoClient, database_name: str):
    def read(session_id: str) -> list[dict[str, Any]]:
        return client[database_name]["s"].find_one({"_id": session_id})["agents"]["a"]["messages"]

    return read


def make_agent(manager: MongoDBSessionManager, script: list[Any], **kwargs: Any) -> Agent:
    return Agent(
        agent_id="a",
        model=ScriptedModel(script, latency_ms=LATENCY_MS),
        session_manager=manager,
        callback_handler=None,
        system_prompt="You answer briefly.",
        **kwargs,
    )


def cost_of(*model_messages: dict[str, Any]) -> dict[str, Any]:
    """The figures of the given model calls added up, as the manager stores them."""
    usages = [message["message"]["metadata"]["usage"] for message in model_messages]
    return {
        "accumulated_metrics": {"latencyMs": LATENCY_MS * len(model_messages)},
        "accumulated_usage": {key: sum(usage[key] for usage in usages) for key in usages[0]},
    }


def metrics_by_position(messages: list[dict[str, Any]]) -> dict[int, Any]:
    return {
        index: message["event_loop_metrics"]
        for index, message in enumerate(messages)
        if "event_loop_metrics" in message
    }


TURNS = [("Hello there, my name is Alice", "Nice to meet you, Alice."), ("What is my name?", "Your name is Alice.")]


def test_each_turn_stores_its_own_cost_for_a_long_lived_and_a_per_request_agent(make_manager, stored_messages):
    long_lived = make_agent(make_manager("long"), [answer for _, answer in TURNS])
    for prompt, _ in TURNS:
        long_lived(prompt)
    for prompt, answer in TURNS:  # a new manager and a new Agent per request, as a web server does
        make_agent(make_manager("per-request"), [answer])(prompt)

    long, per_request = stored_messages("long"), stored_messages("per-request")
    assert metrics_by_position(long) == metrics_by_position(per_request)
    assert metrics_by_position(long) == {1: cost_of(long[1]), 3: cost_of(long[3])}
    second = long[3]["event_loop_metrics"]["accumulated_usage"]
    assert second["totalTokens"] < long_lived.event_loop_metrics.accumulated_usage["totalTokens"]  # not the totals


def test_a_tool_using_invocation_stores_the_sum_of_its_cycles_on_the_closing_message_only(
    make_manager, stored_messages
):
    agent = make_agent(
        make_manager("tools"), [{"tool": "add", "input": {"a": 2, "b": 3}}, "It is 5.", "Bye."], tools=[add]
    )
    agent("What is 2 + 3?")
    agent("Thanks")

    messages = stored_messages("tools")
    assert [m["message"]["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert metrics_by_position(messages) == {3: cost_of(messages[1], messages[3]), 5: cost_of(messages[5])}


def test_a_turn_writes_one_push_per_message_and_nothing_more(make_manager, command_log):
    agent = make_agent(
        make_manager("budget"), ["first", "second", {"tool": "add", "input": {"a": 1, "b": 1}}, "2"], tools=[add]
    )
    command_log.clear()
    agent("one")
    assert command_log.writes == ["update", "update"]
    command_log.clear()
    agent("two")
    assert command_log.writes == ["update", "update"]
    command_log.clear()
    agent("add 1 and 1")
    assert command_log.writes == ["update"] * 4

    command_log.clear()
    per_request = make_agent(make_manager("budget"), ["third"])
    per_request("three")
    assert command_log.writes == ["update", "update"]


def test_an_invocation_ending_on_a_tool_call_stores_its_cost_there_with_one_more_write(
    make_manager, stored_messages, command_log
):
    agent = make_agent(
        make_manager("interrupt"),
        [{"tool": "add", "input": {"a": 2, "b": 2}}, "It is 4."],
        tools=[add],
        hooks=[ApproveAdditions()],
    )
    command_log.clear()
    result = agent("What is 2 + 2?")
    assert result.stop_reason == "interrupt"
    messages = stored_messages("interrupt")
    assert metrics_by_position(messages) == {1: cost_of(messages[1])}
    assert len(command_log.writes) == 4  # the prompt, the tool call, the interrupt state, and the figures

    command_log.clear()
    agent([{"interruptResponse": {"interruptId": result.interrupts[0].id, "response": "yes"}}])
    messages = stored_messages("interrupt")
    assert metrics_by_position(messages) == {1: cost_of(messages[1]), 3: cost_of(messages[3])}
    assert len(command_log.writes) == 3  # the tool result, the answer (with its figures), the interrupt state


def test_figures_move_to_the_message_that_really_closes_the_invocation(make_manager, stored_messages):
    agent = make_agent(
        make_manager("structured"),
        ["Sunny, 21 degrees.", {"tool": "Weather", "input": {"city": "Bilbao", "degrees": 21}}],
    )
    result = agent("Weather in Bilbao?", structured_output_model=Weather)
    assert result.structured_output == Weather(city="Bilbao", degrees=21)

    messages = stored_messages("structured")
    closing = max(i for i, m in enumerate(messages) if m["message"]["role"] == "assistant")
    assert closing > 1
    assert metrics_by_position(messages) == {closing: cost_of(messages[1], messages[closing])}


def test_a_streamed_invocation_stores_the_same_figures_as_a_synchronous_one(make_manager, stored_messages):
    script = [{"tool": "add", "input": {"a": 2, "b": 3}}, "It is 5."]
    make_agent(make_manager("sync"), script, tools=[add])("What is 2 + 3?")

    async def stream() -> None:
        agent = make_agent(make_manager("streamed"), script, tools=[add])
        async for _ in agent.stream_async("What is 2 + 3?"):
            pass

    asyncio.run(stream())
    synchronous, streamed = stored_messages("sync"), stored_messages("streamed")
    assert (
        metrics_by_position(streamed)
        == metrics_by_position(synchronous)
        == {3: cost_of(synchronous[1], synchronous[3])}
    )
