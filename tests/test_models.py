"""Tests for the scripted test model and the offline demo model, driven through a real strands Agent."""

from __future__ import annotations

from typing import Any

import pytest
from strands import Agent, tool
from strands.agent import AgentResult
from strands.types.tools import ToolResult, ToolUse

from mongodb_session_manager import demo_model
from mongodb_session_manager.testing import ScriptedModel, ScriptExhaustedError

calculator = demo_model.calculator


@tool
def lookup_city(city: str) -> dict[str, Any]:
    """Return a fake population for a city.

    Args:
        city: The city name.
    """
    return {"city": city, "population": 1234}


def _assert_metrics_filled(agent: Agent) -> None:
    """Assert that the model's usage and latency reached the agent's event loop metrics."""
    metrics = agent.event_loop_metrics
    assert metrics.accumulated_usage["totalTokens"] > 0
    assert metrics.accumulated_usage["inputTokens"] > 0
    assert metrics.accumulated_usage["outputTokens"] > 0
    assert metrics.accumulated_metrics["latencyMs"] > 0


def _tool_uses(agent: Agent) -> list[ToolUse]:
    """Return all toolUse blocks in the agent's history."""
    return [block["toolUse"] for message in agent.messages for block in message["content"] if "toolUse" in block]


def _tool_results(agent: Agent) -> list[ToolResult]:
    """Return all toolResult blocks in the agent's history."""
    return [block["toolResult"] for message in agent.messages for block in message["content"] if "toolResult" in block]


def test_scripted_model_tool_call_then_text() -> None:
    """A scripted tool call runs the real tool and the scripted text becomes the final answer."""
    model = ScriptedModel([{"tool": "calculator", "input": {"expression": "6*7"}}, "The answer is 42."])
    agent = Agent(model=model, tools=[calculator], callback_handler=None)

    result = agent("what is 6*7")

    assert isinstance(result, AgentResult)
    assert result.stop_reason == "end_turn"
    assert str(result).strip() == "The answer is 42."
    assert model.remaining == 0
    assert len(model.calls) == 2
    assert _tool_uses(agent)[0]["name"] == "calculator"
    assert _tool_uses(agent)[0]["input"] == {"expression": "6*7"}
    assert _tool_results(agent)[0]["status"] == "success"
    assert _tool_results(agent)[0]["content"][0]["text"] == "42"
    # The second call saw the tool result produced by the real tool.
    second_call_last = model.calls[1][-1]
    assert second_call_last["role"] == "user"
    assert second_call_last["content"][0]["toolResult"]["content"][0]["text"] == "42"
    assert [spec["name"] for spec in model.tool_specs[0]] == ["calculator"]
    _assert_metrics_filled(agent)
    assert agent.event_loop_metrics.accumulated_metrics["latencyMs"] >= 2  # one model call per cycle


def test_scripted_model_streams_text_word_by_word() -> None:
    """Text is streamed as several deltas that concatenate to the scripted text."""
    deltas: list[str] = []

    def collect(**kwargs: Any) -> None:
        """Collect streamed text deltas."""
        if "data" in kwargs:
            deltas.append(kwargs["data"])

    model = ScriptedModel(["Hello there, how are you?"])
    agent = Agent(model=model, callback_handler=collect)
    agent("hi")

    assert len(deltas) == 5
    assert "".join(deltas) == "Hello there, how are you?"
    _assert_metrics_filled(agent)


def test_scripted_model_parallel_tools_and_text_with_tool() -> None:
    """Several tool calls in one message, and text plus a tool call, are both executed."""
    model = ScriptedModel(
        [
            [
                {"tool": "lookup_city", "input": {"city": "Paris"}, "id": "call-paris"},
                {"tool": "lookup_city", "input": {"city": "Rome"}, "id": "call-rome"},
            ],
            {"text": "Let me also compute something.", "tool": "calculator", "input": {"expression": "2+3"}},
            "Done.",
        ]
    )
    agent = Agent(model=model, tools=[calculator, lookup_city], callback_handler=None)

    result = agent("populations please")

    assert str(result).strip() == "Done."
    assert model.remaining == 0
    first_assistant = agent.messages[1]
    assert [block["toolUse"]["toolUseId"] for block in first_assistant["content"]] == ["call-paris", "call-rome"]
    results = {r["toolUseId"]: r for r in _tool_results(agent)}
    assert {"call-paris", "call-rome"} <= set(results)
    second_assistant = agent.messages[3]
    assert second_assistant["content"][0]["text"] == "Let me also compute something."
    assert second_assistant["content"][1]["toolUse"]["name"] == "calculator"
    assert _tool_results(agent)[-1]["content"][0]["text"] == "5"
    _assert_metrics_filled(agent)


def test_scripted_model_records_history_across_turns() -> None:
    """Each call records the full history the agent sent, including earlier turns."""
    model = ScriptedModel(["first answer", "second answer"], model_id="my-script")
    agent = Agent(model=model, callback_handler=None)

    agent("first question")
    agent("second question")

    assert [m["role"] for m in model.calls[1]] == ["user", "assistant", "user"]
    assert model.calls[1][0]["content"][0]["text"] == "first question"
    assert model.calls[1][1]["content"][0]["text"] == "first answer"
    assert model.get_config()["model_id"] == "my-script"
    model.update_config(model_id="renamed", temperature=0.0)
    assert model.get_config() == {"model_id": "renamed", "temperature": 0.0}


def test_scripted_model_exhausted_raises_clear_error() -> None:
    """Calling the model past the end of its script raises ScriptExhaustedError."""
    agent = Agent(model=ScriptedModel(["only answer"]), callback_handler=None)
    agent("one")

    with pytest.raises(ScriptExhaustedError, match="script has only 1 responses"):
        agent("two")


def test_scripted_model_can_repeat_its_script_without_recording() -> None:
    """``repeat`` starts the script over; ``record=False`` keeps no requests and reports 0 input tokens."""
    model = ScriptedModel(["ping", "pong"], repeat=True, record=False)
    agent = Agent(model=model, callback_handler=None)

    answers = [str(agent(f"question {n}")).strip() for n in range(5)]

    assert answers == ["ping", "pong", "ping", "pong", "ping"]
    assert model.calls == [] and model.system_prompts == [] and model.tool_specs == []
    assert agent.event_loop_metrics.accumulated_usage["inputTokens"] == 0
    assert agent.event_loop_metrics.accumulated_usage["outputTokens"] == 5
    with pytest.raises(ValueError, match="at least one response"):
        ScriptedModel([], repeat=True)


def test_scripted_model_rejects_bad_items() -> None:
    """Malformed script items fail at construction time."""
    with pytest.raises(ValueError):
        ScriptedModel([{"nothing": 1}])
    with pytest.raises(TypeError):
        ScriptedModel([42])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        ScriptedModel([[]])


def test_demo_model_uses_calculator_tool() -> None:
    """The demo model calls the calculator tool and reports its result."""
    agent = Agent(model=demo_model.DemoModel(), tools=[calculator], callback_handler=None)

    result = agent("what is 6*7")

    text = str(result)
    assert text.startswith(demo_model.DEMO_PREFIX)
    assert "42" in text
    assert text.strip() == "[demo model] The result is 42."
    assert _tool_uses(agent)[0]["input"] == {"expression": "6*7"}
    _assert_metrics_filled(agent)


def test_demo_model_without_calculator_does_not_call_tools() -> None:
    """Without a calculator tool the demo model answers with text only."""
    agent = Agent(model=demo_model.DemoModel(), callback_handler=None)

    result = agent("what is 6*7")

    assert str(result).startswith(demo_model.DEMO_PREFIX)
    assert _tool_uses(agent) == []


def test_demo_model_recalls_name_from_history() -> None:
    """The demo model answers "what is my name" from an earlier turn in the history."""
    agent = Agent(model=demo_model.DemoModel(), tools=[calculator], callback_handler=None)

    first = agent("Hi, my name is Ada.")
    second = agent("What is my name?")

    assert str(first).startswith(demo_model.DEMO_PREFIX)
    assert "Ada" in str(first)
    assert str(second).strip() == "[demo model] Your name is Ada."
    _assert_metrics_filled(agent)


def test_demo_model_unknown_name_and_echo() -> None:
    """The demo model admits it does not know the name and echoes other input."""
    agent = Agent(model=demo_model.DemoModel(), callback_handler=None)

    assert "don't know your name" in str(agent("what's my name?"))
    assert 'You said: "tell me a joke"' in str(agent("tell me a joke"))


def test_demo_model_expression_extraction() -> None:
    """Arithmetic expressions are found inside ordinary sentences."""
    find = demo_model._find_expression
    assert find("what is 6*7") == "6*7"
    assert find("compute (2 + 3) * 4, please.") == "(2 + 3) * 4"
    assert find("what is 10 / 4?") == "10 / 4"
    assert find("I am 30 years old") is None
    assert find("hello") is None


def test_create_model_and_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    """create_model honours STRANDS_MODEL_PROVIDER/STRANDS_MODEL_ID and describe_model labels the result."""
    monkeypatch.setenv("STRANDS_MODEL_PROVIDER", "demo")
    monkeypatch.delenv("STRANDS_MODEL_ID", raising=False)
    model = demo_model.create_model()
    assert isinstance(model, demo_model.DemoModel)
    assert model.get_config()["model_id"] == "demo-model"
    assert demo_model.describe_model(model).startswith("offline demo model")

    monkeypatch.setenv("STRANDS_MODEL_PROVIDER", "bedrock")
    monkeypatch.setenv("STRANDS_MODEL_ID", "us.example.model-v1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bedrock = demo_model.create_model()
    assert type(bedrock).__name__ == "BedrockModel"
    assert demo_model.describe_model(bedrock) == "bedrock: us.example.model-v1"

    monkeypatch.setenv("STRANDS_MODEL_PROVIDER", "nonsense")
    with pytest.raises(ValueError, match="STRANDS_MODEL_PROVIDER"):
        demo_model.create_model()


@pytest.mark.parametrize("provider", [None, "", "  "])
def test_create_model_ignores_aws_credentials_without_a_provider(
    monkeypatch: pytest.MonkeyPatch, provider: str | None
) -> None:
    """AWS credentials in the environment never pick Bedrock: without STRANDS_MODEL_PROVIDER it is the demo model."""
    if provider is None:
        monkeypatch.delenv("STRANDS_MODEL_PROVIDER", raising=False)
    else:
        monkeypatch.setenv("STRANDS_MODEL_PROVIDER", provider)
    monkeypatch.delenv("STRANDS_MODEL_ID", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNRELATEDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unrelated-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "unrelated-token")
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    model = demo_model.create_model()

    assert isinstance(model, demo_model.DemoModel)
    assert "STRANDS_MODEL_PROVIDER" in demo_model.describe_model(model)
