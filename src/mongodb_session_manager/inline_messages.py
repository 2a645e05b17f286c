"""The "embedded" message layout: an agent's messages in ``agents.<id>.messages`` of the session document.

This is the seeds' layout and the default. Every operation is one command on its success path; the
repository (``repository.py``) decides which layout an agent uses and calls into this object or into
``collection_messages.py``. An agent whose sub-document carries ``message_storage: "collection"`` (the
per-agent marker) has no array here: every write below is guarded so that it never writes into the
array of such an agent, and every read reports the marker it saw so the repository can switch layout.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection

from . import documents as docs
from .errors import DuplicateMessageError, SessionNotFoundError

logger = logging.getLogger(__name__)

Errors = Callable[..., AbstractContextManager[None]]
"""The repository's error translator: ``errors(session_id, update=None)`` as a context manager."""

_ALL_REMAINING = 2**31 - 1

FULL = "full"
"""`InlineMessages.append` outcome: the agent holds ``max_messages`` messages (time to promote)."""
MOVED = "moved"
"""`InlineMessages.append` outcome: the agent's marker says its messages live in the collection layout."""


@dataclass(frozen=True)
class AgentMessages:
    """What one read of an agent's embedded messages returned."""

    elements: list[dict[str, Any]]
    storage: str
    """``"collection"`` when the agent carries the marker, else ``"embedded"``."""


class InlineMessages:
    """Message operations on the array inside the session document."""

    def __init__(
        self,
        collection: Collection,
        errors: Errors,
        max_messages: int | None = None,
        ttl: timedelta | None = None,
    ) -> None:
        """Bind to the session collection.

        Args:
            collection: The session collection.
            errors: The repository's error translator.
            max_messages: The most messages an agent keeps here; an append past it reports `FULL`.
                None: no limit (nothing is promoted on count).
            ttl: The sessions' time to live: every write moves ``expires_at`` (see `documents.expiring_updates`).
        """
        self.collection = collection
        self._errors = errors
        self.max_messages = max_messages
        self.ttl = ttl
        self._pruned: dict[tuple[str, str], int] = {}
        """Per agent, the ``pruned_before`` last seen (it only grows): where a page's positions start."""

    # ----------------------------------------------------------------- writes

    def append(self, session_id: str, agent_id: str, message_id: int, element: Mapping[str, Any]) -> str | None:
        """Append one element, keeping the array ordered by ``message_id``.

        The usual append (a new id above every stored one) is a plain ``$push``; an id below a stored one
        falls back to a sorted push (a second command).

        Returns:
            None when stored; `FULL` when the agent already holds ``max_messages``; `MOVED` when the
            agent carries the collection marker. Nothing is written in the last two cases.

        Raises:
            DuplicateMessageError: The agent already has a message with this id; nothing was written.
            SessionNotFoundError: No such session or agent.
            DocumentTooLargeError: The session document would pass 16 MB; nothing was written.
        """
        path = docs.agent_path(agent_id)
        ids = f"{path}.messages.message_id"
        query = {
            "_id": session_id,
            f"{path}.agent_data": {"$exists": True},
            ids: {"$not": {"$gte": message_id}},
            **self._layout_guard(agent_id),
        }
        now = docs.utc_now()
        stamps = {"updated_at": now, f"{path}.updated_at": now}
        if self._update(session_id, query, {"$push": {f"{path}.messages": element}, "$set": stamps}):
            return None
        query[ids] = {"$ne": message_id}
        sorted_push = {"$each": [element], "$sort": {"message_id": ASCENDING}}
        if self._update(session_id, query, {"$push": {f"{path}.messages": sorted_push}, "$set": stamps}):
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | message_id=<%s> | out-of-order message inserted in order",
                session_id,
                agent_id,
                message_id,
            )
            return None
        return self._explain_missed_append(session_id, agent_id, message_id)

    def update(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        element: Mapping[str, Any],
        fields: Mapping[str, Any] | None = None,
        session_update: Mapping[str, Any] | None = None,
    ) -> bool:
        """Rewrite one message's ``message``, ``redact_message`` and ``updated_at``; False when it is not here.

        ``fields`` are extra fields set on the message and ``session_update`` more operators on the session
        document (the guardrail summary's ``$inc``/``$push``), in the same command.
        """
        path = docs.messages_path(agent_id)
        updates = {f"{path}.$[m].{key}": element[key] for key in ("message", "redact_message", "updated_at")}
        updates.update({f"{path}.$[m].{key}": value for key, value in (fields or {}).items()})
        updates["updated_at"] = docs.utc_now()
        update = {**(session_update or {}), "$set": updates}
        query = {"_id": session_id, f"{path}.message_id": message_id}
        return self._update(session_id, query, update, array_filters=[{"m.message_id": message_id}])

    def set_fields(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        fields: Mapping[str, Any],
        move_from: int | None = None,
    ) -> bool:
        """Set extra fields on one message (removing them from ``move_from``) in one command; False when not here."""
        path = docs.messages_path(agent_id)
        update: dict[str, Any] = {"$set": {f"{path}.$[m].{key}": value for key, value in fields.items()}}
        update["$set"]["updated_at"] = docs.utc_now()
        array_filters: list[Mapping[str, Any]] = [{"m.message_id": message_id}]
        if move_from is not None and move_from != message_id:
            update["$unset"] = {f"{path}.$[old].{key}": "" for key in fields}
            array_filters.append({"old.message_id": move_from})
        query = {"_id": session_id, f"{path}.message_id": message_id}
        return self._update(session_id, query, update, array_filters=array_filters)

    def commit_promotion(self, session_id: str, agent_id: str, copied: Sequence[Mapping[str, Any]]) -> bool:
        """Set the collection marker and drop the array, if the array is still exactly ``copied``.

        The commit point of a promotion (see ``promotion.py``): one update whose filter checks the marker is
        absent, the array has ``len(copied)`` elements and its last one has the copied id and ``updated_at``.
        """
        path = docs.agent_path(agent_id)
        count = len(copied)
        query: dict[str, Any] = {
            "_id": session_id,
            f"{path}.agent_data": {"$exists": True},
            docs.message_storage_path(agent_id): {"$ne": docs.COLLECTION},
            f"{path}.messages.{count}": {"$exists": False},
        }
        if copied:
            query[f"{path}.messages.{count - 1}.message_id"] = copied[-1]["message_id"]
            query[f"{path}.messages.{count - 1}.updated_at"] = copied[-1].get("updated_at")
        now = docs.utc_now()
        update = {
            "$set": {
                docs.message_storage_path(agent_id): docs.COLLECTION,
                f"{path}.updated_at": now,
                "updated_at": now,
            },
            "$unset": {f"{path}.messages": ""},
        }
        return self._update(session_id, query, update)

    def commit_demotion(self, session_id: str, agent_id: str, elements: Sequence[Mapping[str, Any]]) -> bool:
        """Put ``elements`` in the array and drop the collection marker, if the marker is still set."""
        path = docs.agent_path(agent_id)
        query = {"_id": session_id, docs.message_storage_path(agent_id): docs.COLLECTION}
        now = docs.utc_now()
        update = {
            "$set": {f"{path}.messages": list(elements), f"{path}.updated_at": now, "updated_at": now},
            "$unset": {docs.message_storage_path(agent_id): ""},
        }
        return self._update(session_id, query, update)

    def prune(self, session_id: str, agent_id: str, keep_last: int) -> int | None:
        """Drop the agent's messages older than its ``keep_last`` newest (a read, then one ``$pull`` if any go).

        The update pulls the ids below the first kept one and raises the agent's ``pruned_before`` to it,
        so appends running meanwhile (higher ids) are never touched.

        Returns:
            How many messages were dropped, or None when the agent's messages are in the collection layout.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        path = docs.agent_path(agent_id)
        messages = f"${path}.messages"
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {
                "$project": {
                    "_id": 0,
                    "agent_id": f"${path}.agent_data.agent_id",
                    "storage": f"${path}.{docs.MESSAGE_STORAGE_FIELD}",
                    "count": {"$size": {"$ifNull": [messages, []]}},
                    "cutoff": {
                        "$let": {"vars": {"kept": {"$arrayElemAt": [messages, -keep_last]}}, "in": "$$kept.message_id"}
                    },
                }
            },
        ]
        with self._errors(session_id):
            rows = list(self.collection.aggregate(pipeline))
        if not rows or rows[0].get("agent_id") is None:
            _existing_agent(None if not rows else {}, session_id, agent_id)
        found = rows[0]
        if _storage(found.get("storage")) == docs.COLLECTION:
            return None
        if found["count"] <= keep_last:
            return 0
        cutoff = found["cutoff"]
        now = docs.utc_now()
        query = {"_id": session_id, docs.message_storage_path(agent_id): {"$ne": docs.COLLECTION}}
        update = {
            "$pull": {f"{path}.messages": {"message_id": {"$lt": cutoff}}},
            "$max": {f"{path}.{docs.PRUNED_BEFORE_FIELD}": cutoff},
            "$set": {"updated_at": now, f"{path}.updated_at": now},
        }
        if not self._update(session_id, query, update):
            return None  # promoted meanwhile: the collection layout prunes it
        self._pruned[(session_id, agent_id)] = max(cutoff, self._pruned.get((session_id, agent_id), 0))
        return int(found["count"]) - keep_last

    # ----------------------------------------------------------------- reads

    def read(self, session_id: str, agent_id: str, message_id: int) -> tuple[dict[str, Any] | None, str]:
        """Return one element (shipping only it) and the agent's layout as stored."""
        path = docs.agent_path(agent_id)
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {
                "$project": {
                    "_id": 0,
                    "found": {
                        "$filter": {
                            "input": f"${path}.messages",
                            "as": "m",
                            "cond": {"$eq": ["$$m.message_id", message_id]},
                        }
                    },
                    "storage": f"${path}.{docs.MESSAGE_STORAGE_FIELD}",
                }
            },
        ]
        with self._errors(session_id):
            results = list(self.collection.aggregate(pipeline))
        result = results[0] if results else {}
        found = result.get("found")
        return (found[0] if found else None), _storage(result.get("storage"))

    def page(self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0) -> AgentMessages:
        """Return a page of an agent's elements (only that page is shipped) and the agent's layout.

        ``offset`` is a ``message_id``: strands numbers an agent's messages 0, 1, 2, ..., so the element at
        array position ``p`` has id ``p + pruned_before`` (0 until the agent is pruned). One find; two
        the first time this object pages from an offset of an agent pruned since it last looked.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        key = (session_id, agent_id)
        assumed = self._pruned.get(key, 0) if offset else 0
        agent = self._page_at(session_id, agent_id, limit, max(0, offset - assumed))
        pruned = agent.get(docs.PRUNED_BEFORE_FIELD)
        pruned = pruned if isinstance(pruned, int) and not isinstance(pruned, bool) else 0
        if pruned:
            self._pruned[key] = pruned
        if offset and pruned != assumed:  # positions start at the first kept id: read the right page
            agent = self._page_at(session_id, agent_id, limit, max(0, offset - pruned))
        return AgentMessages(list(agent.get("messages", [])), _storage(agent.get(docs.MESSAGE_STORAGE_FIELD)))

    def _page_at(self, session_id: str, agent_id: str, limit: int | None, position: int) -> Mapping[str, Any]:
        """The agent's sub-document with the elements from array ``position`` on (one find).

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        path = docs.agent_path(agent_id)
        page: Any = 1 if position == 0 and limit is None else {"$slice": [position, limit or _ALL_REMAINING]}
        projection = {
            f"{path}.agent_data.agent_id": 1,
            f"{path}.{docs.MESSAGE_STORAGE_FIELD}": 1,
            f"{path}.{docs.PRUNED_BEFORE_FIELD}": 1,
            f"{path}.messages": page,
        }
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        return _existing_agent(document, session_id, agent_id)

    def latest(self, session_id: str, agent_id: str) -> AgentMessages:
        """Return the agent's last element (a list of at most one; only it is shipped) and the agent's layout.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        path = docs.agent_path(agent_id)
        projection = {
            f"{path}.agent_data.agent_id": 1,
            f"{path}.{docs.MESSAGE_STORAGE_FIELD}": 1,
            f"{path}.messages": {"$slice": -1},
        }
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        agent = _existing_agent(document, session_id, agent_id)
        return AgentMessages(list(agent.get("messages", [])), _storage(agent.get(docs.MESSAGE_STORAGE_FIELD)))

    def session_agents(self, session_id: str) -> dict[str, AgentMessages] | None:
        """Return every agent's embedded elements and layout, by agent id (one aggregate); None when no session."""
        agent_messages = {
            "key": "$$agent.k",
            "storage": f"$$agent.v.{docs.MESSAGE_STORAGE_FIELD}",
            "messages": "$$agent.v.messages",
        }
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {"$limit": 1},
            {"$project": {"_id": 0, "agents": {"$map": {"input": _AGENTS, "as": "agent", "in": agent_messages}}}},
        ]
        with self._errors(session_id):
            results = list(self.collection.aggregate(pipeline))
        if not results:
            return None
        return {
            docs.unescape_key(agent["key"]): AgentMessages(
                [dict(m) for m in agent.get("messages") or [] if isinstance(m, Mapping)], _storage(agent.get("storage"))
            )
            for agent in results[0].get("agents") or []
        }

    def agent_counts(self, session_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Return, per existing session, what `message_counts_expression` gives for it (one aggregate)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": {"$in": list(session_ids)}}},
            {"$project": {"_id": 1, "agents": message_counts_expression()}},
        ]
        with self._errors(None):
            return {row["_id"]: list(row.get("agents") or []) for row in self.collection.aggregate(pipeline)}

    def storage(self, session_id: str, agent_id: str) -> str:
        """Read where an agent's messages live (one small find; used on failure and promotion paths).

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        path = docs.agent_path(agent_id)
        projection = {f"{path}.agent_data.agent_id": 1, f"{path}.{docs.MESSAGE_STORAGE_FIELD}": 1}
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        return _storage(_existing_agent(document, session_id, agent_id).get(docs.MESSAGE_STORAGE_FIELD))

    # ----------------------------------------------------------------- plumbing

    def _layout_guard(self, agent_id: str) -> dict[str, Any]:
        """Filter terms that keep an append out of a promoted agent's array and off a full one."""
        path = docs.agent_path(agent_id)
        guard: dict[str, Any] = {f"{path}.{docs.MESSAGE_STORAGE_FIELD}": {"$ne": docs.COLLECTION}}
        if self.max_messages is not None:
            guard[f"{path}.messages.{self.max_messages - 1}"] = {"$exists": False}
        return guard

    def _explain_missed_append(self, session_id: str, agent_id: str, message_id: int) -> str:
        """Say why an append matched nothing: promoted, full, or raise the right error (failure path only)."""
        path = docs.agent_path(agent_id)
        last = (self.max_messages or 1) - 1
        projection = {
            f"{path}.agent_data.agent_id": 1,
            f"{path}.{docs.MESSAGE_STORAGE_FIELD}": 1,
            f"{path}.messages": {"$slice": [last, 1]},
        }
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        agent = _existing_agent(document, session_id, agent_id)
        if _storage(agent.get(docs.MESSAGE_STORAGE_FIELD)) == docs.COLLECTION:
            return MOVED
        if self.max_messages is not None and agent.get("messages"):
            return FULL
        raise DuplicateMessageError(
            f"session_id=<{session_id}> | agent_id=<{agent_id}> | message_id=<{message_id}> | "
            "a message with this id is already stored; nothing was written"
        )

    def _update(
        self,
        session_id: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        array_filters: list[Mapping[str, Any]] | None = None,
    ) -> bool:
        """Run one ``update_one`` with translated errors, moving the session's expiry; True when it matched.

        With a ttl, a held session costs a second command (see `documents.expiring_updates`).
        """
        with self._errors(session_id, update):
            for variant_query, variant_update in docs.expiring_updates(query, update, self.ttl):
                if self.collection.update_one(variant_query, variant_update, array_filters=array_filters).matched_count:
                    return True
            return False


_AGENTS = {"$objectToArray": {"$ifNull": ["$agents", {}]}}
"""Aggregation expression: the session document's agents as ``[{k: escaped id, v: sub-document}]``."""


def message_counts_expression() -> dict[str, Any]:
    """Aggregation expression over a session document: per agent, its key, layout marker and embedded count.

    Evaluates to ``[{"key": <escaped agent id>, "message_storage"?: "collection", "embedded_messages": int}]``
    (``message_storage`` is absent for an embedded agent; ``embedded_messages`` is 0 for a collection one).
    """
    return {
        "$map": {
            "input": _AGENTS,
            "as": "agent",
            "in": {
                "key": "$$agent.k",
                "message_storage": f"$$agent.v.{docs.MESSAGE_STORAGE_FIELD}",
                "embedded_messages": {
                    "$cond": [{"$isArray": "$$agent.v.messages"}, {"$size": "$$agent.v.messages"}, 0]
                },
            },
        }
    }


def _storage(value: Any) -> str:
    return docs.COLLECTION if value == docs.COLLECTION else docs.EMBEDDED


def _existing_agent(document: Mapping[str, Any] | None, session_id: str, agent_id: str) -> Mapping[str, Any]:
    """The agent's sub-document of a fetched session document.

    Raises:
        SessionNotFoundError: No such session, or no such agent in it.
    """
    if document is None:
        raise SessionNotFoundError(f"Session {session_id} does not exist")
    agent = docs.get_path(document, docs.agent_path(agent_id))
    if agent is None or "agent_data" not in agent:
        raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
    return agent
