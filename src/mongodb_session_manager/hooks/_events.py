"""The metadata change event the SQS and WebSocket hooks send, and the JSON encoding of its values."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

METADATA_EVENT = "metadata_update"


def utc_timestamp() -> str:
    """Return the current time as an ISO 8601 string with a ``+00:00`` offset."""
    return datetime.now(UTC).isoformat()


def metadata_event(
    action: str,
    session_id: str,
    kwargs: Mapping[str, Any],
    fields: Sequence[str] | None,
    exclude: Collection[str] = (),
) -> dict[str, Any] | None:
    """Describe a metadata ``update`` or ``delete``; None for other actions or when no selected field changed.

    ``{"session_id", "event": "metadata_update", "operation": "update"|"delete", "metadata", "timestamp"}``;
    a delete sets each deleted key to ``None`` in ``metadata`` and lists them in ``deleted_keys``.
    """
    if action == "update":
        metadata = kwargs.get("metadata")
        if not isinstance(metadata, Mapping):
            return None
        keys = [key for key in select_fields(metadata, fields) if key not in exclude]
        changed: dict[str, Any] = {key: metadata[key] for key in keys}
        deleted: list[str] | None = None
    elif action == "delete":
        deleted_keys = kwargs.get("keys")
        if isinstance(deleted_keys, str):
            deleted_keys = [deleted_keys]
        if not isinstance(deleted_keys, Iterable):
            return None
        keys = [key for key in select_fields(deleted_keys, fields) if key not in exclude]
        changed, deleted = dict.fromkeys(keys), keys
    else:
        return None
    if not keys:
        return None
    event = {
        "session_id": session_id,
        "event": METADATA_EVENT,
        "operation": action,
        "metadata": changed,
        "timestamp": utc_timestamp(),
    }
    if deleted is not None:
        event["deleted_keys"] = deleted
    return event


def field_list(metadata_fields: Sequence[str] | None) -> list[str] | None:
    """Normalise a hook's ``metadata_fields``: None or empty means every field; one string means that field."""
    if not metadata_fields:
        return None
    if isinstance(metadata_fields, str):
        return [metadata_fields]
    return list(metadata_fields)


def select_fields(keys: Iterable[Any], fields: Sequence[str] | None) -> list[Any]:
    """Return the keys a notification may carry: all of them, or those naming (a field inside) a selected field."""
    if fields is None:
        return list(keys)
    return [key for key in keys if isinstance(key, str) and any(key == f or key.startswith(f"{f}.") for f in fields)]


def json_default(value: Any) -> Any:
    """Serialise what MongoDB metadata may hold but JSON lacks: dates as ISO strings, anything else as ``str``."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
