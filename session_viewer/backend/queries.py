"""MongoDB queries of the viewer, built as plain data (no I/O): search, counts, metadata fields, one session.

Everything a list shows is computed by MongoDB: the search ships per-session counts, never message bodies.
Where messages live is the library's business: the search embeds its message-count expression, and the
messages themselves are read through ``MongoDBSessionRepository`` (see ``routes/sessions.py``).
"""

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mongodb_session_manager import MongoDBSessionRepository

__all__ = [
    "COUNT_CAP",
    "ID_INDEX",
    "METADATA_PREFIX",
    "SESSION_ID_MODES",
    "SearchParameterError",
    "check_filterable",
    "created_at_range",
    "detail_pipeline",
    "enum_values_pipeline",
    "indexed_metadata_fields",
    "is_prefix_search",
    "parse_application",
    "parse_filters",
    "search_match",
    "search_pipeline",
    "session_id_prefix_range",
]

METADATA_PREFIX = "metadata."
SESSION_ID_MODES = ("prefix", "contains")
"""How ``session_id`` matches: an anchored prefix on the ``_id`` index (default), or anywhere (a scan)."""
COUNT_CAP = 1000
"""A search counts its matches up to this many; past it the total is reported as capped ("1,000+")."""
ID_INDEX = "_id_"
"""The ``_id`` index every collection has: a session-id prefix search is hinted to it."""
MAX_APPLICATION_LENGTH = 128
"""The longest ``application_name`` the library stores; a longer ``application`` parameter is refused."""

Scalar = str | int | float | bool

_INT64 = 2**63 - 1
_RATINGS = ("up", "down")


class SearchParameterError(ValueError):
    """A search parameter the API refuses with 400."""


# ----------------------------------------------------------------------------- parameters


def parse_filters(raw: str | None) -> dict[str, Scalar]:
    """Parse the ``filters`` parameter: a JSON object of metadata field -> literal value.

    Raises:
        SearchParameterError: Not a JSON object, or a value that is not a string, finite number or boolean
            (an object such as ``{"$ne": null}`` or ``{"$where": ...}``, an array, or null).
    """
    if raw is None or raw.strip() == "":
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as error:
        raise SearchParameterError("filters must be a JSON object") from error
    if not isinstance(parsed, dict):
        raise SearchParameterError("filters must be a JSON object of metadata field -> value")
    for field, value in parsed.items():
        if not _is_literal(value):
            raise SearchParameterError(
                f"filter value for {field!r} must be a string, number or boolean (operators are not allowed)"
            )
    return parsed


def _is_literal(value: Any) -> bool:
    """Return True for a string, a boolean, a finite float or an int that fits BSON's int64."""
    if isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        return -_INT64 - 1 <= value <= _INT64
    return isinstance(value, float) and math.isfinite(value)


def parse_application(raw: str | None) -> str | None:
    """Parse the ``application`` parameter: an exact ``application_name`` (empty: no filter).

    Raises:
        SearchParameterError: Longer than `MAX_APPLICATION_LENGTH` characters or holding NUL (the library
            stores no such name).
    """
    if not raw:
        return None
    if len(raw) > MAX_APPLICATION_LENGTH or "\x00" in raw:
        raise SearchParameterError(f"application must be at most {MAX_APPLICATION_LENGTH} characters, without NUL")
    return raw


def check_filterable(filters: Mapping[str, Scalar], indexed: set[str]) -> None:
    """Refuse filters on metadata fields without an index.

    Raises:
        SearchParameterError: A field is not an indexed metadata field.
    """
    for field in filters:
        if field not in indexed:
            raise SearchParameterError(f"{field!r} is not a filterable (indexed) metadata field")


def created_at_range(start: str | None, end: str | None) -> dict[str, datetime]:
    """Build the ``created_at`` condition from ISO 8601 bounds (both inclusive).

    A bound without a time zone is UTC; a date without a time means the whole day
    (``end=2024-05-01`` includes all of May 1st). A bound beyond the years 1 to 9999 once in UTC
    (``end=9999-12-31`` ends in the year 10000) is cut to the first or last moment a datetime holds.

    Raises:
        SearchParameterError: A bound is not ISO 8601.
    """
    condition: dict[str, datetime] = {}
    if start:
        operator, moment = _start_condition(_parse_bound("created_at_start", start)[0])
        condition[operator] = moment
    if end:
        operator, moment = _end_condition(*_parse_bound("created_at_end", end))
        condition[operator] = moment
    return condition


def _parse_bound(name: str, raw: str) -> tuple[datetime, bool]:
    """Parse one bound; returns the moment (UTC when no zone is given) and whether only a date was given."""
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(raw)
    except ValueError as error:
        raise SearchParameterError(f"{name} must be an ISO 8601 date or date-time") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, False


_FIRST_MOMENT = datetime.min.replace(tzinfo=UTC)
_LAST_MOMENT = datetime.max.replace(tzinfo=UTC)


def _start_condition(moment: datetime) -> tuple[str, datetime]:
    """``$gte`` the moment in UTC; before the year 1 from the first moment, after 9999 matching nothing."""
    try:
        return "$gte", moment.astimezone(UTC)
    except OverflowError:
        return ("$gte", _FIRST_MOMENT) if moment.year == 1 else ("$gt", _LAST_MOMENT)


def _end_condition(moment: datetime, date_only: bool) -> tuple[str, datetime]:
    """``$lte`` the moment in UTC (before the next day for a date); after 9999 up to the last moment."""
    try:
        return ("$lt", moment + timedelta(days=1)) if date_only else ("$lte", moment.astimezone(UTC))
    except OverflowError:
        return ("$lte", _LAST_MOMENT) if moment.year == 9999 else ("$lt", _FIRST_MOMENT)


# ----------------------------------------------------------------------------- search


def search_match(
    session_id: str | None,
    created_at: Mapping[str, datetime],
    filters: Mapping[str, Any],
    application: str | None = None,
    session_id_mode: str = "prefix",
) -> dict[str, Any]:
    """Build the ``$match`` condition of a search: all given criteria must hold (AND).

    ``session_id`` matches ``_id``, which equals the session id and carries the default index: in
    ``"prefix"`` mode an ``_id`` range (case-sensitive, index bounds), in ``"contains"`` mode a literal
    partial match anywhere (regex-escaped, case-insensitive: it reads every id). ``application`` is equality
    on ``application_name`` (the library's ``application_name_1_created_at_1`` index serves it). A filter value
    is matched by equality; a list (`encryption.ViewerEncryption.query_values`: an encrypted field's ciphertext
    and clear value) by any of its items.

    Raises:
        SearchParameterError: ``session_id_mode`` is not one of `SESSION_ID_MODES`.
    """
    match: dict[str, Any] = {}
    if session_id:
        match["_id"] = _session_id_condition(session_id, session_id_mode)
    if application:
        match["application_name"] = {"$eq": application}
    if created_at:
        match["created_at"] = dict(created_at)
    for field, value in filters.items():
        match[f"{METADATA_PREFIX}{field}"] = {"$in": value} if isinstance(value, list) else {"$eq": value}
    return match


def _session_id_condition(session_id: str, mode: str) -> dict[str, Any]:
    """The ``_id`` condition of a session-id search in ``mode``."""
    if mode == "contains":
        return {"$regex": re.escape(session_id), "$options": "i"}
    if mode != "prefix":
        raise SearchParameterError(f"session_id_mode must be one of {', '.join(SESSION_ID_MODES)}")
    return session_id_prefix_range(session_id)


def session_id_prefix_range(prefix: str) -> dict[str, str]:
    """The ``_id`` range of the ids starting with ``prefix``, in MongoDB's binary string order.

    The upper bound is the prefix with its last character incremented (surrogates skipped; a last
    character that cannot grow is dropped first), so the range is exactly the ids the prefix starts.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:  # no stored string holds a lone surrogate
            code = 0xE000
        if code <= 0x10FFFF:
            return {"$gte": prefix, "$lt": "".join(chars[:-1]) + chr(code)}
        chars.pop()
    return {"$gte": prefix}


def is_prefix_search(session_id: str | None, session_id_mode: str) -> bool:
    """Whether a search walks the ``_id`` index: a session-id prefix is given.

    Such a search is hinted to the ``_id_`` index and listed in session-id order, so that a page reads
    only its own index entries (plus the offset) instead of sorting every match of the prefix.
    """
    return bool(session_id) and session_id_mode == "prefix"


def search_pipeline(
    match: Mapping[str, Any], offset: int, limit: int, by_session_id: bool = False
) -> list[dict[str, Any]]:
    """Build the aggregation returning one page of session summaries, newest first (or by id).

    ``by_session_id`` (a prefix search, see `is_prefix_search`) orders the page by session id, the
    ``_id`` index's own order. The page is cut before anything is computed; per session only the id,
    dates, metadata, agent ids, feedback counts and, in ``agent_counts``, the library's per-agent message
    counts (``$size`` of the embedded messages, and which agents keep theirs in ``<collection>.messages``)
    leave the server; pass them to ``MongoDBSessionRepository.count_messages``.
    """
    agents = {"$objectToArray": {"$ifNull": ["$agents", {}]}}
    feedbacks = {"$cond": [{"$isArray": "$feedbacks"}, "$feedbacks", []]}
    return [
        {"$match": dict(match)},
        {"$sort": {"_id": 1} if by_session_id else {"created_at": -1, "_id": -1}},
        {"$skip": offset},
        {"$limit": limit},
        {
            "$project": {
                "_id": 1,
                "session_id": {"$ifNull": ["$session_id", "$_id"]},
                "created_at": 1,
                "updated_at": 1,
                "application_name": 1,
                "metadata": 1,
                "agent_ids": {
                    "$map": {
                        "input": agents,
                        "as": "agent",
                        "in": {"$ifNull": ["$$agent.v.agent_data.agent_id", "$$agent.k"]},
                    }
                },
                "agent_counts": MongoDBSessionRepository.agent_message_counts_expression(),
                "feedback_up": _count_ratings(feedbacks, {"$eq": ["$$feedback.rating", "up"]}),
                "feedback_down": _count_ratings(feedbacks, {"$eq": ["$$feedback.rating", "down"]}),
                "feedback_neutral": _count_ratings(
                    feedbacks, {"$not": [{"$in": ["$$feedback.rating", list(_RATINGS)]}]}
                ),
            }
        },
    ]


def _count_ratings(feedbacks: Mapping[str, Any], condition: Mapping[str, Any]) -> dict[str, Any]:
    """Expression counting the feedback entries that satisfy ``condition``."""
    return {"$size": {"$filter": {"input": feedbacks, "as": "feedback", "cond": condition}}}


# ----------------------------------------------------------------------------- metadata fields


def indexed_metadata_fields(indexes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Metadata fields (without the ``metadata.`` prefix) that lead an index, sorted.

    Only an index's first key serves equality filters on its own; wildcard and text keys are skipped.
    """
    fields: set[str] = set()
    for index in indexes:
        keys = list((index.get("key") or {}).keys())
        if not keys:
            continue
        first = str(keys[0])
        if first.startswith(METADATA_PREFIX) and "$" not in first and index.get("key", {}).get(first) != "text":
            fields.add(first.removeprefix(METADATA_PREFIX))
    return sorted(fields)


def enum_values_pipeline(field: str, max_values: int) -> list[dict[str, Any]]:
    """Build the aggregation listing up to ``max_values + 1`` distinct values of a metadata field.

    Sorting on the indexed field first lets MongoDB answer with a distinct scan of the index.
    """
    path = f"{METADATA_PREFIX}{field}"
    return [
        {"$match": {path: {"$exists": True}}},
        {"$sort": {path: 1}},
        {"$group": {"_id": f"${path}"}},
        {"$limit": max_values + 1},
    ]


# ----------------------------------------------------------------------------- one session


def detail_pipeline(session_id: str) -> list[dict[str, Any]]:
    """Build the aggregation reading what the timeline shows of one session, except the messages.

    The messages are read through the library (``MongoDBSessionRepository.session_messages``). Messages,
    agent state, conversation-manager state, multi-agent state and the viewer password stay on the server.
    ``encrypted`` says whether the session has a data key (``encryption_key_id``): its key id stays there too.
    """
    return [
        {"$match": {"_id": session_id}},
        {"$limit": 1},
        {
            "$project": {
                "_id": 0,
                "session_id": {"$ifNull": ["$session_id", "$_id"]},
                "created_at": 1,
                "updated_at": 1,
                "metadata": 1,
                "feedbacks": 1,
                "application_name": 1,
                "guardrail_summary": 1,
                "encrypted": {"$ne": [{"$type": "$encryption_key_id"}, "missing"]},
                "agents": {
                    "$map": {
                        "input": {"$objectToArray": {"$ifNull": ["$agents", {}]}},
                        "as": "agent",
                        "in": {
                            "key": "$$agent.k",
                            "agent_id": "$$agent.v.agent_data.agent_id",
                            "model": "$$agent.v.agent_data.model",
                            "system_prompt": "$$agent.v.agent_data.system_prompt",
                        },
                    }
                },
            }
        },
    ]
