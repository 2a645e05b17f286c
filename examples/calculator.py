"""The ``calculator`` tool the examples give their agents: arithmetic with + - * / and parentheses, without ``eval``.

Not an example itself; the ``example_*.py`` scripts import it (``from calculator import calculator``).
"""

import ast
import operator

from strands import tool

MAX_EXPRESSION_LENGTH = 200

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> int | float:
    """Evaluate ``expression``; only numbers, + - * / and parentheses are accepted.

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
