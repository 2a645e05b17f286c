"""The "collection" message layout: one document per message in the sibling collection ``<collection>.messages``.

A message document is the embedded layout's array element plus the two ids it belongs to::

    {_id: ObjectId, session_id, agent_id, message_id, message, redact_message,
     created_at: "ISO", updated_at: "ISO", event_loop_metrics?, guardrail_event?}

with a unique index on ``(session_id, agent_id, message_id)`` and one on ``created_at`` (the date range of
`analytics.dashboard_metrics`). Pages are ``message_id`` ranges read
through the unique index, never ``skip``: strands numbers an agent's messages 0, 1, 2, ..., so an ``offset``
is applied as ``message_id >= offset``.

A message whose document would pass MongoDB's 16 MB limit is stored in the GridFS bucket
``<collection>`` (the file holds the BSON of the whole element and carries ``metadata.session_id``);
its message document keeps only the ids, the timestamps and ``payload_file_id``. The file is written
first, so a message is never half-written: until its document exists, the file is an orphan that
`CollectionMessages.delete_session` removes with the session.
"""

import logging
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import bson
from bson import ObjectId
from gridfs import GridFSBucket
from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DocumentTooLarge, DuplicateKeyError, OperationFailure

from . import documents as docs
from .errors import DuplicateMessageError
from .inline_messages import Errors

logger = logging.getLogger(__name__)

_TOO_LARGE_CODES = {10334, 17419, 17420}
_DUPLICATE_KEY = 11000
_ROW_ID_FIELDS = ("session_id", "agent_id", "message_id")
_STUB_FIELDS = ("message_id", "created_at", "updated_at")
_WHOLE_BATCH = 2**31 - 1
"""A batch size that lets the server fill its 16 MB reply: a whole session's messages usually come in one."""

_indexed: dict[int, set[tuple[str, str]]] = {}
"""Namespaces whose indexes this process created, per client (by identity)."""
_indexed_lock = threading.Lock()


class CollectionMessages:
    """Message operations on ``<collection>.messages`` (and its GridFS bucket for oversized messages)."""

    def __init__(self, sessions: Collection, errors: Errors) -> None:
        """Bind to the sibling collections of the session collection ``sessions``; no I/O."""
        database = sessions.database
        self.messages: Collection = database[docs.messages_collection_name(sessions.name)]
        self.files: Collection = database[f"{sessions.name}.files"]
        self.chunks: Collection = database[f"{sessions.name}.chunks"]
        self._bucket_name = sessions.name
        self._bucket: GridFSBucket | None = None
        self._errors = errors

    @property
    def bucket(self) -> GridFSBucket:
        """The GridFS bucket ``<collection>`` for messages bigger than a document (built on first use)."""
        if self._bucket is None:
            self._bucket = GridFSBucket(self.messages.database, bucket_name=self._bucket_name)
        return self._bucket

    def ensure_indexes(self) -> None:
        """Create the message indexes (unique key, ``created_at``) and the GridFS ``metadata.session_id`` one, once."""
        client = self.messages.database.client
        namespace = (self.messages.database.name, self.messages.name)
        with _indexed_lock:
            done = _indexed.get(id(client))
            if done is None:
                done = _indexed[id(client)] = set()
                weakref.finalize(client, _indexed.pop, id(client), None)
            if namespace in done:
                return
        with self._errors(None):
            self.messages.create_indexes(
                [
                    IndexModel([(name, ASCENDING) for name in _ROW_ID_FIELDS], name="message_key", unique=True),
                    IndexModel([("created_at", ASCENDING)], name="created_at"),  # the usage dashboard's date range
                ]
            )
            self.files.create_indexes([IndexModel([("metadata.session_id", ASCENDING)], name="session_id")])
        with _indexed_lock:
            done.add(namespace)
        logger.debug("collection=<%s> | created message indexes", self.messages.full_name)

    # ----------------------------------------------------------------- writes

    def append(self, session_id: str, agent_id: str, element: Mapping[str, Any]) -> None:
        """Insert one message document (one write; GridFS first when it is bigger than the document limit).

        Raises:
            DuplicateMessageError: The agent already has a message with this id; nothing was written.
        """
        self.ensure_indexes()
        row = docs.message_row(session_id, agent_id, element)
        try:
            with self._errors(session_id):
                try:
                    self.messages.insert_one(row)
                except DocumentTooLarge:
                    self.messages.insert_one(self._stub(session_id, agent_id, element))
        except DuplicateKeyError as error:
            raise DuplicateMessageError(
                f"session_id=<{session_id}> | agent_id=<{agent_id}> | message_id=<{element['message_id']}> | "
                "a message with this id is already stored; nothing was written"
            ) from error

    def copy(self, session_id: str, agent_id: str, elements: Iterable[Mapping[str, Any]]) -> None:
        """Upsert message documents keyed by their ids (idempotent: a re-run replaces its own copies)."""
        self.ensure_indexes()
        operations = []
        for element in elements:
            row = docs.message_row(session_id, agent_id, element)
            if len(bson.encode(row)) > docs.MAX_DOCUMENT_BYTES:
                row = self._stub(session_id, agent_id, element)
            key = {name: row[name] for name in _ROW_ID_FIELDS}
            operations.append(ReplaceOne(key, row, upsert=True))
        if not operations:
            return
        with self._errors(session_id):
            try:
                self.messages.bulk_write(operations, ordered=False)
            except BulkWriteError as error:  # two copiers upserting one key at once: the loser's copy is there
                if any(e.get("code") != _DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                    raise
                self.messages.bulk_write(operations, ordered=False)

    def update(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        element: Mapping[str, Any],
        fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """Rewrite one message's ``message``, ``redact_message`` and ``updated_at`` (and set the extra ``fields``).

        Returns False when the message does not exist.
        """
        changes = {key: element[key] for key in ("message", "redact_message", "updated_at")}
        return self._set(session_id, agent_id, message_id, {**changes, **(fields or {})})

    def set_fields(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        fields: Mapping[str, Any],
        move_from: int | None = None,
    ) -> bool:
        """Set extra fields on one message (removing them from ``move_from``); False when it does not exist."""
        if not self._set(session_id, agent_id, message_id, fields):
            return False
        if move_from is not None and move_from != message_id:
            key = {"session_id": session_id, "agent_id": agent_id, "message_id": move_from}
            update = {"$unset": dict.fromkeys(fields, "")}
            with self._errors(session_id):
                self.messages.update_one({**key, docs.PAYLOAD_FILE_FIELD: {"$exists": False}}, update)
        return True

    def delete_agent(self, session_id: str, agent_id: str) -> None:
        """Delete an agent's message documents (after a demotion committed)."""
        with self._errors(session_id):
            self.messages.delete_many({"session_id": session_id, "agent_id": agent_id})

    def delete_session(self, session_id: str) -> None:
        """Delete every message document and GridFS file of a session (two commands, four with files)."""
        with self._errors(session_id):
            self.messages.delete_many({"session_id": session_id})
            file_ids = [file["_id"] for file in self.files.find({"metadata.session_id": session_id}, {"_id": 1})]
            if file_ids:
                self.chunks.delete_many({"files_id": {"$in": file_ids}})
                self.files.delete_many({"_id": {"$in": file_ids}})

    def prune(self, session_id: str, agent_id: str, keep_last: int) -> tuple[int, int | None]:
        """Delete the agent's message documents (and GridFS files) older than its ``keep_last`` newest.

        One find picks the first kept id through the unique index, one ``delete_many`` removes the ids
        below it, then the files of those messages go (one find, two deletes when there are any).

        Returns:
            How many messages were deleted, and the first kept ``message_id`` (None when nothing was deleted).
        """
        key = {"session_id": session_id, "agent_id": agent_id}
        with self._errors(session_id):
            kept = list(
                self.messages.find(key, {"_id": 0, "message_id": 1})
                .sort("message_id", DESCENDING)
                .skip(keep_last - 1)
                .limit(1)
            )
            if not kept:
                return 0, None
            cutoff = kept[0]["message_id"]
            deleted = self.messages.delete_many({**key, "message_id": {"$lt": cutoff}}).deleted_count
            files = {"metadata.session_id": session_id, "metadata.agent_id": agent_id}
            self._delete_files({**files, "metadata.message_id": {"$lt": cutoff}})
        return deleted, cutoff if deleted else None

    def delete_orphans(self, sessions: Collection, before: datetime, batch_size: int) -> dict[str, int]:
        """Delete the message documents and GridFS files written before ``before`` whose session is gone.

        Walks the distinct session ids of each collection in index order (``$sort`` + ``$group``, which
        MongoDB serves with a distinct scan of the index), ``batch_size`` at a time: one ``$in`` find on
        the session collection's ``_id`` per batch, and deletes only for the batches with missing sessions.

        Returns:
            ``{"sessions": ..., "messages": ..., "files": ...}``: the orphaned session ids found and what was deleted.
        """
        removed = {"sessions": 0, "messages": 0, "files": 0}
        gone: set[str] = set()
        for batch in _batches(self._session_ids(self.messages, "session_id"), batch_size):
            missing = _missing_sessions(sessions, batch)
            if missing:
                gone.update(missing)
                stored_before = ObjectId.from_datetime(before + timedelta(seconds=1))  # ids hold whole seconds
                query = {"session_id": {"$in": missing}, "_id": {"$lt": stored_before}}
                removed["messages"] += self.messages.delete_many(query).deleted_count
        for batch in _batches(self._session_ids(self.files, "metadata.session_id"), batch_size):
            missing = _missing_sessions(sessions, batch)
            if missing:
                gone.update(missing)
                query = {"metadata.session_id": {"$in": missing}, "uploadDate": {"$lt": before}}
                removed["files"] += self._delete_files(query)
        removed["sessions"] = len(gone)
        return removed

    def _session_ids(self, collection: Collection, field: str) -> Iterator[Any]:
        """The distinct values of ``field`` in ``collection``, in index order, streamed by a cursor."""
        pipeline: list[dict[str, Any]] = [{"$sort": {field: ASCENDING}}, {"$group": {"_id": f"${field}"}}]
        with self._errors(None):
            for row in collection.aggregate(pipeline):
                yield row["_id"]

    def _delete_files(self, query: Mapping[str, Any]) -> int:
        """Delete the GridFS files matching ``query`` with their chunks (one find; two deletes if any match)."""
        with self._errors(None):
            file_ids = [file["_id"] for file in self.files.find(query, {"_id": 1})]
            if file_ids:
                self.chunks.delete_many({"files_id": {"$in": file_ids}})
                self.files.delete_many({"_id": {"$in": file_ids}})
        return len(file_ids)

    # ----------------------------------------------------------------- reads

    def read(self, session_id: str, agent_id: str, message_id: int) -> dict[str, Any] | None:
        """Return one message's element, or None."""
        key = {"session_id": session_id, "agent_id": agent_id, "message_id": message_id}
        with self._errors(session_id):
            row = self.messages.find_one(key, {"_id": 0, "session_id": 0, "agent_id": 0})
            return self._element(row) if row is not None else None

    def page(self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Return the elements with ``message_id >= offset`` in order, at most ``limit`` of them (one find)."""
        query: dict[str, Any] = {"session_id": session_id, "agent_id": agent_id}
        if offset:
            query["message_id"] = {"$gte": offset}
        with self._errors(session_id):
            cursor = self.messages.find(query, {"_id": 0, "session_id": 0, "agent_id": 0})
            cursor = cursor.sort("message_id", ASCENDING).limit(limit or 0).batch_size(limit or _WHOLE_BATCH)
            return [self._element(row) for row in cursor]

    def latest(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return the agent's element with the highest ``message_id``, or None (one find through the index)."""
        query = {"session_id": session_id, "agent_id": agent_id}
        with self._errors(session_id):
            row = self.messages.find_one(
                query, {"_id": 0, "session_id": 0, "agent_id": 0}, sort=[("message_id", DESCENDING)]
            )
            return self._element(row) if row is not None else None

    def session_elements(self, session_id: str, agent_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the elements of some agents of a session, by agent id, each in ``message_id`` order (one find)."""
        wanted = list(agent_ids)
        found: dict[str, list[dict[str, Any]]] = {agent_id: [] for agent_id in wanted}
        query = {"session_id": session_id, "agent_id": {"$in": wanted}}
        with self._errors(session_id):
            cursor = self.messages.find(query, {"_id": 0, "session_id": 0})
            cursor = cursor.sort([("agent_id", ASCENDING), ("message_id", ASCENDING)]).batch_size(_WHOLE_BATCH)
            for row in cursor:
                found[row["agent_id"]].append(self._element(row))
        return found

    def counts(self, session_ids: Iterable[str]) -> dict[tuple[str, str], int]:
        """Count the message documents per ``(session_id, agent_id)`` of the given sessions (one ``$group``)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"session_id": {"$in": list(session_ids)}}},
            {"$group": {"_id": {"session_id": "$session_id", "agent_id": "$agent_id"}, "count": {"$sum": 1}}},
        ]
        with self._errors(None):
            rows = self.messages.aggregate(pipeline, batchSize=_WHOLE_BATCH)
            return {(row["_id"]["session_id"], row["_id"]["agent_id"]): row["count"] for row in rows}

    def rows(self, session_id: str, agent_id: str) -> list[dict[str, Any]]:
        """Return an agent's message documents as stored (stubs unresolved), in ``message_id`` order."""
        with self._errors(session_id):
            cursor = self.messages.find({"session_id": session_id, "agent_id": agent_id}, {"_id": 0})
            return list(cursor.sort("message_id", ASCENDING).batch_size(_WHOLE_BATCH))

    # ----------------------------------------------------------------- plumbing

    def _set(self, session_id: str, agent_id: str, message_id: int, fields: Mapping[str, Any]) -> bool:
        """Set fields on one message document; a GridFS-held message is rewritten whole. False when missing."""
        key = {"session_id": session_id, "agent_id": agent_id, "message_id": message_id}
        update = {"$set": dict(fields)}
        with self._errors(session_id, update):
            try:
                result = self.messages.update_one({**key, docs.PAYLOAD_FILE_FIELD: {"$exists": False}}, update)
            except (DocumentTooLarge, OperationFailure) as error:
                if not _too_large(error):
                    raise
                result = None
        if result is not None and result.matched_count:
            return True
        with self._errors(session_id):
            row = self.messages.find_one(key, {"_id": 0})
        if row is None:
            return False
        element = {**self._element(row), **fields}
        self._replace(session_id, agent_id, row, element)
        return True

    def _replace(self, session_id: str, agent_id: str, row: Mapping[str, Any], element: Mapping[str, Any]) -> None:
        """Replace a message document with ``element`` (via GridFS when too large), file first, old file last."""
        key = {name: row[name] for name in _ROW_ID_FIELDS}
        replacement = docs.message_row(session_id, agent_id, element)
        with self._errors(session_id):
            try:
                self.messages.replace_one(key, replacement)
            except (DocumentTooLarge, OperationFailure) as error:
                if not _too_large(error):
                    raise
                self.messages.replace_one(key, self._stub(session_id, agent_id, element))
            old_file = row.get(docs.PAYLOAD_FILE_FIELD)
            if old_file is not None:
                self.bucket.delete(old_file)

    def _stub(self, session_id: str, agent_id: str, element: Mapping[str, Any]) -> dict[str, Any]:
        """Write the element to GridFS and return the message document that points at it."""
        metadata = {"session_id": session_id, "agent_id": agent_id, "message_id": element["message_id"]}
        filename = f"{session_id}/{agent_id}/{element['message_id']}"
        file_id = self.bucket.upload_from_stream(filename, bson.encode(element), metadata=metadata)
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | message_id=<%s> | message stored in GridFS",
            session_id,
            agent_id,
            element["message_id"],
        )
        stub = {name: element[name] for name in _STUB_FIELDS if name in element}
        return {**docs.message_row(session_id, agent_id, stub), docs.PAYLOAD_FILE_FIELD: file_id}

    def _element(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The element a fetched message document holds, read from GridFS when it points there."""
        file_id = row.get(docs.PAYLOAD_FILE_FIELD)
        if file_id is None:
            return docs.element_from_row(row)
        return dict(bson.decode(self.bucket.open_download_stream(file_id).read()))


def _batches(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` of ``values``."""
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _missing_sessions(sessions: Collection, session_ids: list[Any]) -> list[Any]:
    """The ids of ``session_ids`` that have no session document (one ``$in`` find on ``_id``)."""
    found = {row["_id"] for row in sessions.find({"_id": {"$in": session_ids}}, {"_id": 1})}
    return [session_id for session_id in session_ids if session_id not in found]


def _too_large(error: Exception) -> bool:
    """True for a write refused because a document would pass the 16 MB limit (client or server side)."""
    return isinstance(error, DocumentTooLarge) or getattr(error, "code", None) in _TOO_LARGE_CODES
