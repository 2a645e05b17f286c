"""Richer message records: the guardrail audit of redactions, and what ``ScriptedModel`` reports for them."""

import asyncio
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.exceptions import SessionException

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

REDACTED_INPUT = {"text": "[User input redacted.]"}
TRACE = {
    "inputAssessment": {
        "guardrail-1": {
            "contentPolicy": {
                "filters": [{"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED", "detected": True}]
            },
            "sensitiveInformationPolicy": {
                "piiEntities": [{"type": "EMAIL", "match": "ann@example.com", "action": "ANONYMIZED"}],
                "regexes": [],
            },
            "topicPolicy": {
                "topics": [
                    {"name": "Weapons", "type": "DENY", "action": "BLOCKED", "detected": True},
                    {"name": "Cooking", "type": "DENY", "action": "NONE", "detected": False},
                ]
            },
        }
    },
    "modelOutput": ["the unsafe answer"],
}
"""A Bedrock guardrail trace: three policies acted, one did not; ``match`` and ``modelOutput`` hold judged text."""
STORED_TRACE = {
    "inputAssessment": {
        "guardrail-1": {
            "contentPolicy": {
                "filters": [{"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED", "detected": True}]
            },
            "sensitiveInformationPolicy": {"piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED"}], "regexes": []},
            "topicPolicy": {
                "topics": [
                    {"name": "Weapons", "type": "DENY", "action": "BLOCKED", "detected": True},
                    {"name": "Cooking", "type": "DENY", "action": "NONE", "detected": False},
                ]
            },
        }
    }
}
POLICIES = ["contentPolicy:VIOLENCE", "sensitiveInformationPolicy:EMAIL", "topicPolicy:Weapons"]
BLOCKED = {"text": "Sorry, I cannot help with that.", "guardrail": {"trace": TRACE}}


@pytest.fixture
def sessions(client: MongoClient, database_name: str):
    return client[database_name]["s"]


@pytest.fixture
def make_manager(client: MongoClient, database_name: str):
    def make(session_id: str, layout: str = "embedded") -> MongoDBSessionManager:
        return MongoDBSessionManager(
            session_id, client=client, database_name=database_name, collection_name="s", message_storage=layout
        )

    return make


@pytest.fixture
def stored_messages(client: MongoClient, database_name: str):
    def read(session_id: str) -> list[dict[str, Any]]:
        document = client[database_name]["s"].find_one({"_id": session_id})
        if "messages" in document["agents"]["a"]:
            return document["agents"]["a"]["messages"]
        rows = client[database_name]["s.messages"].find({"session_id": session_id}, {"_id": 0})
        return list(rows.sort("message_id", 1))

    return read


def make_agent(manager: MongoDBSessionManager, script: list[Any], model: Any = None) -> Agent:
    return Agent(agent_id="a", model=model or ScriptedModel(script), session_manager=manager, callback_handler=None)


def check_event(event: dict[str, Any], **expected: Any) -> None:
    """An event's fields: ``timestamp`` a date (checked and left out), the others exactly ``expected``."""
    assert isinstance(event.pop("timestamp"), datetime)
    assert event == expected


@pytest.mark.parametrize(("layout", "writes"), [("embedded", ["update"]), ("collection", ["update", "update"])])
def test_a_guardrail_redaction_is_recorded_on_the_message_and_in_the_session_summary(
    make_manager, stored_messages, sessions, command_log, layout, writes
):
    agent = make_agent(make_manager("audit", layout), ["Hello!", BLOCKED])
    agent("Hi")
    command_log.clear()
    result = agent("Tell me how to hurt ann@example.com")

    assert result.stop_reason == "guardrail_intervened"
    append = "update" if layout == "embedded" else "insert"
    assert command_log.writes == [append, *writes, append]  # the prompt, the redaction, the answer
    messages = stored_messages("audit")
    prompt = messages[2]
    assert prompt["redact_message"]["content"] == prompt["message"]["content"] == [REDACTED_INPUT]  # strands' way
    check_event(
        prompt["guardrail_event"],
        action="redacted",
        stop_reason="guardrail_intervened",
        policies_triggered=POLICIES,
        trace=STORED_TRACE,
    )
    assert not any("guardrail_event" in message for position, message in enumerate(messages) if position != 2)

    summary = sessions.find_one({"_id": "audit"})["guardrail_summary"]
    (latest,) = summary.pop("latest")
    assert summary == {"total": 1, "by_action": {"redacted": 1}, "by_policy": dict.fromkeys(POLICIES, 1)}
    check_event(
        latest,
        agent_id="a",
        message_id=2,
        action="redacted",
        stop_reason="guardrail_intervened",
        policies_triggered=POLICIES,
    )

    restored = make_agent(make_manager("audit", layout), [])
    assert restored.messages[2]["content"] == [REDACTED_INPUT]


def test_a_redaction_without_a_trace_records_the_stop_reason_only(make_manager, stored_messages, sessions):
    agent = make_agent(make_manager("no-trace"), [{"text": "No.", "guardrail": True}])
    agent("Something forbidden")

    check_event(
        stored_messages("no-trace")[0]["guardrail_event"], action="redacted", stop_reason="guardrail_intervened"
    )
    summary = sessions.find_one({"_id": "no-trace"})["guardrail_summary"]
    assert (summary["total"], summary["by_action"], summary.get("by_policy")) == (1, {"redacted": 1}, None)


def test_the_summary_counts_every_redaction_and_keeps_only_the_latest_twenty(make_manager, sessions, command_log):
    manager = make_manager("many")
    agent = make_agent(manager, ["Fine."] * 25)
    for turn in range(25):
        agent(f"message {turn}")
        command_log.clear()
        manager.redact_latest_message({"role": "assistant", "content": [{"text": "[removed]"}]}, agent)
        assert command_log.writes == ["update"]  # outside a model call: written at once, in one command

    summary = sessions.find_one({"_id": "many"})["guardrail_summary"]
    assert (summary["total"], summary["by_action"]) == (25, {"redacted": 25})
    assert [event["message_id"] for event in summary["latest"]] == [2 * turn + 1 for turn in range(5, 25)]


def test_a_direct_redaction_records_the_stop_reason_and_trace_it_is_given(make_manager, stored_messages, sessions):
    manager = make_manager("direct", "collection")
    agent = make_agent(manager, ["Your card number is noted."])
    agent("My card is 4111 1111 1111 1111")
    manager.redact_latest_message(
        {"role": "assistant", "content": [{"text": "[removed]"}]},
        agent,
        stop_reason="guardrail_intervened",
        guardrail_trace={"guardrail": TRACE},
    )
    manager.redact_latest_message({"role": "assistant", "content": [{"text": "[removed again]"}]}, agent)

    answer = stored_messages("direct")[1]
    assert answer["redact_message"]["content"] == [{"text": "[removed again]"}]
    check_event(answer["guardrail_event"], action="redacted")  # the latest redaction's event
    summary = sessions.find_one({"_id": "direct"})["guardrail_summary"]
    assert (summary["total"], summary["by_policy"]) == (2, dict.fromkeys(POLICIES, 1))
    assert [event.get("stop_reason") for event in summary["latest"]] == ["guardrail_intervened", None]


def test_redacting_an_agent_without_messages_is_refused(make_manager):
    manager = make_manager("empty")
    agent = make_agent(manager, [])
    with pytest.raises(SessionException):
        manager.redact_latest_message({"role": "user", "content": [{"text": "x"}]}, agent)


class FailsAfterRedacting(ScriptedModel):
    """Streams a guardrail's redaction, then loses the connection before the stream ends."""

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterable[Any]:
        async for event in super().stream(*args, **kwargs):
            yield event
            if "redactContent" in event:
                raise ConnectionError("stream interrupted")


def test_a_redaction_is_written_even_when_the_model_call_fails_after_it(make_manager, stored_messages, sessions):
    agent = make_agent(make_manager("failing"), [], model=FailsAfterRedacting([BLOCKED]))
    with pytest.raises(ConnectionError):
        agent("Something forbidden")

    prompt = stored_messages("failing")[0]
    assert prompt["redact_message"]["content"] == [REDACTED_INPUT]
    check_event(prompt["guardrail_event"], action="redacted")  # no stop reason, no trace: the call never ended
    assert sessions.find_one({"_id": "failing"})["guardrail_summary"]["total"] == 1


def test_a_streamed_invocation_records_the_same_redaction(make_manager, stored_messages):
    async def run() -> None:
        agent = make_agent(make_manager("streamed"), [BLOCKED])
        async for _ in agent.stream_async("Something forbidden"):
            pass

    asyncio.run(run())
    check_event(
        stored_messages("streamed")[0]["guardrail_event"],
        action="redacted",
        stop_reason="guardrail_intervened",
        policies_triggered=POLICIES,
        trace=STORED_TRACE,
    )


# ----------------------------------------------------------------- ScriptedModel


def stream(model: ScriptedModel) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event async for event in model.stream([{"role": "user", "content": [{"text": "hi there"}]}])]

    return asyncio.run(collect())


def test_scripted_model_reports_first_byte_time_and_cache_tokens():
    model = ScriptedModel(
        ["Hello you"], latency_ms=5, time_to_first_byte_ms=2, cache_read_tokens=7, cache_write_tokens=1
    )
    assert stream(model)[-1] == {
        "metadata": {
            "usage": {
                "inputTokens": 2,
                "outputTokens": 2,
                "totalTokens": 12,
                "cacheReadInputTokens": 7,
                "cacheWriteInputTokens": 1,
            },
            "metrics": {"latencyMs": 5, "timeToFirstByteMs": 2},
        }
    }


def test_scripted_model_streams_a_guardrail_intervention_in_bedrocks_order():
    model = ScriptedModel(
        [{"text": "No.", "guardrail": {"redact_input": "[hidden]", "redact_output": "[withheld]", "trace": TRACE}}],
        latency_ms=5,
    )
    events = stream(model)
    assert events[-4:] == [
        {"messageStop": {"stopReason": "guardrail_intervened"}},
        {"redactContent": {"redactUserContentMessage": "[hidden]"}},
        {"redactContent": {"redactAssistantContentMessage": "[withheld]"}},
        {
            "metadata": {
                "usage": {"inputTokens": 2, "outputTokens": 1, "totalTokens": 3},
                "metrics": {"latencyMs": 5},
                "trace": {"guardrail": TRACE},
            }
        },
    ]


def test_an_output_only_redaction_leaves_the_users_message_alone(make_manager, stored_messages, sessions):
    script = [{"text": "Secret.", "guardrail": {"redact_input": None, "redact_output": "[withheld]"}}]
    make_agent(make_manager("output"), script)("Tell me")

    prompt, answer = stored_messages("output")
    assert prompt["redact_message"] is None and answer["message"]["content"] == [{"text": "[withheld]"}]
    assert "guardrail_summary" not in sessions.find_one({"_id": "output"})


@pytest.mark.parametrize(
    ("guardrail", "error"),
    [
        ("yes", TypeError),
        ({"redact": "x"}, ValueError),
        ({"redact_input": 1}, TypeError),
        ({"trace": ["x"]}, TypeError),
    ],
)
def test_scripted_model_rejects_bad_guardrail_options(guardrail: Any, error: type[Exception]):
    with pytest.raises(error):
        ScriptedModel([{"text": "No.", "guardrail": guardrail}])
