"""The ``manage_metadata`` strands tool, bound to one session manager."""

import json
from typing import TYPE_CHECKING, Any

from strands import tool
from strands.tools.decorator import DecoratedFunctionTool

from . import documents as docs

if TYPE_CHECKING:
    from .manager import MongoDBSessionManager

ACTIONS = ("get", "set", "update", "delete")


def create_metadata_tool(manager: "MongoDBSessionManager") -> DecoratedFunctionTool:
    """Build a ``manage_metadata`` tool that reads and writes ``manager``'s session metadata.

    The tool goes through the manager's public methods, so metadata hooks see its calls too.
    """

    @tool
    def manage_metadata(
        action: str,
        metadata: dict[str, Any] | str | None = None,
        keys: list[str] | str | None = None,
    ) -> str:
        """Get, set/update or delete metadata of the current conversation session.

        Args:
            action: "get" (all metadata, or only `keys`), "set" or "update" (store the fields in
                `metadata`, keeping the others), or "delete" (remove the fields named in `keys`).
            metadata: For set/update, the fields to store, e.g. {"customer_name": "Alice"}.
            keys: For get, the fields to return; for delete, the fields to remove. A dotted key
                ("prefs.theme") names a nested field.
        """
        try:
            return _run(manager, action, _parse(metadata, dict, "metadata"), _parse(keys, list, "keys"))
        except (ValueError, TypeError) as error:
            return f"Error: {error}"

    return manage_metadata


def _run(manager: "MongoDBSessionManager", action: Any, metadata: Any, keys: Any) -> str:
    if not isinstance(action, str):
        return f"Error: 'action' must be a string, one of {', '.join(ACTIONS)}; not {type(action).__name__}"
    action = action.strip().lower()
    if action == "get":
        paths = [docs.validate_metadata_key(key) for key in keys or []]
        stored = manager.get_metadata().get("metadata", {})
        if paths:
            return f"Metadata: {json.dumps({path: docs.get_path(stored, path) for path in paths}, default=str)}"
        return f"All metadata: {json.dumps(stored, default=str)}"
    if action in ("set", "update"):
        if not metadata:
            return f"Error: action '{action}' needs a non-empty 'metadata' object"
        manager.update_metadata(metadata)
        return f"Successfully updated metadata fields: {list(metadata)}"
    if action == "delete":
        if not keys:
            return "Error: action 'delete' needs a non-empty 'keys' list"
        manager.delete_metadata(keys)
        return f"Successfully deleted metadata fields: {list(keys)}"
    return f"Error: unknown action {action!r}; use one of {', '.join(ACTIONS)}"


def _parse(value: Any, expected: type, name: str) -> Any:
    """Accept a value as given or as the JSON text a model sometimes sends instead."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value] if expected is list else value
    if value is not None and not isinstance(value, expected):
        raise TypeError(f"'{name}' must be a {expected.__name__}, not {type(value).__name__}")
    return value
