"""The usage dashboard's numbers, computed by MongoDB over both message layouts (`dashboard_metrics`).

One call sends two aggregates, each starting from an index on the date range:

1. **Sessions per day**: session documents whose ``created_at`` (BSON date) is in the range, grouped by UTC day
   (index ``created_at_1__id_1``, or ``application_name_1_created_at_1`` with an application filter).
2. **Everything else**: session documents with ``updated_at >= start`` (index ``updated_at_1``; any write to a
   session moves it, so a document holding a message or a feedback of the range was written at or after its
   start) give their feedback entries of the range and their embedded messages whose ISO ``created_at`` string is
   in the range; ``$unionWith`` adds the documents of ``<collection>.messages`` whose ``created_at`` is in the
   range (index ``created_at``), grouped by agent first so that each agent's session is looked up once (by
   ``_id``) for the filters and the model. A ``$facet`` then reduces these rows to at most 366 day rows, one total,
   the top 10 tools and the top 10 models: no message, and no list of figures, leaves the server.

Messages are every stored message (user and assistant) of the range. Token counts, latencies and tool calls come
from the ``event_loop_metrics`` stored on the message closing each agent invocation (one per invocation); a
missing figure (data written before a key existed) is skipped, never counted as zero. Percentiles use the
nearest-rank method: of the ``n`` figures sorted, the one at 1-based rank ``ceil(p * n / 100)``. MongoDB computes
them from a histogram (one entry per distinct value and day), so memory follows the distinct values, not the
invocations. The day of a message is the first 10 characters of its ``created_at`` string (strands writes UTC),
that of a session or a feedback the UTC day of its BSON date.

Encrypted sessions (``encryption=EncryptionSettings(...)``): every figure the dashboard reads is stored clear. A
metadata filter on a field encrypted deterministically matches its ciphertext, computed with the ``encryption``
given (one key-vault lookup per field, then cached), or its clear value (sessions written before encryption); a
field encrypted randomly cannot be filtered on.
"""

import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bson.decimal128 import Decimal128
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from . import documents as docs
from .encryption import EncryptionSettings, FieldCipher, require_encryption_support, sealer_for
from .errors import SessionDataError

__all__ = ["MAX_RANGE_DAYS", "TOP_ITEMS", "DashboardQueryError", "dashboard_metrics"]

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366
"""The longest range `dashboard_metrics` answers, in days (both ends included)."""
TOP_ITEMS = 10
"""Tools and models listed by `dashboard_metrics`: the busiest ones."""

_PERCENTILES = (50, 95)
_SESSIONS_INDEX = "created_at_1__id_1"
_APPLICATION_INDEX = "application_name_1_created_at_1"
_UPDATED_INDEX = "updated_at_1"
_BAD_VALUE = 2
"""MongoDB's error code for a hint that names no index (among other bad values)."""
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ESCAPED_CHARS = "%.$"
"""The characters `documents.escape_key` replaces in an agent id ('%' first, as it does)."""
_SUMS = (
    "messages",
    "invocations",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "feedback_up",
    "feedback_down",
    "feedback_none",
)
_DAY_KEYS = (
    "day",
    "sessions",
    "messages",
    "input_tokens",
    "output_tokens",
    "latency_p50",
    "latency_p95",
    "ttfb_p50",
    "ttfb_p95",
    "feedback_up",
    "feedback_down",
    "feedback_none",
)
_TOTAL_KEYS = (
    "sessions",
    "messages",
    "invocations",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_p50",
    "latency_p95",
    "ttfb_p50",
    "ttfb_p95",
    "feedback_up",
    "feedback_down",
    "feedback_none",
    "feedback_ratio",
)
_DAY_SUMS = ("messages", "input_tokens", "output_tokens", "feedback_up", "feedback_down", "feedback_none")


class DashboardQueryError(ValueError):
    """A date range or a filter `dashboard_metrics` refuses (the Session Viewer answers 400); nothing was sent."""


class _Query:
    """A checked `dashboard_metrics` request: its days, bounds and session filter."""

    def __init__(
        self,
        start: date,
        end: date,
        application: str | None,
        metadata: dict[str, Any],
        agent_id: str | None,
        model: str | None,
    ) -> None:
        self.start, self.end = start, end
        self.application, self.metadata, self.agent_id, self.model = application, metadata, agent_id, model
        self.first_moment = datetime.combine(start, time.min, UTC)
        self.last_moment = datetime.combine(end, time(23, 59, 59, 999000), UTC)
        """The last millisecond of ``end``: BSON dates have millisecond precision."""
        self.first_iso = f"{start.isoformat()}T00:00:00"
        self.after_iso = f"{end.isoformat()}T24"
        """Sorts after every ISO time of day ``end`` (hours run to 23) and before the next day: also for 9999-12-31."""

    def days(self) -> list[str]:
        """Every day of the range, in order."""
        return [(self.start + timedelta(days=n)).isoformat() for n in range((self.end - self.start).days + 1)]


def dashboard_metrics(
    sessions: Collection,
    start: date | str,
    end: date | str,
    *,
    application: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    agent_id: str | None = None,
    model: str | None = None,
    encryption: EncryptionSettings | None = None,
) -> dict[str, Any]:
    """Compute the usage dashboard of a session collection for a range of UTC days (two aggregates).

    Args:
        sessions: The sessions collection (its messages collection is ``<name>.messages``).
        start: The first day, a ``date`` or ``"YYYY-MM-DD"``.
        end: The last day (included), at most `MAX_RANGE_DAYS` days after ``start`` counting both.
        application: Only sessions with this ``application_name``.
        metadata: Only sessions whose metadata fields equal these values (no index needed: the date index
            bounds the scan).
        agent_id: Only this agent's messages, and sessions (and their feedback) that have this agent.
        model: Only messages of agents whose recorded model is this, and sessions that have such an agent.
        encryption: The sessions' encryption settings (the ``encryption`` extra), for ``metadata`` filters on
            fields they encrypt: a deterministic field's value is encrypted to match (or its clear value, in sessions
            written without encryption). Without it such a filter matches clear values only.

    Returns:
        ``{"start", "end", "days": [...], "totals": {...}, "tools": [...], "models": [...]}``: one row per day of the
        range (zero-filled) with ``sessions``, ``messages``, ``input_tokens``, ``output_tokens``, ``latency_p50``,
        ``latency_p95``, ``ttfb_p50``, ``ttfb_p95`` (ms, or None without figures), ``feedback_up``,
        ``feedback_down`` and ``feedback_none`` (any other rating, null included); the same over the range in
        ``totals`` plus ``invocations``, ``cache_read_tokens``, ``cache_write_tokens`` and ``feedback_ratio``
        (up / (up + down), or None); the `TOP_ITEMS` tools by calls (``tool``, ``calls``, ``errors``,
        ``error_rate``) and models by input + output tokens (``model``, None when not recorded,
        ``input_tokens``, ``output_tokens``, ``invocations``).

    Raises:
        DashboardQueryError: A day is not ``YYYY-MM-DD``, ``end`` is before ``start``, the range is longer than
            `MAX_RANGE_DAYS` days, or a filter is not a non-empty string (metadata: a dict of valid keys; not a
            randomly encrypted field; for a deterministically encrypted one, a string, int, date or bytes).
        EncryptionKeyError: ``encryption`` cannot use a deterministic field's key (a wrong master key).
        pymongo.errors.PyMongoError: MongoDB failed or is unreachable.
    """
    cipher = _cipher(sessions, encryption)
    query = _check(start, end, application, metadata, agent_id, model, cipher)
    per_day = _aggregate(sessions, _sessions_pipeline(query), _session_hints(query), batchSize=MAX_RANGE_DAYS + 1)
    panels = _aggregate(sessions, _panels_pipeline(query, sessions.name), [_UPDATED_INDEX])
    logger.debug(
        "collection=<%s> | start=<%s> | end=<%s> | computed dashboard metrics",
        sessions.full_name,
        query.start,
        query.end,
    )
    return _response(query, {row["_id"]: row["sessions"] for row in per_day}, panels[0] if panels else {})


# ----------------------------------------------------------------------------- the request


def _cipher(sessions: Collection, encryption: EncryptionSettings | None) -> FieldCipher | None:
    """The field cipher that encrypts deterministic metadata filters (None without ``encryption``; no I/O)."""
    if encryption is None:
        return None
    if not isinstance(encryption, EncryptionSettings):
        raise TypeError(f"encryption must be an EncryptionSettings, not {type(encryption).__name__}")
    require_encryption_support()
    return FieldCipher(sealer_for(sessions.database.client, encryption))


def _check(
    start: Any, end: Any, application: Any, metadata: Any, agent_id: Any, model: Any, cipher: FieldCipher | None
) -> _Query:
    """Check the arguments of `dashboard_metrics`.

    Raises:
        DashboardQueryError: An argument is refused.
    """
    first, last = _day("start", start), _day("end", end)
    if last < first:
        raise DashboardQueryError(f"start=<{first}> | end=<{last}> | end must not be before start")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise DashboardQueryError(f"start=<{first}> | end=<{last}> | the range must be at most {MAX_RANGE_DAYS} days")
    for name, value in (("application", application), ("agent_id", agent_id), ("model", model)):
        if value is not None and (not isinstance(value, str) or value == ""):
            raise DashboardQueryError(f"{name}=<{value!r}> | {name} must be a non-empty string")
    return _Query(first, last, application, _metadata_terms(metadata, cipher), agent_id, model)


def _day(name: str, value: Any) -> date:
    """A day of the range: a ``date`` (not a ``datetime``) or ``"YYYY-MM-DD"``."""
    if type(value) is date:
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise DashboardQueryError(f"{name}=<{value!r}> | {name} must be a date or YYYY-MM-DD")


def _metadata_terms(metadata: Any, cipher: FieldCipher | None = None) -> dict[str, Any]:
    """Equality terms ``{"metadata.<key>": stored value}`` (values stored as the library stores them).

    With a cipher, a deterministically encrypted field's term is ``{"$in": [ciphertext, stored value]}`` (just the
    stored value while no session wrote one encrypted: its key does not exist yet).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise DashboardQueryError(f"metadata=<{metadata!r}> | metadata must be a dict of field: value")
    terms: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            docs.validate_metadata_key(key)
        except ValueError as error:
            raise DashboardQueryError(f"metadata=<{key!r}> | {error}") from error
        stored = docs.encode_value(value)
        terms[f"metadata.{key}"] = _encrypted_term(cipher, key, stored) if cipher is not None else stored
    return terms


def _encrypted_term(cipher: FieldCipher, key: str, stored: Any) -> Any:
    """The term matching ``stored`` in metadata field ``key``, encrypted as the field is (see `_metadata_terms`)."""
    if key not in cipher.deterministic_metadata_fields:
        try:
            cipher.metadata_query_value(key, stored)  # refuses a randomly encrypted field, sends nothing
        except ValueError as error:
            raise DashboardQueryError(str(error)) from error
        return stored
    try:
        matches, ciphertext = cipher.metadata_query_value(key, stored)
    except SessionDataError as error:
        raise DashboardQueryError(f"metadata=<{key!r}> | {error}") from error
    return {"$in": [ciphertext, stored]} if matches else stored


def _session_filter(query: _Query) -> dict[str, Any]:
    """What a session must hold to count: application, metadata, agent and model filters."""
    terms: dict[str, Any] = dict(query.metadata)
    if query.application is not None:
        terms["application_name"] = query.application
    if query.agent_id is not None:
        data = f"{docs.agent_path(query.agent_id)}.agent_data"
        terms.update({f"{data}.model": query.model} if query.model is not None else {data: {"$exists": True}})
    elif query.model is not None:
        models = {"$map": {"input": _agents("$agents"), "as": "a", "in": "$$a.v.agent_data.model"}}
        terms["$expr"] = {"$in": [query.model, models]}
    return terms


def _session_hints(query: _Query) -> list[str]:
    return [_APPLICATION_INDEX, _SESSIONS_INDEX] if query.application is not None else [_SESSIONS_INDEX]


def _aggregate(collection: Collection, pipeline: list[dict[str, Any]], hints: list[str], **options: Any) -> list[Any]:
    """Run ``pipeline`` with the first of ``hints`` that names an index (one command when the first does)."""
    for hint in hints:
        try:
            return list(collection.aggregate(pipeline, hint=hint, **options))
        except OperationFailure as error:
            if error.code != _BAD_VALUE:
                raise
            logger.warning(
                "collection=<%s> | index=<%s> | index missing; create the library's indexes", collection.full_name, hint
            )
    return list(collection.aggregate(pipeline, **options))


# ----------------------------------------------------------------------------- sessions per day


def _sessions_pipeline(query: _Query) -> list[dict[str, Any]]:
    """Sessions created in the range, counted per UTC day."""
    created = {"$gte": query.first_moment, "$lte": query.last_moment}
    return [
        {"$match": {"created_at": created, **_session_filter(query)}},
        {"$group": {"_id": _utc_day("$created_at"), "sessions": {"$sum": 1}}},
    ]


# ----------------------------------------------------------------------------- message, tool, model and feedback panels


def _panels_pipeline(query: _Query, sessions_name: str) -> list[dict[str, Any]]:
    """One row per feedback and message of the range, from both layouts, reduced by a ``$facet``."""
    rows = {"$concatArrays": [_feedback_rows(query), _embedded_message_rows(query)]}
    return [
        {"$match": {"updated_at": {"$gte": query.first_moment}, **_session_filter(query)}},
        {"$project": {"_id": 0, "rows": rows}},
        {"$unwind": "$rows"},
        {"$replaceRoot": {"newRoot": "$rows"}},
        {
            "$unionWith": {
                "coll": docs.messages_collection_name(sessions_name),
                "pipeline": _collection_message_rows(query, sessions_name),
            }
        },
        {"$facet": _facets()},
    ]


def _feedback_rows(query: _Query) -> dict[str, Any]:
    """The session's feedback entries of the range, as rows ``{day, feedback_up|down|none: 1}``."""
    entries = {"$cond": [{"$isArray": "$feedbacks"}, "$feedbacks", []]}
    in_range = {
        "$and": [{"$gte": ["$$f.created_at", query.first_moment]}, {"$lte": ["$$f.created_at", query.last_moment]}]
    }
    rating = {"$ifNull": ["$$f.rating", None]}
    return {
        "$map": {
            "input": {"$filter": {"input": entries, "as": "f", "cond": in_range}},
            "as": "f",
            "in": {
                "day": _utc_day("$$f.created_at"),
                "feedback_up": {"$cond": [{"$eq": [rating, "up"]}, 1, 0]},
                "feedback_down": {"$cond": [{"$eq": [rating, "down"]}, 1, 0]},
                "feedback_none": {"$cond": [{"$in": [rating, ["up", "down"]]}, 0, 1]},
            },
        }
    }


def _embedded_message_rows(query: _Query) -> dict[str, Any]:
    """The messages of the range in the document's embedded agents (those the filters keep), as rows."""
    conditions: list[Any] = [{"$ne": ["$$a.v." + docs.MESSAGE_STORAGE_FIELD, docs.COLLECTION]}]
    if query.agent_id is not None:
        conditions.append({"$eq": ["$$a.k", docs.escape_key(query.agent_id)]})
    if query.model is not None:
        conditions.append({"$eq": ["$$a.v.agent_data.model", query.model]})
    agents = {"$filter": {"input": _agents("$agents"), "as": "a", "cond": {"$and": conditions}}}
    messages = {"$cond": [{"$isArray": "$$agent.v.messages"}, "$$agent.v.messages", []]}
    in_range = {"$and": [{"$gte": ["$$m.created_at", query.first_iso]}, {"$lt": ["$$m.created_at", query.after_iso]}]}
    rows = {
        "$map": {
            "input": {"$filter": {"input": messages, "as": "m", "cond": in_range}},
            "as": "m",
            "in": {**_message_row("$$m."), "model": "$$agent.v.agent_data.model"},
        }
    }
    return {
        "$reduce": {
            "input": agents,
            "initialValue": [],
            "in": {"$concatArrays": ["$$value", {"$let": {"vars": {"agent": "$$this"}, "in": rows}}]},
        }
    }


def _collection_message_rows(query: _Query, sessions_name: str) -> list[dict[str, Any]]:
    """The ``<collection>.messages`` pipeline: message documents of the range as rows, with their agent's model.

    Grouped by (session, agent) first, so each agent's session document is looked up once by ``_id``; only agents
    whose session says they keep their messages in the collection count (no copy made by a promotion in progress).
    """
    pipeline: list[dict[str, Any]] = [{"$match": {"created_at": {"$gte": query.first_iso, "$lt": query.after_iso}}}]
    if query.agent_id is not None:
        pipeline.append({"$match": {"agent_id": query.agent_id}})  # a second stage: the date index stays the plan
    session_terms = dict(query.metadata)
    if query.application is not None:
        session_terms["application_name"] = query.application
    agent = {
        "$arrayElemAt": [
            {"$filter": {"input": _agents("$agents"), "as": "a", "cond": {"$eq": ["$$a.k", _escaped("$$agent")]}}},
            0,
        ]
    }
    session_stages: list[dict[str, Any]] = [{"$match": session_terms}] if session_terms else []
    session_stages += [
        {"$project": {"_id": 0, "agent": agent}},
        {"$project": {"model": "$agent.v.agent_data.model", "storage": f"$agent.v.{docs.MESSAGE_STORAGE_FIELD}"}},
    ]
    kept: dict[str, Any] = {"session.storage": docs.COLLECTION}
    if query.model is not None:
        kept["session.model"] = query.model
    return [
        *pipeline,
        {"$project": {"_id": 0, "session_id": 1, "agent_id": 1, "row": _message_row("$")}},
        {"$group": {"_id": {"session_id": "$session_id", "agent_id": "$agent_id"}, "rows": {"$push": "$row"}}},
        {
            "$lookup": {
                "from": sessions_name,
                "localField": "_id.session_id",
                "foreignField": "_id",
                "let": {"agent": "$_id.agent_id"},
                "pipeline": session_stages,
                "as": "session",
            }
        },
        {"$unwind": "$session"},
        {"$match": kept},
        {"$unwind": "$rows"},
        {"$replaceRoot": {"newRoot": {"$mergeObjects": ["$rows", {"model": "$session.model"}]}}},
    ]


def _message_row(prefix: str) -> dict[str, Any]:
    """A message's row from its fields under ``prefix`` (``"$"`` for a document, ``"$$m."`` for an element).

    Figures missing from ``event_loop_metrics`` stay missing (``$sum`` and the percentiles skip them).
    """
    metrics = f"{prefix}event_loop_metrics"
    usage, timing, tools = f"{metrics}.accumulated_usage", f"{metrics}.accumulated_metrics", f"{metrics}.tool_usage"
    return {
        "day": {"$substrBytes": [f"{prefix}created_at", 0, 10]},
        "messages": {"$literal": 1},
        "invocations": {"$cond": [{"$eq": [{"$type": metrics}, "object"]}, 1, 0]},
        "latency": f"{timing}.latencyMs",
        "ttfb": f"{timing}.timeToFirstByteMs",
        "input_tokens": f"{usage}.inputTokens",
        "output_tokens": f"{usage}.outputTokens",
        "cache_read_tokens": f"{usage}.cacheReadInputTokens",
        "cache_write_tokens": f"{usage}.cacheWriteInputTokens",
        "tools": {"$cond": [{"$eq": [{"$type": tools}, "object"]}, {"$objectToArray": tools}, []]},
    }


def _facets() -> dict[str, list[dict[str, Any]]]:
    """Rows to day sums, totals, percentile per day and overall, top tools and top models."""
    sums = {name: {"$sum": f"${name}"} for name in _SUMS}
    facets: dict[str, list[dict[str, Any]]] = {
        "days": [{"$group": {"_id": "$day", **sums}}],
        "totals": [{"$group": {"_id": None, **sums}}],
        "tools": [
            {"$unwind": "$tools"},
            {
                "$group": {
                    "_id": "$tools.k",
                    "calls": {"$sum": "$tools.v.call_count"},
                    "errors": {"$sum": "$tools.v.error_count"},
                }
            },
            {"$sort": {"calls": -1, "_id": 1}},
            {"$limit": TOP_ITEMS},
        ],
        "models": [
            {"$match": {"invocations": 1}},
            {
                "$group": {
                    "_id": "$model",
                    "input_tokens": {"$sum": "$input_tokens"},
                    "output_tokens": {"$sum": "$output_tokens"},
                    "invocations": {"$sum": 1},
                }
            },
            {"$addFields": {"tokens": {"$add": ["$input_tokens", "$output_tokens"]}}},
            {"$sort": {"tokens": -1, "_id": 1}},
            {"$limit": TOP_ITEMS},
        ],
    }
    for field in ("latency", "ttfb"):
        facets[f"{field}_days"] = _percentiles(field, "$day")
        facets[f"{field}_totals"] = _percentiles(field, None)
    return facets


def _percentiles(field: str, key: str | None) -> list[dict[str, Any]]:
    """Stages computing the nearest-rank percentiles of ``field`` per ``key`` from a histogram of its values."""
    return [
        {"$match": {field: {"$type": "number"}}},
        {"$group": {"_id": {"key": key, "value": f"${field}"}, "count": {"$sum": 1}}},
        {
            "$group": {
                "_id": "$_id.key",
                "values": {"$push": {"value": "$_id.value", "count": "$count"}},
                "n": {"$sum": "$count"},
            }
        },
        {"$project": {f"p{p}": _nearest_rank(p) for p in _PERCENTILES}},
    ]


def _nearest_rank(percent: int) -> dict[str, Any]:
    """The value at 1-based rank ``ceil(percent * n / 100)`` of a histogram ``values`` of ``n`` figures.

    The rank is computed in integers (``floor((percent * n + 99) / 100)``), so no rounding moves it.
    """
    rank = {"$floor": {"$divide": [{"$add": [{"$multiply": ["$n", percent]}, 99]}, 100]}}
    walk = {
        "$reduce": {
            "input": {"$sortArray": {"input": "$values", "sortBy": {"value": 1}}},
            "initialValue": {"seen": 0, "value": None},
            "in": {
                "seen": {"$add": ["$$value.seen", "$$this.count"]},
                "value": {
                    "$cond": [
                        {
                            "$and": [
                                {"$eq": ["$$value.value", None]},
                                {"$gte": [{"$add": ["$$value.seen", "$$this.count"]}, "$$rank"]},
                            ]
                        },
                        "$$this.value",
                        "$$value.value",
                    ]
                },
            },
        }
    }
    return {"$let": {"vars": {"rank": rank}, "in": {"$let": {"vars": {"found": walk}, "in": "$$found.value"}}}}


def _agents(path: str) -> dict[str, Any]:
    """A session document's agents as ``[{k: escaped id, v: agent}, ...]`` ([] when it has none)."""
    return {"$objectToArray": {"$ifNull": [path, {}]}}


def _escaped(expression: Any) -> Any:
    """Expression: `documents.escape_key` of a string expression."""
    for char in _ESCAPED_CHARS:
        expression = {
            "$replaceAll": {"input": expression, "find": {"$literal": char}, "replacement": docs.escape_key(char)}
        }
    return expression


def _utc_day(path: str) -> dict[str, Any]:
    return {"$dateToString": {"format": "%Y-%m-%d", "date": path}}


# ----------------------------------------------------------------------------- the response


def _response(query: _Query, sessions: Mapping[str, int], panels: Mapping[str, Any]) -> dict[str, Any]:
    """Shape the aggregates' results: every day of the range, totals, tools, models."""
    days = {row["_id"]: row for row in panels.get("days") or []}
    percentiles = {
        field: {row["_id"]: row for row in panels.get(f"{field}_days") or []} for field in ("latency", "ttfb")
    }
    rows = []
    for day in query.days():
        row: dict[str, Any] = {"day": day, "sessions": _int(sessions.get(day))}
        for name in _DAY_SUMS:
            row[name] = _int(days.get(day, {}).get(name))
        for field, by_day in percentiles.items():
            for p in _PERCENTILES:
                row[f"{field}_p{p}"] = _figure(by_day.get(day, {}).get(f"p{p}"))
        rows.append({key: row[key] for key in _DAY_KEYS})
    return {
        "start": query.start.isoformat(),
        "end": query.end.isoformat(),
        "days": rows,
        "totals": _totals(sum(row["sessions"] for row in rows), panels),
        "tools": [_tool(row) for row in panels.get("tools") or []],
        "models": [_model(row) for row in panels.get("models") or []],
    }


def _totals(sessions: int, panels: Mapping[str, Any]) -> dict[str, Any]:
    """The range's totals: sums, overall percentiles and the share of thumbs up among rated feedback."""
    sums = (panels.get("totals") or [{}])[0]
    totals: dict[str, Any] = {"sessions": sessions, **{name: _int(sums.get(name)) for name in _SUMS}}
    for field in ("latency", "ttfb"):
        overall = (panels.get(f"{field}_totals") or [{}])[0]
        for p in _PERCENTILES:
            totals[f"{field}_p{p}"] = _figure(overall.get(f"p{p}"))
    rated = totals["feedback_up"] + totals["feedback_down"]
    totals["feedback_ratio"] = totals["feedback_up"] / rated if rated else None
    return {key: totals[key] for key in _TOTAL_KEYS}


def _tool(row: Mapping[str, Any]) -> dict[str, Any]:
    calls, errors = _int(row.get("calls")), _int(row.get("errors"))
    return {"tool": str(row["_id"]), "calls": calls, "errors": errors, "error_rate": errors / calls if calls else 0.0}


def _model(row: Mapping[str, Any]) -> dict[str, Any]:
    model = row["_id"]
    return {
        "model": model if model is None or isinstance(model, str) else str(model),
        "input_tokens": _int(row.get("input_tokens")),
        "output_tokens": _int(row.get("output_tokens")),
        "invocations": _int(row.get("invocations")),
    }


def _figure(value: Any) -> int | float | None:
    """A percentile as a JSON number (a stored ``Decimal128`` becomes a float)."""
    if value is None or isinstance(value, int | float):
        return value
    return float(value.to_decimal()) if isinstance(value, Decimal128) else None


def _int(value: Any) -> int:
    """A count or token sum as an int (missing: 0)."""
    if isinstance(value, Decimal128):
        value = value.to_decimal()
        return int(value) if value.is_finite() else 0
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else 0
