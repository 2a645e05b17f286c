"""The session-document layout in one place: field paths, conversions and validation. No I/O.

One document per session, ``_id == session_id``::

    {_id, session_id, session_type, created_at: Date, updated_at: Date,
     session_data: {created_at: "ISO", updated_at: "ISO"},
     session_viewer_password, metadata: {...}, feedbacks: [{rating, comment, created_at: Date}],
     agents: {<escaped agent id>: {agent_data: {agent_id, state, conversation_manager_state,
                                                _internal_state, model, system_prompt,
                                                created_at: "ISO", updated_at: "ISO"},
                                   created_at: Date, updated_at: Date,
                                   messages: [{message_id, message, redact_message,
                                               created_at: "ISO", updated_at: "ISO",
                                               event_loop_metrics?}]}},
     multi_agents: {<escaped id>: {state: {...}, created_at: Date, updated_at: Date}}}

strands compares restored objects with ``==``, so the ISO strings it wrote come back verbatim;
BSON dates sit beside them where MongoDB needs to index or range-query time.
"""

import dataclasses
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from strands.types.session import Session, SessionAgent, SessionMessage

from .errors import InvalidMetadataKeyError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's document size limit (``maxBsonObjectSize``)."""

VIEWER_PASSWORD_LENGTH = 32
_PASSWORD_ALPHABET = string.ascii_letters + string.digits

AGENT_CONFIG_FIELDS = ("model", "system_prompt")
"""Fields of ``agent_data`` owned by the manager rather than by strands' ``SessionAgent``."""

_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24"}


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def escape_key(key: str) -> str:
    """Escape an id for use as a field name: ``.`` and ``$`` would otherwise be read as paths or operators."""
    return "".join(_ESCAPES.get(char, char) for char in key)


def unescape_key(key: str) -> str:
    """Invert `escape_key`."""
    for char, escaped in reversed(_ESCAPES.items()):
        key = key.replace(escaped, char)
    return key


def agent_path(agent_id: str) -> str:
    """Dotted path of one agent's sub-document."""
    return f"agents.{escape_key(agent_id)}"


def messages_path(agent_id: str) -> str:
    """Dotted path of one agent's message array."""
    return f"{agent_path(agent_id)}.messages"


def multi_agent_path(multi_agent_id: str) -> str:
    """Dotted path of one multi-agent's sub-document."""
    return f"multi_agents.{escape_key(multi_agent_id)}"


def get_path(document: Mapping[str, Any] | None, path: str) -> Any:
    """Return the value at a dotted path of a fetched document, or None when any part is missing."""
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def new_viewer_password() -> str:
    """Generate a 32-character alphanumeric password for the Session Viewer with ``secrets``."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(VIEWER_PASSWORD_LENGTH))


def session_document(session: Session) -> dict[str, Any]:
    """Build the document inserted for a new session."""
    now = utc_now()
    return {
        "_id": session.session_id,
        "session_id": session.session_id,
        "session_type": str(session.session_type.value),
        "created_at": now,
        "updated_at": now,
        "session_data": {"created_at": session.created_at, "updated_at": session.updated_at},
        "session_viewer_password": new_viewer_password(),
        "metadata": {},
        "feedbacks": [],
        "agents": {},
        "multi_agents": {},
    }


def session_from_document(document: Mapping[str, Any]) -> Session:
    """Rebuild the strands ``Session`` stored in a session document."""
    data = document.get("session_data") or {}
    fields: dict[str, Any] = {"session_id": document["session_id"], "session_type": document["session_type"]}
    fields.update({key: data[key] for key in ("created_at", "updated_at") if key in data})
    return Session.from_dict(fields)


def agent_data(session_agent: SessionAgent) -> dict[str, Any]:
    """Convert a ``SessionAgent`` to its ``agent_data`` sub-document (bytes stay BSON binary)."""
    return dataclasses.asdict(session_agent)


def session_agent_from(data: Mapping[str, Any]) -> SessionAgent:
    """Rebuild a ``SessionAgent`` from ``agent_data``, ignoring the manager's own fields."""
    return SessionAgent.from_dict(dict(data))


def message_document(session_message: SessionMessage) -> dict[str, Any]:
    """Convert a ``SessionMessage`` to its array element (bytes stay BSON binary)."""
    return dataclasses.asdict(session_message)


def session_message_from(document: Mapping[str, Any]) -> SessionMessage:
    """Rebuild a ``SessionMessage`` from its array element, ignoring extra fields such as metrics."""
    return SessionMessage.from_dict(dict(document))


def validate_metadata_key(key: Any) -> str:
    """Check one metadata key; a dotted key addresses a nested field.

    Raises:
        InvalidMetadataKeyError: The key is not a string, or a path segment is empty or starts with ``$``.
    """
    if not isinstance(key, str):
        raise InvalidMetadataKeyError(f"metadata key {key!r} must be a string, not {type(key).__name__}")
    for segment in key.split("."):
        if not segment:
            raise InvalidMetadataKeyError(f"metadata key {key!r} has an empty path segment")
        if segment.startswith("$"):
            raise InvalidMetadataKeyError(f"metadata key {key!r} has a segment starting with '$'")
    return key


def metadata_paths(keys: Iterable[Any]) -> list[str]:
    """Validate every key first, then return their document paths under ``metadata``.

    Raises:
        InvalidMetadataKeyError: A key is invalid, or one key is a path prefix of another
            (``"prefs"`` and ``"prefs.theme"`` in one write would conflict).
    """
    keys = [validate_metadata_key(key) for key in keys]
    seen = set(keys)
    for key in keys:
        segments = key.split(".")
        for end in range(1, len(segments)):
            prefix = ".".join(segments[:end])
            if prefix in seen:
                raise InvalidMetadataKeyError(f"metadata keys {prefix!r} and {key!r} overlap in one write")
    return [f"metadata.{key}" for key in keys]
