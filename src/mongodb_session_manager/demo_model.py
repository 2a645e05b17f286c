"""Model selection for examples and demos: the offline demo model unless a real provider is named.

``create_model()`` returns ``DemoModel`` unless ``STRANDS_MODEL_PROVIDER`` names a real provider:

* ``STRANDS_MODEL_PROVIDER``: ``bedrock``, ``anthropic``, ``openai`` or ``demo`` (the default when unset).
  Credentials in the environment never switch provider on their own: a machine with unrelated AWS credentials
  still runs the examples offline, at no cost.
* ``STRANDS_MODEL_ID``: the model id to use (each provider has a default).

``DemoModel`` is a small rule-based model, not an LLM: every answer starts with ``"[demo model] "``. It does
arithmetic through a ``calculator`` tool when the agent has one, remembers "my name is NAME" from the conversation
history (so a restored session can be seen working) and otherwise gives a short friendly reply.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re
import uuid
from collections.abc import Callable
from typing import Any

from strands import tool
from strands.models import Model
from strands.types.content import Message, Messages
from strands.types.tools import ToolResult, ToolSpec

from .testing import OfflineModel

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL_ID",
    "DEFAULT_OPENAI_MODEL_ID",
    "DEMO_MODEL_ID",
    "DEMO_PREFIX",
    "PROVIDERS",
    "DemoModel",
    "calculator",
    "create_model",
    "describe_model",
    "evaluate",
    "tool_result_text",
]


DEMO_PREFIX = "[demo model] "
DEMO_MODEL_ID = "demo-model"
DEFAULT_ANTHROPIC_MODEL_ID = "claude-sonnet-4-6"
DEFAULT_OPENAI_MODEL_ID = "gpt-4o"
PROVIDERS = ("bedrock", "anthropic", "openai", "demo")

_EXPRESSION_RE = re.compile(r"(?:(?<![\w)])-)?[\d(][\d\s.+\-*/()]*")
_OPERATOR_RE = re.compile(r"[\d)]\s*[-+*/]\s*[-(\d]")
_INTRODUCTION_RE = re.compile(r"\bmy name is\s+([^\W\d_][\w'-]*)", re.IGNORECASE)
_NAME_QUESTION_RE = re.compile(
    r"\b(?:what(?:'s|\s+is)\s+my\s+name|who\s+am\s+i|do\s+you\s+(?:know|remember)\s+my\s+name)\b", re.IGNORECASE
)


def _message_text(message: Message) -> str:
    """Join the plain text blocks of a message."""
    return " ".join(block["text"] for block in message.get("content", []) if "text" in block)


def tool_result_text(result: ToolResult) -> str:
    """Join the text and JSON items of a tool result."""
    parts = []
    for item in result.get("content", []):
        if "text" in item:
            parts.append(str(item["text"]))
        elif "json" in item:
            parts.append(json.dumps(item["json"], default=str))
    return " ".join(parts).strip()


def _find_expression(text: str) -> str | None:
    """Return the first arithmetic expression (digits, + - * / and parentheses) in the text, if any."""
    for match in _EXPRESSION_RE.finditer(text):
        candidate = match.group(0).strip().rstrip(" .+-*/(")
        while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
            candidate = candidate[:-1].rstrip()
        if _OPERATOR_RE.search(candidate):
            return candidate
    return None


class DemoModel(OfflineModel):
    """An offline, rule-based strands model for running the examples without credentials."""

    def __init__(self, model_id: str = DEMO_MODEL_ID) -> None:
        """Create the demo model."""
        super().__init__(model_id)

    def respond(self, messages: Messages, tool_specs: list[ToolSpec] | None = None) -> dict[str, Any]:
        """Decide the next assistant turn: ``{"text": ...}`` or ``{"tool": name, "input": {...}}``."""
        if not messages:
            return {"text": DEMO_PREFIX + "Hello! Say something to get started."}
        latest = messages[-1]
        results = [block["toolResult"] for block in latest.get("content", []) if "toolResult" in block]
        if results:
            return {"text": self._answer_tool_results(messages, results)}

        text = _message_text(latest).strip()
        tool_names = {spec.get("name") for spec in tool_specs or []}
        expression = _find_expression(text)
        if expression and "calculator" in tool_names:
            return {"tool": "calculator", "input": {"expression": expression}}

        if _NAME_QUESTION_RE.search(text):
            name = self._recall_name(messages)
            if name:
                return {"text": f"{DEMO_PREFIX}Your name is {name}."}
            return {"text": f'{DEMO_PREFIX}I don\'t know your name yet. Tell me with "my name is ...".'}

        introduction = _INTRODUCTION_RE.search(text)
        if introduction:
            return {"text": f"{DEMO_PREFIX}Nice to meet you, {introduction.group(1)}! I will remember your name."}

        if not text:
            return {"text": DEMO_PREFIX + "Hello! Say something to get started."}
        echoed = text if len(text) <= 80 else text[:77].rstrip() + "..."
        return {
            "text": f'{DEMO_PREFIX}You said: "{echoed}". I am an offline demo model: '
            'I can do arithmetic with a calculator tool and remember "my name is ...".'
        }

    @staticmethod
    def _recall_name(messages: Messages) -> str | None:
        """Return the most recent name the user introduced with "my name is NAME"."""
        for message in reversed(messages):
            if message.get("role") != "user":
                continue
            matches = _INTRODUCTION_RE.findall(_message_text(message))
            if matches:
                return str(matches[-1])
        return None

    @staticmethod
    def _answer_tool_results(messages: Messages, results: list[ToolResult]) -> str:
        """Phrase an answer from the tool results of the latest message."""
        names: dict[str, str] = {}
        for message in messages:
            for block in message.get("content", []):
                if "toolUse" in block:
                    names[block["toolUse"]["toolUseId"]] = block["toolUse"]["name"]
        sentences = []
        for result in results:
            value = tool_result_text(result) or "(no output)"
            name = names.get(result.get("toolUseId", ""), "tool")
            if result.get("status") == "error":
                sentences.append(f"The {name} tool failed: {value}")
            elif name == "calculator":
                sentences.append(f"The result is {value}.")
            else:
                sentences.append(f"The {name} tool returned: {value}")
        return DEMO_PREFIX + " ".join(sentences)

    def next_blocks(
        self, messages: Messages, tool_specs: list[ToolSpec] | None, system_prompt: str | None
    ) -> list[dict[str, Any]]:
        """Return the demo answer (``respond``) as one block; a tool call gets a fresh ``toolUseId``."""
        turn = self.respond(messages, tool_specs)
        if "tool" in turn:
            turn = {**turn, "id": f"tooluse_demo_{uuid.uuid4().hex[:16]}"}
        return [turn]


MAX_EXPRESSION_LENGTH = 200

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> int | float:
    """Evaluate ``expression``; only numbers, + - * / and parentheses are accepted.

    Raises:
        ValueError: The expression is too long, malformed or uses anything else.
        ZeroDivisionError: It divides by zero.
    """
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expressions are limited to {MAX_EXPRESSION_LENGTH} characters")

    def value(node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        raise ValueError("only numbers, + - * / and parentheses are allowed")

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from error
    result = value(tree.body)
    return int(result) if isinstance(result, float) and result.is_integer() else result


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / and parentheses, e.g. "12 * (3 + 4)".

    Args:
        expression: The expression to evaluate.
    """
    try:
        return str(evaluate(expression))
    except (ValueError, ZeroDivisionError, RecursionError) as error:
        return f"Error: {error}"


def create_model() -> Model:
    """Return the provider ``STRANDS_MODEL_PROVIDER`` names (see module docstring), else the offline ``DemoModel``."""
    provider = os.environ.get("STRANDS_MODEL_PROVIDER", "").strip().lower() or "demo"
    model_id = os.environ.get("STRANDS_MODEL_ID", "").strip() or None

    if provider == "demo":
        return DemoModel(model_id=model_id or DEMO_MODEL_ID)
    if provider == "bedrock":
        from strands.models.bedrock import BedrockModel

        return BedrockModel(model_id=model_id) if model_id else BedrockModel()
    if provider == "anthropic":
        try:
            from strands.models.anthropic import AnthropicModel
        except ImportError as exc:
            raise RuntimeError("the anthropic provider needs: pip install 'strands-agents[anthropic]'") from exc
        return AnthropicModel(model_id=model_id or DEFAULT_ANTHROPIC_MODEL_ID, max_tokens=4096)
    if provider == "openai":
        try:
            from strands.models.openai import OpenAIModel
        except ImportError as exc:
            raise RuntimeError("the openai provider needs: pip install 'strands-agents[openai]'") from exc
        return OpenAIModel(model_id=model_id or DEFAULT_OPENAI_MODEL_ID)
    raise ValueError(f"STRANDS_MODEL_PROVIDER must be one of {', '.join(PROVIDERS)}; got {provider!r}")


def describe_model(model: Model) -> str:
    """Return a one-line, human-readable description of the model for example output."""
    if isinstance(model, DemoModel):
        return "offline demo model (set STRANDS_MODEL_PROVIDER=bedrock, anthropic or openai to use a real model)"
    names = {"BedrockModel": "bedrock", "AnthropicModel": "anthropic", "OpenAIModel": "openai"}
    provider = names.get(type(model).__name__, type(model).__name__)
    config = model.get_config()
    model_id = config.get("model_id") if isinstance(config, dict) else getattr(config, "model_id", None)
    return f"{provider}: {model_id}" if model_id else provider
