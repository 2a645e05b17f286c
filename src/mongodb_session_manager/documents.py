"""The session-document layout in one place: field paths, conversions and validation. No I/O.

One document per session, ``_id == session_id``::

    {_id, session_id, session_type, created_at: Date, updated_at: Date, application_name?: str,
     session_data: {created_at: "ISO", updated_at: "ISO"},
     session_viewer_password, metadata: {...}, feedbacks: [{rating, comment, created_at: Date}],
     expires_at?: Date, legal_hold?: true,
     agents: {<escaped agent id>: {agent_data: {agent_id, state, conversation_manager_state,
                                                _internal_state, model, system_prompt,
                                                prompt_metadata?: {...},
                                                created_at: "ISO", updated_at: "ISO"},
                                   created_at: Date, updated_at: Date, pruned_before?: int,
                                   messages: [{message_id, message, redact_message,
                                               created_at: "ISO", updated_at: "ISO",
                                               event_loop_metrics?}]}},
     multi_agents: {<escaped id>: {state: {...}, created_at: Date, updated_at: Date}}}

An agent whose sub-document has ``message_storage: "collection"`` has no ``messages`` array: its
messages are documents of ``<collection>.messages`` (`message_row`: the array element plus
``session_id`` and ``agent_id``); see ``collection_messages.py`` and ``promotion.py``.

``application_name`` is written once, in the document that creates the session, and never changed; the
index ``application_name_1_created_at_1`` serves listing one application's sessions newest first.

``expires_at`` (with ``ttl_hours``) is the date the TTL index ``expires_at_1`` deletes the session at;
every write moves it, and a session with ``legal_hold: true`` has none. ``pruned_before`` is the lowest
``message_id`` an agent kept when its oldest messages were pruned (the ids are never renumbered).

strands compares restored objects with ``==``, so the ISO strings it wrote come back verbatim;
BSON dates sit beside them where MongoDB needs to index or range-query time.

Every user-supplied value (``message``, ``redact_message``, the three agent states, multi-agent
``state``, each metadata value, each feedback entry, an agent's ``prompt_metadata``) goes through a
reversible codec, `encode_value` and `decode_value`, so it comes back ``==`` to what was written
whatever its keys. Ordinary values are stored as they are; only what MongoDB cannot hold, or holds
differently by version, is wrapped in a one-key marker document:

* a dict with an unsafe key (empty, starting with ``$``, containing ``.`` or NUL, with a lone
  surrogate, or equal to a marker) -> ``{"__msm_map__": [[key, value], ...]}``;
* an int outside int64 -> ``{"__msm_int__": "<decimal digits>"}``;
* a str with a lone surrogate -> ``{"__msm_str__": <its bytes in UTF-8 with surrogatepass>}``;
* tuples become lists; bytes stay BSON binary.

Values written by earlier versions decode to themselves, except a ``bson.DBRef`` (a stored
``{"$ref", "$id"}`` dict), which decodes back to the plain dict it was written as.
"""

import dataclasses
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.dbref import DBRef
from bson.errors import BSONError
from strands.types.session import Session, SessionAgent, SessionMessage

from .errors import InvalidApplicationNameError, InvalidIdError, InvalidMetadataKeyError, SessionDataError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's document size limit (``maxBsonObjectSize``)."""

DEFAULT_DATABASE = "database_name"
"""The database every constructor uses by default (the seeds' documented default); the apps and examples too."""
DEFAULT_COLLECTION = "collection_name"
"""The sessions collection every constructor uses by default; the apps and examples too."""

VIEWER_PASSWORD_LENGTH = 32
_PASSWORD_ALPHABET = string.ascii_letters + string.digits

AGENT_CONFIG_FIELDS = ("model", "system_prompt")
"""Fields of ``agent_data`` owned by the manager rather than by strands' ``SessionAgent``, captured from the agent."""
PROMPT_METADATA_FIELD = "prompt_metadata"
"""Field of ``agent_data``: what the application says about the agent's prompt (set explicitly, never captured)."""

APPLICATION_NAME_FIELD = "application_name"
"""Top-level field of the session document: the application that created the session (never changed)."""
MAX_APPLICATION_NAME_LENGTH = 128
"""The longest ``application_name`` accepted, in characters."""
APPLICATION_INDEX = "application_name_1_created_at_1"
"""Name of the index on ``(application_name, created_at, _id)``: one application's sessions by creation time."""

_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24"}

EMBEDDED = "embedded"
"""Message layout: an agent's messages in the array ``agents.<id>.messages`` of the session document."""
COLLECTION = "collection"
"""Message layout: one document per message in the sibling collection ``<collection>.messages``."""
MESSAGE_LAYOUTS = (EMBEDDED, COLLECTION)
MESSAGE_STORAGE_FIELD = "message_storage"
"""Field of an agent's sub-document that says ``"collection"`` when its messages left the document."""
PAYLOAD_FILE_FIELD = "payload_file_id"
"""Field of a message document whose message is in GridFS (bigger than the document limit)."""
EXPIRES_AT_FIELD = "expires_at"
"""Date field of the session document that its TTL index expires on (set only with a ``ttl_hours``)."""
LEGAL_HOLD_FIELD = "legal_hold"
"""Field of the session document that says ``true`` while the session is held (it then never expires)."""
PRUNED_BEFORE_FIELD = "pruned_before"
"""Field of an agent's sub-document: the lowest ``message_id`` kept by the last prune (older ones are gone)."""
_ROW_KEYS = frozenset({"_id", "session_id", "agent_id"})

MAP_MARKER = "__msm_map__"
"""Marker of a dict stored as ``[[key, value], ...]`` pairs because a key is unsafe as a field name."""
INT_MARKER = "__msm_int__"
"""Marker of an int outside int64, stored as its decimal digits."""
STR_MARKER = "__msm_str__"
"""Marker of a str with lone surrogates, stored as its ``surrogatepass`` UTF-8 bytes."""
_MARKERS = frozenset({MAP_MARKER, INT_MARKER, STR_MARKER})
_NOT_A_MARKER = object()
_SCALARS = frozenset({str, int, float, bool, type(None), bytes, datetime})
"""Types that `decode_value` returns unchanged."""
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(SessionMessage) if f.init)
_AGENT_FIELDS = tuple(f.name for f in dataclasses.fields(SessionAgent) if f.init)
_AGENT_VALUE_FIELDS = ("state", "conversation_manager_state", "_internal_state")
_MESSAGE_VALUE_FIELDS = ("message", "redact_message")


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


def check_message_layout(message_storage: Any, max_embedded_messages: Any) -> None:
    """Check the ``message_storage`` and ``max_embedded_messages`` settings.

    Raises:
        ValueError: ``message_storage`` is not a layout name, or ``max_embedded_messages`` is not a positive int.
    """
    if message_storage not in MESSAGE_LAYOUTS:
        raise ValueError(
            f"message_storage=<{message_storage!r}> | message_storage must be one of {list(MESSAGE_LAYOUTS)}"
        )
    if type(max_embedded_messages) is not int or max_embedded_messages < 1:
        raise ValueError(
            f"max_embedded_messages=<{max_embedded_messages!r}> | max_embedded_messages must be a positive int"
        )


def message_storage_path(agent_id: str) -> str:
    """Dotted path of one agent's layout marker (``"collection"``, or absent for the embedded layout)."""
    return f"{agent_path(agent_id)}.{MESSAGE_STORAGE_FIELD}"


def messages_collection_name(collection_name: str) -> str:
    """Name of the sibling collection holding the collection layout's messages."""
    return f"{collection_name}.messages"


def message_row(session_id: str, agent_id: str, element: Mapping[str, Any]) -> dict[str, Any]:
    """The collection layout's document for one message: its array element plus the two ids."""
    return {"session_id": session_id, "agent_id": agent_id, **element}


def element_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Invert `message_row`: the array element a message document holds."""
    return {key: value for key, value in row.items() if key not in _ROW_KEYS}


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


def session_document(
    session: Session, ttl: timedelta | None = None, application_name: str | None = None
) -> dict[str, Any]:
    """Build the document inserted for a new session.

    With a ``ttl`` it expires that long after creation; with an ``application_name`` it records the
    application creating it (the only write of that field).
    """
    now = utc_now()
    expiry = {EXPIRES_AT_FIELD: now + ttl} if ttl is not None else {}
    application = {APPLICATION_NAME_FIELD: application_name} if application_name is not None else {}
    return {
        "_id": session.session_id,
        "session_id": session.session_id,
        "session_type": str(session.session_type.value),
        "created_at": now,
        "updated_at": now,
        **application,
        "session_data": {"created_at": session.created_at, "updated_at": session.updated_at},
        "session_viewer_password": new_viewer_password(),
        "metadata": {},
        "feedbacks": [],
        "agents": {},
        "multi_agents": {},
        **expiry,
    }


def check_application_name(application_name: Any) -> str | None:
    """Return ``application_name`` when it is None or a valid name.

    Raises:
        InvalidApplicationNameError: Not a string, empty, longer than `MAX_APPLICATION_NAME_LENGTH`
            characters, or holding NUL or a lone surrogate.
    """
    if application_name is None:
        return None
    problem = None
    if not isinstance(application_name, str):
        problem = f"must be a string, not {type(application_name).__name__}"
    elif not application_name:
        problem = "must not be empty"
    elif len(application_name) > MAX_APPLICATION_NAME_LENGTH:
        problem = f"must be at most {MAX_APPLICATION_NAME_LENGTH} characters, not {len(application_name)}"
    elif "\x00" in application_name or _has_lone_surrogate(application_name):
        problem = "must not contain NUL or a lone surrogate"
    if problem is not None:
        shown = application_name[:40] if isinstance(application_name, str) else application_name
        raise InvalidApplicationNameError(f"application_name=<{shown!r}> | application_name {problem}")
    return str(application_name)


def prompt_metadata_value(metadata: Any) -> dict[str, Any]:
    """Return the stored form (`encode_value`) of an agent's prompt metadata, checked before any write.

    Raises:
        TypeError: ``metadata`` is not a dict (or another mapping).
        SessionDataError: A key is not a string or a value cannot be stored in MongoDB.
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"prompt metadata must be a dict of fields, not {type(metadata).__name__}")
    keys = [key for key in metadata if not isinstance(key, str)]
    if keys:
        raise SessionDataError(f"prompt_metadata=<{keys[0]!r}> | prompt metadata keys must be strings")
    encoded: dict[str, Any] = encode_value(dict(metadata))
    try:
        bson.encode({PROMPT_METADATA_FIELD: encoded})
    except (BSONError, OverflowError, TypeError, ValueError) as error:
        raise SessionDataError(f"prompt metadata cannot be stored in MongoDB: {error}") from error
    return encoded


def check_ttl_hours(ttl_hours: Any) -> timedelta | None:
    """Return the ``ttl_hours`` setting as a duration (None: sessions never expire).

    Raises:
        ValueError: ``ttl_hours`` is not None nor a positive, finite number of hours.
    """
    if ttl_hours is None:
        return None
    if isinstance(ttl_hours, bool) or not isinstance(ttl_hours, int | float) or not 0 < ttl_hours < float("inf"):
        raise ValueError(f"ttl_hours=<{ttl_hours!r}> | ttl_hours must be None or a positive number of hours")
    return timedelta(hours=ttl_hours)


def expiring_updates(
    query: Mapping[str, Any], update: Mapping[str, Any], ttl: timedelta | None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (filter, update) variants of one session-document write that also move the session's expiry.

    Without a ``ttl`` the write is returned as it is. With one, the first variant matches sessions not
    under legal hold and sets ``expires_at`` to ``updated_at + ttl`` (``now + ttl`` when the write sets no
    ``updated_at``); the second matches held sessions and leaves ``expires_at`` unset. Exactly one variant
    can match a document, so running them in order until one matches applies the write once.
    """
    if ttl is None:
        return [(dict(query), dict(update))]
    sets = dict(update.get("$set", {}))
    now = sets.get("updated_at")
    sets[EXPIRES_AT_FIELD] = (now if isinstance(now, datetime) else utc_now()) + ttl
    free = ({**query, LEGAL_HOLD_FIELD: {"$ne": True}}, {**update, "$set": sets})
    held = ({**query, LEGAL_HOLD_FIELD: True}, dict(update))
    return [free, held]


SESSION_PROBE_PROJECTION = {"session_id": 1, "session_type": 1}
"""Projection of a read that only tells whether a document is a session (see `is_session_document`)."""


def is_session_document(document: Mapping[str, Any] | None) -> bool:
    """Whether ``document`` (read with at least `SESSION_PROBE_PROJECTION`) is a session document.

    A session document has ``_id == session_id`` (a string) and a ``session_type``; the documents of
    ``<collection>.messages`` and of GridFS do not.
    """
    if not document:
        return False
    session_id = document.get("session_id")
    return isinstance(session_id, str) and document.get("_id") == session_id and "session_type" in document


def session_from_document(document: Mapping[str, Any]) -> Session:
    """Rebuild the strands ``Session`` stored in a session document."""
    data = document.get("session_data") or {}
    fields: dict[str, Any] = {"session_id": document["session_id"], "session_type": document["session_type"]}
    fields.update({key: data[key] for key in ("created_at", "updated_at") if key in data})
    return Session.from_dict(fields)


def agent_data(session_agent: SessionAgent) -> dict[str, Any]:
    """Convert a ``SessionAgent`` to its ``agent_data`` sub-document, its states through `encode_value`."""
    data = dataclasses.asdict(session_agent)
    for name in _AGENT_VALUE_FIELDS:
        if name in data:
            data[name] = encode_value(data[name])
    return data


def session_agent_from(data: Mapping[str, Any]) -> SessionAgent:
    """Rebuild a ``SessionAgent`` from ``agent_data``, ignoring the manager's own fields.

    Built directly rather than with ``SessionAgent.from_dict``, which inspects the signature per key.
    """
    return SessionAgent(**{name: decode_value(data[name]) for name in _AGENT_FIELDS if name in data})


def message_document(session_message: SessionMessage) -> dict[str, Any]:
    """Convert a ``SessionMessage`` to its array element, its contents through `encode_value`."""
    element = dataclasses.asdict(session_message)
    for name in _MESSAGE_VALUE_FIELDS:
        element[name] = encode_value(element[name])
    return element


def session_message_from(document: Mapping[str, Any]) -> SessionMessage:
    """Rebuild a ``SessionMessage`` from its array element, ignoring extra fields such as metrics.

    Built directly rather than with ``SessionMessage.from_dict``, which inspects the signature per key
    (0.1 to 0.3 ms of CPU per message; see "Resume CPU" on the performance page).
    """
    return SessionMessage(**{name: decode_value(document[name]) for name in _MESSAGE_FIELDS if name in document})


def decoded_element(element: Mapping[str, Any]) -> dict[str, Any]:
    """A stored message element with ``message`` and ``redact_message`` decoded; other fields stay as stored."""
    decoded = dict(element)
    for name in _MESSAGE_VALUE_FIELDS:
        if name in decoded:
            decoded[name] = decode_value(decoded[name])
    return decoded


# ----------------------------------------------------------------- value codec


def encode_value(value: Any) -> Any:
    """Return the form of a user value that MongoDB stores and `decode_value` turns back into ``value``.

    Ordinary JSON-like values come back as they are (tuples as lists). Dicts with unsafe keys, ints
    outside int64 and strs with lone surrogates are wrapped in one-key marker documents (see the module
    docstring). Anything BSON cannot hold (a set, an arbitrary object, a non-str dict key) is left for
    the write to refuse.
    """
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is dict:
        return _encode_dict(value)
    if kind is list or kind is tuple:
        return [encode_value(item) for item in value]
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else {INT_MARKER: str(value)}
    if value is None or kind is bool or kind is float or kind is bytes:
        return value
    if isinstance(value, str):
        return _encode_str(str(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return encode_value(int(value))
    if isinstance(value, Mapping):
        return _encode_dict(value)
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    return value


def decode_value(value: Any) -> Any:
    """Invert `encode_value`; values written by earlier versions decode to themselves (a ``DBRef`` to its dict)."""
    kind = type(value)
    if kind is dict or (kind is not DBRef and isinstance(value, Mapping)):
        if len(value) == 1:
            ((key, item),) = value.items()
            if key in _MARKERS:
                decoded = _decode_marker(key, item)
                if decoded is not _NOT_A_MARKER:
                    return decoded
        # scalars are kept without a call: this walk runs over every restored message
        return {key: item if type(item) in _SCALARS else decode_value(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SCALARS else decode_value(item) for item in value]
    if isinstance(value, DBRef):
        return {key: decode_value(item) for key, item in value.as_doc().items()}
    return value


def _has_lone_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _encode_str(text: str) -> Any:
    return {STR_MARKER: text.encode("utf-8", "surrogatepass")} if _has_lone_surrogate(text) else text


def _safe_key(key: str) -> bool:
    """True when ``key`` is stored as a field name unchanged by every MongoDB version."""
    return (
        bool(key)
        and key[0] != "$"
        and "." not in key
        and "\x00" not in key
        and key not in _MARKERS
        and not _has_lone_surrogate(key)
    )


def _encode_dict(value: Mapping[Any, Any]) -> dict[str, Any]:
    keys_are_str = all(isinstance(key, str) for key in value)
    if not keys_are_str or all(_safe_key(key) for key in value):  # a non-str key is refused by the write
        return {key: encode_value(item) for key, item in value.items()}
    return {MAP_MARKER: [[_encode_str(str(key)), encode_value(item)] for key, item in value.items()]}


def _decode_marker(marker: str, item: Any) -> Any:
    """Decode a one-key marker document, or return `_NOT_A_MARKER` when its payload has the wrong shape."""
    if marker == MAP_MARKER and isinstance(item, list):
        pairs = [decode_value(pair) for pair in item]
        if all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs):
            return dict(pairs)
    elif marker == INT_MARKER and isinstance(item, str):
        try:
            return int(item)
        except ValueError:
            pass
    elif marker == STR_MARKER and isinstance(item, bytes):
        try:
            return item.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            pass
    return _NOT_A_MARKER


def validate_ids(**ids: Any) -> None:
    """Check that every id given (``session_id=...``, ``agent_id=...``) is a non-empty string.

    Called before any command is built: an id that is not a string would reach MongoDB as a query
    operator (``{"$ne": None}`` matches another session) or be joined into a field path
    (``["a", "b"]`` addresses agent ``"ab"``).

    Raises:
        InvalidIdError: An id is not a ``str``, is empty, or is not valid UTF-8 (a lone surrogate).
    """
    for name, value in ids.items():
        if not isinstance(value, str) or not value:
            raise InvalidIdError(f"{name}=<{value!r}> | {name} must be a non-empty string, not {_describe(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidIdError(f"{name}=<{value!r}> | {name} must be valid UTF-8 text") from error


def _describe(value: Any) -> str:
    return "an empty string" if value == "" else type(value).__name__


def metadata_key_list(keys: Any) -> list[Any]:
    """Return the metadata keys a delete names: a bare string is ONE key, never its characters.

    Raises:
        TypeError: ``keys`` is neither a string nor an iterable of keys.
    """
    if isinstance(keys, str):
        return [keys]
    if not isinstance(keys, Iterable):
        raise TypeError(f"metadata keys must be a list of strings, not {type(keys).__name__}")
    return list(keys)


def check_metadata_mapping(metadata: Any) -> Mapping[str, Any]:
    """Return ``metadata`` when it is a mapping of keys to values.

    Raises:
        TypeError: ``metadata`` is not a dict (or another mapping).
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict of fields to set, not {type(metadata).__name__}")
    return metadata


def validate_metadata_key(key: Any) -> str:
    """Check one metadata key; a dotted key addresses a nested field.

    Raises:
        InvalidMetadataKeyError: The key is not a string, or a path segment is empty, starts with ``$``,
            contains NUL or a lone surrogate, or is one of the value codec's markers.
    """
    if not isinstance(key, str):
        raise InvalidMetadataKeyError(f"metadata key {key!r} must be a string, not {type(key).__name__}")
    for segment in key.split("."):
        if not segment:
            raise InvalidMetadataKeyError(f"metadata key {key!r} has an empty path segment")
        if segment.startswith("$"):
            raise InvalidMetadataKeyError(f"metadata key {key!r} has a segment starting with '$'")
        if not _safe_key(segment):
            raise InvalidMetadataKeyError(
                f"metadata key {key!r} has a segment with NUL, a lone surrogate or a reserved name ({MAP_MARKER} ...)"
            )
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
