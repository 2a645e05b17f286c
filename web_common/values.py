"""Stored BSON values as JSON for the apps' APIs: one conversion for the Session Viewer and the playground."""

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mongodb_session_manager.documents import decode_value

__all__ = ["byte_size", "iso_utc", "json_safe", "parse_timestamp", "plain_json"]

_ENCODED_BYTES_KEY = "__bytes_encoded__"


def iso_utc(value: datetime) -> str:
    """Format a datetime as ISO 8601 in UTC with microseconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_timestamp(value: Any) -> datetime | None:
    """Read a stored timestamp (BSON date or ISO string) as an aware UTC datetime, or None."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def byte_size(value: Any) -> int | None:
    """Size of stored bytes: BSON binary, or strands' ``{"__bytes_encoded__": true, "data": base64}`` form."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, Mapping) and value.get(_ENCODED_BYTES_KEY) and isinstance(value.get("data"), str):
        try:
            return len(base64.b64decode(value["data"], validate=False))
        except ValueError:
            return None
    return None


def json_safe(value: Any) -> Any:
    """Convert a stored value to JSON: dates become ISO strings, bytes become a size note, never the bytes.

    Values the library stored in its reversible form (dicts with ``$`` or dotted keys, huge ints) are shown
    as they were written; non-finite floats and other types (ObjectId, Decimal128, ...) become text.
    """
    return _json_safe(decode_value(value))


def plain_json(value: Any) -> Any:
    """Convert a value the library already decoded (a message read through it) to JSON, like `json_safe`.

    Decoding it again could turn a user value that looks like the library's stored form into another one.
    """
    return _json_safe(value)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    size = byte_size(value)
    if size is not None:
        return {"binary_size_bytes": size}
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return str(value)
