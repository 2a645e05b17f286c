"""Session Viewer rendering without a database: markdown to a JSON tree, stored content blocks to API blocks."""

import base64
from datetime import UTC, datetime

from mongodb_session_manager.documents import decode_value, encode_value
from session_viewer.backend.markdown import markdown_ast
from session_viewer.backend.timeline import convert_block, session_detail


def text(value: str) -> dict:
    return {"type": "text", "text": value, "children": []}


def paragraph_of(markdown: str) -> list[dict]:
    return markdown_ast(markdown)["children"][0]["children"]


def test_markdown_keeps_http_https_and_mailto_links_only() -> None:
    assert paragraph_of("[a](https://example.com/x)") == [
        {"type": "link", "href": "https://example.com/x", "children": [text("a")]}
    ]
    assert paragraph_of("<mailto:me@example.com>")[0]["href"] == "mailto:me@example.com"
    assert paragraph_of("[a](/relative) [b](#top) [c](ftp://x)") == [
        text("a"),
        text(" "),
        text("b"),
        text(" "),
        text("c"),
    ]
    assert paragraph_of("[x](javascript:alert(1))") == [text("[x](javascript:alert(1))")]
    assert paragraph_of("[x](JaVaScRiPt:alert(1))") == [text("[x](JaVaScRiPt:alert(1))")]


def test_markdown_raw_html_is_text() -> None:
    assert markdown_ast("<script>alert(1)</script>")["children"] == [
        {"type": "paragraph", "children": [text("<script>alert(1)</script>")]}
    ]


def test_markdown_blocks_have_their_attributes() -> None:
    tree = markdown_ast("## Title\n\n3. three\n4. four\n\n```python\nprint(1)\n```\n\n> quoted\n\n---\n")
    heading, ordered, code, quote, rule = tree["children"]
    assert heading == {"type": "heading", "level": 2, "children": [text("Title")]}
    assert ordered["type"] == "ordered_list" and ordered["start"] == 3
    assert ordered["children"][0] == {"type": "list_item", "children": [text("three")]}  # tight list
    assert code == {"type": "code_block", "text": "print(1)\n", "info": "python", "children": []}
    assert quote == {"type": "blockquote", "children": [{"type": "paragraph", "children": [text("quoted")]}]}
    assert rule == {"type": "hr", "children": []}


def test_markdown_inline_nodes() -> None:
    assert paragraph_of("`x` *e* **s** ![alt *text*](http://i.png)\nnext  \nhard") == [
        {"type": "inline_code", "text": "x", "children": []},
        text(" "),
        {"type": "em", "children": [text("e")]},
        text(" "),
        {"type": "strong", "children": [text("s")]},
        text(" "),
        {"type": "image", "alt": "alt text", "children": []},
        {"type": "softbreak", "children": []},
        text("next"),
        {"type": "hardbreak", "children": []},
        text("hard"),
    ]


def test_markdown_tables() -> None:
    table = markdown_ast("| a | b |\n|:--|--:|\n| 1 | 2 |\n")["children"][0]
    assert table["type"] == "table"
    head, body = table["children"]
    assert head["children"][0]["children"][0] == {"type": "th", "align": "left", "children": [text("a")]}
    assert body["children"][0]["children"][1] == {"type": "td", "align": "right", "children": [text("2")]}


def test_deeply_nested_markdown_does_not_fail() -> None:
    tree = markdown_ast(">" * 5000 + " deep")
    assert tree["type"] == "document"


def test_blocks_of_every_kind() -> None:
    encoded = {"__bytes_encoded__": True, "data": base64.b64encode(b"12345").decode()}
    assert convert_block({"document": {"format": "pdf", "name": "terms", "source": {"bytes": encoded}}}) == {
        "kind": "attachment",
        "attachment_type": "document",
        "format": "pdf",
        "name": "terms",
        "size_bytes": 5,
    }
    assert convert_block({"video": {"format": "mp4", "source": {"location": {"type": "s3", "uri": "s3://b/k"}}}}) == {
        "kind": "attachment",
        "attachment_type": "video",
        "format": "mp4",
        "name": None,
        "size_bytes": None,
    }
    assert convert_block({"reasoningContent": {"reasoningText": {"text": "because", "signature": "s"}}}) == {
        "kind": "reasoning",
        "text": "because",
    }
    assert convert_block({"reasoningContent": {"redactedContent": b"\x00" * 9}}) == {
        "kind": "reasoning",
        "text": "[redacted reasoning]",
    }
    assert convert_block({"cachePoint": {"type": "default"}, "blob": b"abc"}) == {
        "kind": "other",
        "json": {"cachePoint": {"type": "default"}, "blob": {"binary_size_bytes": 3}},
    }


def test_tool_results_with_json_images_and_errors() -> None:
    block = {
        "toolResult": {
            "toolUseId": "t9",
            "status": "error",
            "content": [
                {"json": {"when": datetime(2024, 1, 2, tzinfo=UTC)}},
                {"image": {"format": "jpeg", "source": {"bytes": b"\xff\xd8" * 10}}},
                {"text": "failed"},
            ],
        }
    }
    assert convert_block(block) == {
        "kind": "tool_result",
        "tool_use_id": "t9",
        "status": "error",
        "content": [
            {"kind": "json", "json": {"when": "2024-01-02T00:00:00.000000+00:00"}},
            {"kind": "attachment", "attachment_type": "image", "format": "jpeg", "name": None, "size_bytes": 20},
            {"kind": "text", "text": "failed"},
        ],
    }


def test_timeline_ties_keep_agent_and_message_id_order() -> None:
    same = "2024-01-01T00:00:00+00:00"
    document = {
        "session_id": "s",
        "created_at": datetime(2024, 1, 1, tzinfo=UTC),
        "agents": [{"key": "a%2Eb"}, {"key": "c", "agent_id": "c"}],
        "feedbacks": [{"rating": "sideways", "comment": 3, "created_at": datetime(2023, 1, 1)}],
    }
    messages = {
        "a.b": [
            {"message_id": 1, "message": {"role": "assistant", "content": []}, "created_at": same},
            {"message_id": 0, "message": {"role": "user", "content": []}, "created_at": same},
        ],
        "c": [{"message_id": 0, "message": {"role": "user"}}],
    }
    detail = session_detail(document, messages)
    assert [(i["type"], i.get("agent_id"), i.get("message_id")) for i in detail["timeline"]] == [
        ("feedback", None, None),
        ("message", "a.b", 0),
        ("message", "a.b", 1),
        ("message", "c", 0),
    ]
    assert detail["timeline"][0] == {
        "type": "feedback",
        "timestamp": "2023-01-01T00:00:00.000000+00:00",
        "rating": None,
        "comment": None,
    }
    assert detail["feedback_counts"] == {"up": 0, "down": 0, "neutral": 1}
    assert detail["timeline"][3]["timestamp"] is None


def test_tool_inputs_with_dollar_keys_show_as_written() -> None:
    """Blocks come decoded by the library: a value that looks like its stored form is not decoded again."""
    schema = {"$ref": "#/defs/a", "$id": "x", "a.b": 2**70, "looks_stored": {"__msm_int__": "5"}}
    block = decode_value(encode_value({"toolUse": {"toolUseId": "t1", "name": "lookup", "input": schema}}))

    assert convert_block(block)["input"] == schema


def test_the_closing_message_shows_its_invocation_figures_and_guardrail_event() -> None:
    document = {
        "session_id": "s",
        "application_name": "support-bot",
        "agents": [{"key": "a"}],
        "guardrail_summary": {
            "total": 2,
            "by_action": {"redact": 2},
            "by_policy": {"pii%2Eemail": 2},
            "latest": [
                {
                    "action": "redact",
                    "timestamp": datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC),
                    "policies_triggered": ["pii.email"],
                    "agent_id": "a",
                    "message_id": 0,
                }
            ],
        },
    }
    metrics = {
        "accumulated_metrics": {"latencyMs": 900, "timeToFirstByteMs": 120},
        "accumulated_usage": {
            "inputTokens": 30,
            "outputTokens": 12,
            "totalTokens": 42,
            "cacheReadInputTokens": 20,
            "cacheWriteInputTokens": 4,
        },
        "cycle_metrics": {"cycle_count": 2, "total_duration": 0.9, "average_cycle_time": 0.45},
        "tool_usage": {
            "lookup": {
                "call_count": 3,
                "success_count": 2,
                "error_count": 1,
                "total_time": 0.3,
                "average_time": 0.1,
                "success_rate": 2 / 3,
            }
        },
    }
    messages = {
        "a": [
            {
                "message_id": 0,
                "message": {"role": "user", "content": [{"text": "my mail is a@b.c"}]},
                "redact_message": {"role": "user", "content": [{"text": "[redacted]"}]},
                "guardrail_event": {
                    "action": "redact",
                    "timestamp": datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC),
                    "stop_reason": "guardrail_intervened",
                    "policies_triggered": ["pii.email"],
                },
            },
            {"message_id": 1, "message": {"role": "assistant", "content": []}, "event_loop_metrics": metrics},
        ]
    }

    detail = session_detail(document, messages)

    user, answer = detail["timeline"]
    assert user["guardrail"] == {
        "action": "redact",
        "timestamp": "2024-01-01T00:00:05.000000+00:00",
        "stop_reason": "guardrail_intervened",
        "policies": ["pii.email"],
    }
    assert answer["guardrail"] is None and user["metrics"] is None
    assert answer["metrics"] == {
        "latencyMs": 900,
        "timeToFirstByteMs": 120,
        "inputTokens": 30,
        "outputTokens": 12,
        "totalTokens": 42,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 4,
        "cycleCount": 2,
        "cycleDurationSeconds": 0.9,
        "toolUsage": [{"name": "lookup", "calls": 3, "errors": 1, "averageTimeSeconds": 0.1}],
    }
    assert detail["application_name"] == "support-bot"
    assert detail["guardrail_summary"] == {
        "total": 2,
        "by_action": {"redact": 2},
        "by_policy": {"pii.email": 2},
        "latest": [
            {
                "action": "redact",
                "timestamp": "2024-01-01T00:00:05.000000+00:00",
                "stop_reason": None,
                "policies": ["pii.email"],
                "agent_id": "a",
                "message_id": 0,
            }
        ],
    }


def test_figures_a_message_does_not_hold_are_null() -> None:
    """Messages stored before time to first byte, cache, cycles and tool usage were recorded."""
    old = {"accumulated_metrics": {"latencyMs": 5}, "accumulated_usage": {"inputTokens": 1}}
    detail = session_detail(
        {"session_id": "s", "agents": [{"key": "a"}]},
        {"a": [{"message_id": 0, "message": {"role": "assistant", "content": []}, "event_loop_metrics": old}]},
    )

    metrics = detail["timeline"][0]["metrics"]
    assert metrics["latencyMs"] == 5 and metrics["inputTokens"] == 1
    assert metrics["timeToFirstByteMs"] is None and metrics["cacheReadInputTokens"] is None
    assert metrics["cycleCount"] is None and metrics["toolUsage"] == []
    assert detail["application_name"] is None and detail["guardrail_summary"] is None
