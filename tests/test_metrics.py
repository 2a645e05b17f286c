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
FIRST_BYTE_MS = 3
"""Every scripted model call reports this time to first byte (strands keeps its own measure when it is >= 1 ms)."""


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
        model=ScriptedModel(script, latency_ms=LATENCY_MS, time_to_first_byte_ms=FIRST_BYTE_MS),
        session_manager=manager,
        callback_handler=None,
        system_prompt="You answer briefly.",
        **kwargs,
    )


def cost_of(
    *model_messages: dict[str, Any], cycles: int | None = None, tools: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The figures of the given model calls added up, as the manager stores them (durations left out).

    The time to first byte is the first call's; an invocation has one cycle per model call unless ``cycles``
    says otherwise; ``tools`` are the expected counts per tool.
    """
    usages = [message["message"]["metadata"]["usage"] for message in model_messages]
    first_byte = model_messages[0]["message"]["metadata"]["metrics"]["timeToFirstByteMs"]
    return {
        "accumulated_metrics": {"latencyMs": LATENCY_MS * len(model_messages), "timeToFirstByteMs": first_byte},
        "accumulated_usage": {key: sum(usage[key] for usage in usages) for key in usages[0]},
        "cycle_metrics": {"cycle_count": len(model_messages) if cycles is None else cycles},
        "tool_usage": tools or {},
    }


def tool_counts(calls: int, errors: int = 0) -> dict[str, Any]:
    """One tool's expected ``tool_usage`` counts (its seconds are checked by `checked`)."""
    return {
        "call_count": calls,
        "success_count": calls - errors,
        "error_count": errors,
        "success_rate": (calls - errors) / calls,
    }


def checked(metrics: dict[str, Any]) -> dict[str, Any]:
    """The stored figures with their seconds checked (>= 0, averages consistent) and left out.

    Durations differ from run to run; counts, tokens and the scripted latency do not.
    """
    cycles = metrics["cycle_metrics"]
    assert set(cycles) == {"cycle_count", "total_duration", "average_cycle_time"}
    assert cycles["cycle_count"] >= 1 and cycles["total_duration"] >= 0
    assert cycles["average_cycle_time"] == cycles["total_duration"] / cycles["cycle_count"]
    tools = {}
    for name, usage in metrics["tool_usage"].items():
        assert usage["total_time"] >= 0 and usage["average_time"] == usage["total_time"] / usage["call_count"]
        assert usage["success_count"] + usage["error_count"] == usage["call_count"]
        tools[name] = {key: value for key, value in usage.items() if key not in ("total_time", "average_time")}
    return {**metrics, "cycle_metrics": {"cycle_count": cycles["cycle_count"]}, "tool_usage": tools}


def metrics_by_position(messages: list[dict[str, Any]]) -> dict[int, Any]:
    return {
        index: checked(message["event_loop_metrics"])
        for index, message in enumerate(messages)
        if "event_loop_metrics" in message
    }


def without_first_byte(metrics: dict[int, Any]) -> dict[int, Any]:
    """Figures to compare across runs: strands measures the time to first byte itself when it is >= 1 ms."""
    return {
        position: {**figures, "accumulated_metrics": {"latencyMs": figures["accumulated_metrics"]["latencyMs"]}}
        for position, figures in metrics.items()
    }


TURNS = [("Hello there, my name is Alice", "Nice to meet you, Alice."), ("What is my name?", "Your name is Alice.")]


def test_each_turn_stores_its_own_cost_for_a_long_lived_and_a_per_request_agent(make_manager, stored_messages):
    long_lived = make_agent(make_manager("long"), [answer for _, answer in TURNS])
    for prompt, _ in TURNS:
        long_lived(prompt)
    for prompt, answer in TURNS:  # a new manager and a new Agent per request, as a web server does
        make_agent(make_manager("per-request"), [answer])(prompt)

    long, per_request = stored_messages("long"), stored_messages("per-request")
    assert without_first_byte(metrics_by_position(long)) == without_first_byte(metrics_by_position(per_request))
    assert metrics_by_position(per_request) == {1: cost_of(per_request[1]), 3: cost_of(per_request[3])}
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
    assert metrics_by_position(messages) == {
        3: cost_of(messages[1], messages[3], tools={"add": tool_counts(1)}),
        5: cost_of(messages[5]),
    }


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
    assert metrics_by_position(messages) == {  # the resumed invocation runs the approved tool, then calls the model
        1: cost_of(messages[1]),
        3: cost_of(messages[3], cycles=2, tools={"add": tool_counts(1)}),
    }
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
    assert metrics_by_position(messages) == {  # strands runs the forced structured output as a tool
        closing: cost_of(messages[1], messages[closing], tools={"Weather": tool_counts(1)})
    }


def test_a_streamed_invocation_stores_the_same_figures_as_a_synchronous_one(make_manager, stored_messages):
    script = [{"tool": "add", "input": {"a": 2, "b": 3}}, "It is 5."]
    make_agent(make_manager("sync"), script, tools=[add])("What is 2 + 3?")

    async def stream() -> None:
        agent = make_agent(make_manager("streamed"), script, tools=[add])
        async for _ in agent.stream_async("What is 2 + 3?"):
            pass

    asyncio.run(stream())
    synchronous, streamed = stored_messages("sync"), stored_messages("streamed")
    assert without_first_byte(metrics_by_position(streamed)) == without_first_byte(metrics_by_position(synchronous))
    for messages in (synchronous, streamed):
        assert metrics_by_position(messages) == {3: cost_of(messages[1], messages[3], tools={"add": tool_counts(1)})}


failures = {"count": 0}


@tool
def flaky_lookup(key: str) -> str:
    """Look a key up; every second call fails."""
    failures["count"] += 1
    if failures["count"] % 2 == 0:
        raise RuntimeError("lookup service unavailable")
    return key.upper()


FLAKY_TURNS = [
    (
        "Look up a and b",
        [
            [{"tool": "flaky_lookup", "input": {"key": "a"}}, {"tool": "flaky_lookup", "input": {"key": "b"}}],
            {"tool": "add", "input": {"a": 1, "b": 2}},
            "A, and b failed; 1 + 2 = 3.",
        ],
    ),
    ("Look up c", [{"tool": "flaky_lookup", "input": {"key": "c"}}, "C."]),
]


def test_each_invocation_stores_its_own_cycles_and_tool_calls_whatever_the_agents_lifetime(
    make_manager, stored_messages
):
    failures["count"] = 0
    long_lived = make_agent(
        make_manager("long"), [item for _, script in FLAKY_TURNS for item in script], tools=[add, flaky_lookup]
    )
    for prompt, _ in FLAKY_TURNS:
        long_lived(prompt)
    failures["count"] = 0
    for prompt, script in FLAKY_TURNS:
        make_agent(make_manager("per-request"), script, tools=[add, flaky_lookup])(prompt)

    long, per_request = stored_messages("long"), stored_messages("per-request")
    assert without_first_byte(metrics_by_position(long)) == without_first_byte(metrics_by_position(per_request))
    for messages in (long, per_request):
        assert metrics_by_position(messages) == {
            5: cost_of(
                messages[1],
                messages[3],
                messages[5],
                tools={"flaky_lookup": tool_counts(2, errors=1), "add": tool_counts(1)},
            ),
            9: cost_of(messages[7], messages[9], tools={"flaky_lookup": tool_counts(1)}),  # the 3rd call succeeds
        }
    assert long_lived.event_loop_metrics.tool_metrics["flaky_lookup"].call_count == 3  # strands' running totals


def test_cache_tokens_are_stored_for_the_invocations_whose_model_reported_them(make_manager, stored_messages):
    agent = make_agent(make_manager("cache"), ["First answer.", "Second answer."])
    agent.model.cache_read_tokens, agent.model.cache_write_tokens = 40, 12
    agent("first")
    agent.model.cache_read_tokens = agent.model.cache_write_tokens = None
    agent("second")

    messages = stored_messages("cache")
    first, second = (checked(messages[i]["event_loop_metrics"])["accumulated_usage"] for i in (1, 3))
    words = messages[1]["message"]["metadata"]["usage"]
    assert first == {
        "inputTokens": words["inputTokens"],
        "outputTokens": words["outputTokens"],
        "totalTokens": words["inputTokens"] + words["outputTokens"] + 52,  # Bedrock counts cache tokens in the total
        "cacheReadInputTokens": 40,
        "cacheWriteInputTokens": 12,
    }
    assert set(second) == {"inputTokens", "outputTokens", "totalTokens"}  # strands' running totals keep the keys
    assert agent.event_loop_metrics.accumulated_usage["cacheReadInputTokens"] == 40


def test_the_time_to_first_byte_is_the_invocations_first_model_call(make_manager, stored_messages):
    model = ScriptedModel(
        [{"tool": "slow_down", "input": {}}, "Done."], latency_ms=LATENCY_MS, time_to_first_byte_ms=FIRST_BYTE_MS
    )

    @tool
    def slow_down() -> str:
        """Make the model's next calls slower to start."""
        model.time_to_first_byte_ms = 900
        return "slower"

    agent = Agent(
        agent_id="a", model=model, tools=[slow_down], session_manager=make_manager("ttfb"), callback_handler=None
    )
    agent("Go")

    messages = stored_messages("ttfb")
    first_call = messages[1]["message"]["metadata"]["metrics"]["timeToFirstByteMs"]  # the second call's is 900
    assert messages[3]["event_loop_metrics"]["accumulated_metrics"]["timeToFirstByteMs"] == first_call
