"""The playground's agent, built fresh for every request: the session manager restores its conversation."""

import ast
import operator

from strands import Agent, tool
from strands.models import Model

from mongodb_session_manager import MongoDBSessionManager

AGENT_ID = "assistant"
MAX_EXPRESSION_LENGTH = 200

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> int | float:
    """Evaluate arithmetic with + - * / and parentheses, without ``eval``.

    Raises:
        ValueError: The expression is too long, malformed or uses anything else.
        ZeroDivisionError: It divides by zero.
    """
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expressions are limited to {MAX_EXPRESSION_LENGTH} characters")

    def value(node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
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
