"""``MongoDBSessionRepository``: strands' ``SessionRepository`` on one MongoDB document per session.

Message operations are delegated to the agent's layout: ``inline_messages.py`` (the array in the
session document) or ``collection_messages.py`` (one document per message); ``promotion.py`` moves an
agent between them.
"""

import contextlib
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import bson
from bson.errors import BSONError, InvalidDocument
from pymongo import ASCENDING, IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from pymongo.results import UpdateResult
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from . import documents as docs
from . import promotion
from .collection_messages import CollectionMessages
from .errors import (
    DocumentTooLargeError,
    SessionDataError,
    SessionException,
    SessionExistsError,
    SessionNotFoundError,
    StorageUnavailableError,
)
from .inline_messages import FULL, InlineMessages

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)

DEFAULT_MAX_EMBEDDED_MESSAGES = 1000
"""Messages an embedded agent holds before the append that would pass it moves them to the collection layout."""

_TOO_LARGE_CODES = {10334, 17419, 17420}
_PATH_NOT_VIABLE = 28
_MESSAGE_FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(SessionMessage))

_indexed: dict[int, set[tuple[str, str, str]]] = {}
"""Indexes created in this process, per client (by identity: clients compare equal by address)."""
_indexed_lock = threading.Lock()
"""Guards ``_indexed``; never held across a network call."""


class MongoDBSessionRepository(SessionRepository):
    """Stores strands sessions, agents, messages and multi-agent state in MongoDB.

    Every method is one MongoDB command on its success path. The repository either owns its
    client (built from ``connection_string``, closed by `close`) or borrows ``client``
    (never closed here).
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient | None = None,
        metadata_fields: Sequence[str] | None = None,
        message_storage: str = docs.EMBEDDED,
        max_embedded_messages: int = DEFAULT_MAX_EMBEDDED_MESSAGES,
        **client_options: Any,
    ) -> None:
        """Connect (or borrow a client) and make sure the collection's indexes exist.

        Args:
            connection_string: MongoDB URI; when neither it nor ``client`` is given, ``MONGODB_URI``
                or the embedded development server is used.
            database_name: Database holding the sessions.
            collection_name: Collection holding one document per session.
            client: A client to borrow; it is never closed by this repository.
            metadata_fields: Metadata fields to index for searching.
            message_storage: Where new agents keep their messages: ``"embedded"`` (in the session document,
                the default) or ``"collection"`` (one document per message in ``<collection_name>.messages``).
                Existing agents keep the layout recorded for them; both are read and written by any setting.
            max_embedded_messages: An embedded agent holding this many messages is moved to the collection
                layout by the append that would pass it (as is one whose next message would push the
                session document past 16 MB).
            **client_options: pymongo ``MongoClient`` options for an owned client.

        Raises:
            ValueError: ``message_storage`` is not a layout name or ``max_embedded_messages`` is not a
                positive int (nothing is connected).
        """
        docs.check_message_layout(message_storage, max_embedded_messages)
        self.message_storage = message_storage
        self.max_embedded_messages = max_embedded_messages
        if client is None:
            if connection_string is None:
                from .embedded import default_connection_string

                connection_string = default_connection_string()
            client = MongoClient(connection_string, **{"tz_aware": True, **client_options})
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self.collection: Collection = client[database_name][collection_name]
        self.metadata_fields = list(metadata_fields or [])
        self._inline = InlineMessages(self.collection, self._errors, max_embedded_messages)
        self._collection = CollectionMessages(self.collection, self._errors)
        self._layouts: dict[tuple[str, str], str] = {}
        """Per agent, the message layout last seen in its session document (see `_learn`)."""
        self._lock = threading.Lock()
        self._known_agent_data: dict[tuple[str, str], dict[str, bytes | None]] = {}
        """Per agent, the BSON form of each ``agent_data`` field as last read or written (see `_stored_form`)."""
        try:
            self._ensure_indexes()
            if message_storage == docs.COLLECTION:
                self._collection.ensure_indexes()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the client if this repository created it; safe to call twice."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> "MongoDBSessionRepository":
        """Use the repository as a context manager that closes on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the ``with`` block."""
        self.close()

    def _ensure_indexes(self) -> None:
        """Create the timestamp and metadata indexes once per client and collection in this process.

        No lock is held while ``createIndexes`` runs, so a slow or unreachable server delays only this
        construction, never the others in the process. Two first constructions racing on one collection
        may both send the (idempotent) command; later ones send nothing.
        """
        namespace = (self.collection.database.name, self.collection.name)
        wanted = [
            "created_at",
            "updated_at",
            *(f"metadata.{docs.validate_metadata_key(f)}" for f in self.metadata_fields),
        ]
        with _indexed_lock:
            done = _indexed.get(id(self.client))
            if done is None:
                done = _indexed[id(self.client)] = set()
                weakref.finalize(self.client, _indexed.pop, id(self.client), None)
            missing = [path for path in wanted if (*namespace, path) not in done]
        if not missing:
            return
        with self._errors(None):
            self.collection.create_indexes([_index(path) for path in missing])
        with _indexed_lock:
            done.update((*namespace, path) for path in missing)
        logger.debug("collection=<%s> | fields=<%s> | created indexes", self.collection.full_name, missing)

    # ----------------------------------------------------------------- sessions

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Insert a new session document.

        Raises:
            SessionExistsError: A session with this id already exists (a strands ``SessionException``);
                it is left untouched.
        """
        docs.validate_ids(session_id=session.session_id)
        with self._errors(session.session_id):
            try:
                self.collection.insert_one(docs.session_document(session))
            except DuplicateKeyError as error:
                raise SessionExistsError(f"Session {session.session_id} already exists") from error
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session without any of its agents or messages."""
        docs.validate_ids(session_id=session_id)
        projection = {"session_id": 1, "session_type": 1, "session_data": 1}
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        return docs.session_from_document(document) if document else None

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session and everything in it, its message documents and GridFS files included.

        The session document goes first (readers stop seeing the session at once); then its message
        documents and files (two commands, four when it has files in GridFS).

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            result = self.collection.delete_one({"_id": session_id})
        if result.deleted_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        self._collection.delete_session(session_id)
        with self._lock:
            for key in [key for key in self._known_agent_data if key[0] == session_id]:
                del self._known_agent_data[key]
            for key in [key for key in self._layouts if key[0] == session_id]:
                del self._layouts[key]

    # ----------------------------------------------------------------- agents

    def create_agent(
        self,
        session_id: str,
        session_agent: SessionAgent,
        agent_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add an agent to a session (re-creating an agent replaces its data and keeps its messages).

        In a repository with ``message_storage="collection"`` a new agent gets the collection marker in the
        same command; an agent re-created with embedded messages keeps them where they are.

        Args:
            session_id: The session to add the agent to.
            session_agent: The agent's strands data.
            agent_config: Manager-owned ``agent_data`` fields (``model``, ``system_prompt``) stored with it.
            **kwargs: Ignored (strands' signature).

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id, agent_id=session_agent.agent_id)
        agent_id = session_agent.agent_id
        data = {**docs.agent_data(session_agent), **_config_fields(agent_config)}
        now = docs.utc_now()
        path = docs.agent_path(agent_id)
        fields = {f"{path}.agent_data": data, f"{path}.created_at": now, f"{path}.updated_at": now}
        if self.message_storage == docs.COLLECTION:  # a new agent (no embedded messages) gets the marker
            marked = {**fields, docs.message_storage_path(agent_id): docs.COLLECTION}
            query = {"_id": session_id, f"{path}.messages.0": {"$exists": False}}
            if self._update(session_id, query, {"$set": marked}).matched_count:
                self._learn(session_id, agent_id, docs.COLLECTION)
                self._remember(session_id, agent_id, data)
                return
        result = self._update(session_id, {"_id": session_id}, {"$set": fields})
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        self._remember(session_id, agent_id, data)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent's data without its messages."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        path = f"{docs.agent_path(agent_id)}.agent_data"
        storage_path = docs.message_storage_path(agent_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {path: 1, storage_path: 1})
        data = docs.get_path(document, path)
        if data is None:
            return None
        self._remember(session_id, agent_id, data)
        self._learn(session_id, agent_id, docs.get_path(document, storage_path))
        return docs.session_agent_from(data)

    def update_agent(
        self,
        session_id: str,
        session_agent: SessionAgent,
        agent_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the agent fields that changed since this repository last wrote or read them.

        A field counts as changed when the BSON MongoDB would store differs (so ``1`` -> ``True`` or
        ``1`` -> ``1.0`` is written). Nothing changed means no command at all. The stored
        ``created_at`` is kept.

        Args:
            session_id: The agent's session.
            session_agent: The agent's strands data.
            agent_config: Manager-owned ``agent_data`` fields (``model``, ``system_prompt``) to write in the
                same command when they changed; a ``None`` value is skipped, never stored.
            **kwargs: Ignored (strands' signature).

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=session_agent.agent_id)
        data = docs.agent_data(session_agent)
        data.pop("created_at")
        self._write_agent(session_id, session_agent.agent_id, {**data, **_config_fields(agent_config)})

    def known_agent_config(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return the ``model``/``system_prompt`` this repository last read or wrote for an agent, without I/O.

        None when this repository has not read or written the agent yet; a field never recorded is None.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id))
        if known is None:
            return None
        return {key: _from_stored_form(known.get(key)) for key in docs.AGENT_CONFIG_FIELDS}

    def _write_agent(self, session_id: str, agent_id: str, data: dict[str, Any]) -> None:
        """Write the agent fields whose stored form changed in one update, or nothing when none did."""
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id))
        if known is not None:
            data = {
                key: value
                for key, value in data.items()
                if key == "updated_at" or known.get(key) is None or known[key] != _stored_form(value)
            }
        changed = [key for key in data if key != "updated_at"]
        if not changed:
            logger.debug("session_id=<%s> | agent_id=<%s> | agent unchanged, nothing written", session_id, agent_id)
            return

        path = docs.agent_path(agent_id)
        now = docs.utc_now()
        updates: dict[str, Any] = {"updated_at": now, f"{path}.updated_at": now}
        updates.update({f"{path}.agent_data.{key}": value for key, value in data.items()})
        query = {"_id": session_id, f"{path}.agent_data": {"$exists": True}}
        result = self._update(session_id, query, {"$set": updates})
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        self._remember(session_id, agent_id, data, merge=True)

    def _remember(self, session_id: str, agent_id: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Record the stored form of an agent's fields, so unchanged fields are never re-sent."""
        stored = {key: _stored_form(value) for key, value in data.items()}
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id), {}) if merge else {}
            self._known_agent_data[(session_id, agent_id)] = {**known, **stored}

    # ----------------------------------------------------------------- messages

    def create_message(
        self,
        session_id: str,
        agent_id: str,
        session_message: SessionMessage,
        extra_fields: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Append one message to an agent, keeping its messages ordered by ``message_id``.

        ``extra_fields`` are stored beside the message's own fields in the same command (the manager's
        ``event_loop_metrics``); they never replace a ``SessionMessage`` field.

        In the embedded layout the usual append (a new id above every stored one) is a plain ``$push``,
        which a replica set logs as the one new element; an id below a stored one falls back to a sorted
        push, which MongoDB logs as the whole array (see the data-model page). An embedded agent that holds
        ``max_embedded_messages``, or whose session document cannot take this message, is first moved to
        the collection layout (``promotion.py``); the append then succeeds there. In the collection layout
        an append is one ``insert`` (a message bigger than a document goes to GridFS first).

        Raises:
            DuplicateMessageError: The agent already has a message with this id; nothing was written.
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        element = {**_extra_fields(extra_fields), **docs.message_document(session_message)}
        if self._layout(session_id, agent_id) != docs.COLLECTION:
            try:
                outcome = self._inline.append(session_id, agent_id, message_id, element)
            except DocumentTooLargeError:
                outcome = FULL  # the session document cannot take it: this agent's messages move out
            if outcome is None:
                return
            if outcome == FULL:
                promotion.promote(self._inline, self._collection, session_id, agent_id)
            self._learn(session_id, agent_id, docs.COLLECTION)
        self._collection.append(session_id, agent_id, element)

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        """Read one message, shipping only that message."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(message_id)
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            element = self._collection.read(session_id, agent_id, message_id)
        else:
            element, storage = self._inline.read(session_id, agent_id, message_id)
            self._learn(session_id, agent_id, storage)
            if storage == docs.COLLECTION:
                element = self._collection.read(session_id, agent_id, message_id)
        return docs.session_message_from(element) if element is not None else None

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Rewrite one message's content (redaction), keeping its ``created_at``.

        Raises:
            SessionNotFoundError: No such session, agent or message.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        element = docs.message_document(session_message)
        if not self._write_message(
            session_id, agent_id, lambda layout: layout.update(session_id, agent_id, message_id, element)
        ):
            raise SessionNotFoundError(f"Message {message_id} does not exist")

    def set_message_fields(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        fields: Mapping[str, Any],
        move_from: int | None = None,
    ) -> None:
        """Set extra fields (the manager's ``event_loop_metrics``) on one stored message, in one command.

        Args:
            session_id: The message's session.
            agent_id: The message's agent.
            message_id: The message that gets ``fields``.
            fields: Extra fields to set; ``SessionMessage`` fields are refused.
            move_from: Another message of the agent whose copies of these fields are removed in the same command.

        Raises:
            SessionNotFoundError: No such session, agent or message.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(message_id)
        fields = _extra_fields(fields)
        if move_from is not None:
            move_from = _check_message_id(move_from)
        moved_from = move_from

        def set_fields(layout: Any) -> bool:
            return bool(layout.set_fields(session_id, agent_id, message_id, fields, moved_from))

        if not self._write_message(session_id, agent_id, set_fields):
            raise SessionNotFoundError(f"Message {message_id} of agent {agent_id} does not exist")

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """List an agent's messages in ``message_id`` order, shipping only the requested page.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        if limit is not None and limit <= 0:
            return []
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            elements = self._collection.page(session_id, agent_id, limit, offset)
        else:
            found = self._inline.page(session_id, agent_id, limit, offset)
            self._learn(session_id, agent_id, found.storage)
            if found.storage == docs.COLLECTION:
                elements = self._collection.page(session_id, agent_id, limit, offset)
            else:
                elements = found.elements
        return [docs.session_message_from(element) for element in elements]

    def _write_message(self, session_id: str, agent_id: str, write: Callable[[Any], bool]) -> bool:
        """Run a message write in the agent's layout; on a miss in the embedded one, re-read the marker once."""
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            return write(self._collection)
        if write(self._inline):
            return True
        try:
            storage = self._inline.storage(session_id, agent_id)
        except SessionNotFoundError:
            return False
        self._learn(session_id, agent_id, storage)
        return storage == docs.COLLECTION and write(self._collection)

    def _layout(self, session_id: str, agent_id: str) -> str | None:
        """The agent's layout as last seen by this repository, or None."""
        with self._lock:
            return self._layouts.get((session_id, agent_id))

    def _learn(self, session_id: str, agent_id: str, storage: Any) -> None:
        """Record the layout a read or write found for an agent (the marker's value; absent means embedded).

        Embedded writes are guarded by the marker, so a stale "embedded" here costs one retry, never a
        write into the wrong place; every embedded read reports the marker it saw.
        """
        layout = docs.COLLECTION if storage == docs.COLLECTION else docs.EMBEDDED
        with self._lock:
            self._layouts[(session_id, agent_id)] = layout

    # ----------------------------------------------------------------- layout migration

    def migrate_session(self, session_id: str, to: str) -> bool:
        """Move every agent of a session to the message layout ``to``, agent by agent.

        Each agent moves with one commit point (see ``promotion.py``): safe to interrupt and run again.
        Moving to ``"embedded"`` is meant for sessions no application is writing to.

        Args:
            session_id: The session to migrate.
            to: ``"collection"`` or ``"embedded"``.

        Returns:
            True when an agent moved, False when every agent was already in place.

        Raises:
            ValueError: ``to`` is not a layout name.
            SessionNotFoundError: No such session.
            MessageLayoutError: An agent's messages would not fit in the 16 MB session document or one of
                them is stored in GridFS (moving to ``"embedded"``); that agent is left as it was.
        """
        docs.validate_ids(session_id=session_id)
        _check_layout(to)
        moved = False
        for agent_id in self._agents_to_move(session_id, to):
            move = promotion.promote if to == docs.COLLECTION else promotion.demote
            moved = move(self._inline, self._collection, session_id, agent_id) or moved
            self._learn(session_id, agent_id, to)
        return moved

    def migrate_sessions(
        self,
        to: str,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        session_ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Move sessions (all of the collection, or ``session_ids``) to the message layout ``to``, one by one.

        Resumable: a re-run skips what is in place and changes nothing there. A session that fails is
        reported and the others go on; an unreachable server stops the run.

        Args:
            to: ``"collection"`` or ``"embedded"``.
            dry_run: Only count what would move; nothing is written.
            on_progress: Called as ``on_progress(done, total)`` after each session.
            session_ids: The sessions to migrate; default: every session of the collection.

        Returns:
            ``{"to", "dry_run", "seen", "migrated", "already_in_place", "failed", "failures"}``, where
            ``failed`` counts the sessions in ``failures`` (``[{"session_id", "error"}]``) and ``migrated``
            counts the sessions that moved (would move, in a dry run).

        Raises:
            ValueError: ``to`` is not a layout name.
            StorageUnavailableError: MongoDB is unreachable.
        """
        _check_layout(to)
        if session_ids is None:
            with self._errors(None):
                session_ids = [row["_id"] for row in self.collection.find({}, {"_id": 1}).sort("_id", ASCENDING)]
        ids = list(session_ids)
        summary: dict[str, Any] = {"to": to, "dry_run": dry_run, "seen": 0, "migrated": 0, "already_in_place": 0}
        failures: list[dict[str, Any]] = []
        for done, session_id in enumerate(ids, start=1):
            summary["seen"] += 1
            try:
                docs.validate_ids(session_id=session_id)
                if not self._agents_to_move(session_id, to):
                    summary["already_in_place"] += 1
                elif dry_run or self.migrate_session(session_id, to):
                    summary["migrated"] += 1
                else:  # another process moved it meanwhile
                    summary["already_in_place"] += 1
            except StorageUnavailableError:
                raise
            except (SessionException, ValueError, PyMongoError) as error:
                logger.debug("session_id=<%s> | to=<%s> | migration failed: %s", session_id, to, error)
                failures.append({"session_id": session_id, "error": str(error)})
            if on_progress is not None:
                on_progress(done, len(ids))
        return {**summary, "failed": len(failures), "failures": failures}

    def _agents_to_move(self, session_id: str, to: str) -> list[str]:
        """The ids of the session's agents whose messages are not in layout ``to`` (one aggregate).

        Raises:
            SessionNotFoundError: No such session.
        """
        agents = {"$objectToArray": {"$ifNull": ["$agents", {}]}}
        storage = {"k": "$$agent.k", "storage": f"$$agent.v.{docs.MESSAGE_STORAGE_FIELD}"}
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {"$project": {"_id": 0, "agents": {"$map": {"input": agents, "as": "agent", "in": storage}}}},
        ]
        with self._errors(session_id):
            rows = list(self.collection.aggregate(pipeline))
        if not rows:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        layouts = {
            docs.unescape_key(agent["k"]): docs.COLLECTION if agent.get("storage") == docs.COLLECTION else docs.EMBEDDED
            for agent in rows[0].get("agents") or []
        }
        return [agent_id for agent_id, layout in layouts.items() if layout != to]

    # ----------------------------------------------------------------- multi-agent

    def create_multi_agent(self, session_id: str, multi_agent: "MultiAgentBase", **kwargs: Any) -> None:
        """Store a multi-agent's (Graph, Swarm) serialized state in the session.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id, multi_agent_id=multi_agent.id)
        now = docs.utc_now()
        entry = {"state": docs.encode_value(multi_agent.serialize_state()), "created_at": now, "updated_at": now}
        update = {"$set": {docs.multi_agent_path(multi_agent.id): entry, "updated_at": now}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")

    def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> dict[str, Any] | None:
        """Read a multi-agent's serialized state, or None."""
        docs.validate_ids(session_id=session_id, multi_agent_id=multi_agent_id)
        path = f"{docs.multi_agent_path(multi_agent_id)}.state"
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {path: 1})
        state = docs.get_path(document, path)
        return docs.decode_value(state) if state is not None else None

    def update_multi_agent(self, session_id: str, multi_agent: "MultiAgentBase", **kwargs: Any) -> None:
        """Replace a multi-agent's serialized state.

        Raises:
            SessionNotFoundError: No such session or multi-agent.
        """
        docs.validate_ids(session_id=session_id, multi_agent_id=multi_agent.id)
        path = docs.multi_agent_path(multi_agent.id)
        now = docs.utc_now()
        update = {
            "$set": {
                f"{path}.state": docs.encode_value(multi_agent.serialize_state()),
                f"{path}.updated_at": now,
                "updated_at": now,
            }
        }
        query = {"_id": session_id, path: {"$exists": True}}
        if self._update(session_id, query, update).matched_count == 0:
            raise SessionNotFoundError(f"MultiAgent state {multi_agent.id} in session {session_id} does not exist")

    # ----------------------------------------------------------------- metadata

    def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Set the given metadata fields, keeping all others (dotted keys address nested fields).

        Raises:
            InvalidIdError: ``session_id`` is not a non-empty string; nothing was sent.
            TypeError: ``metadata`` is not a dict; nothing was sent.
            InvalidMetadataKeyError: A key is invalid; nothing was written.
            SessionDataError: A value cannot be stored as BSON, or a dotted key runs through a stored
                value that is not an object; nothing was written.
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        metadata = docs.check_metadata_mapping(metadata)
        paths = docs.metadata_paths(metadata)
        updates = dict(zip(paths, map(docs.encode_value, metadata.values()), strict=True))
        updates["updated_at"] = docs.utc_now()
        if self._update(session_id, {"_id": session_id}, {"$set": updates}).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")

    def get_metadata(self, session_id: str) -> dict[str, Any]:
        """Return ``{"metadata": {...}}`` for the session, or ``{}`` when it does not exist."""
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"metadata": 1})
        if not document:
            return {}
        return {"metadata": {key: docs.decode_value(value) for key, value in document.get("metadata", {}).items()}}

    def delete_metadata(self, session_id: str, metadata_keys: str | Sequence[str]) -> None:
        """Remove the given metadata fields, keeping all others (a bare string is one key).

        Raises:
            InvalidIdError: ``session_id`` is not a non-empty string; nothing was sent.
            InvalidMetadataKeyError: A key is invalid; nothing was written.
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        metadata_keys = docs.metadata_key_list(metadata_keys)
        paths = docs.metadata_paths(metadata_keys)
        update = {"$unset": dict.fromkeys(paths, ""), "$set": {"updated_at": docs.utc_now()}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")

    # ----------------------------------------------------------------- feedback

    def add_feedback(self, session_id: str, feedback: Mapping[str, Any]) -> dict[str, Any]:
        """Append a feedback entry stamped with ``created_at`` and return the stored entry.

        Raises:
            SessionDataError: A value cannot be stored as BSON; nothing was written.
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        now = docs.utc_now()
        entry = docs.encode_value({**feedback, "created_at": now})
        update = {"$push": {"feedbacks": entry}, "$set": {"updated_at": now}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        return docs.decode_value(entry)

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """Return the session's feedback entries in the order they were added."""
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"feedbacks": 1})
        return [docs.decode_value(entry) for entry in document.get("feedbacks", [])] if document else []

    def get_viewer_password(self, session_id: str) -> str | None:
        """Return the session's Session Viewer password, or None when the session does not exist."""
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"session_viewer_password": 1})
        return document.get("session_viewer_password") if document else None

    # ----------------------------------------------------------------- agent config

    def get_agent_config(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return ``{agent_id, model, system_prompt}`` for one agent, or None."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        path = f"{docs.agent_path(agent_id)}.agent_data"
        projection = {f"{path}.{key}": 1 for key in ("agent_id", *docs.AGENT_CONFIG_FIELDS)}
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        data = docs.get_path(document, path)
        return _config(agent_id, data) if data is not None else None

    def update_agent_config(
        self, session_id: str, agent_id: str, model: str | None = None, system_prompt: str | None = None
    ) -> None:
        """Set an agent's stored model and/or system prompt (``None`` leaves a field unchanged).

        A value equal to what this repository last read or wrote for the agent costs no command.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        config = _config_fields({"model": model, "system_prompt": system_prompt})
        if not config:
            return
        self._write_agent(session_id, agent_id, config)

    def list_agents(self, session_id: str) -> list[dict[str, Any]]:
        """Return ``{agent_id, model, system_prompt}`` for every agent in the session, without messages."""
        docs.validate_ids(session_id=session_id)
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {"$project": {"_id": 0, "agents": {"$objectToArray": {"$ifNull": ["$agents", {}]}}}},
            {"$unwind": "$agents"},
            {
                "$project": {
                    "key": "$agents.k",
                    "agent_id": "$agents.v.agent_data.agent_id",
                    "model": "$agents.v.agent_data.model",
                    "system_prompt": "$agents.v.agent_data.system_prompt",
                }
            },
        ]
        with self._errors(session_id):
            rows = list(self.collection.aggregate(pipeline))
        return [_config(docs.unescape_key(row["key"]), row) for row in rows]

    # ----------------------------------------------------------------- plumbing

    def _update(
        self,
        session_id: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        array_filters: list[Mapping[str, Any]] | None = None,
    ) -> UpdateResult:
        """Run one ``update_one`` with errors translated to this package's types."""
        with self._errors(session_id, update):
            return self.collection.update_one(query, update, array_filters=array_filters)

    @contextlib.contextmanager
    def _errors(self, session_id: str | None, update: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Translate pymongo and BSON errors into typed, self-explaining exceptions."""
        where = f"session_id=<{session_id}>" if session_id is not None else f"collection=<{self.collection.full_name}>"
        try:
            yield
        except DocumentTooLarge as error:  # a subclass of InvalidDocument: catch it first
            raise _too_large(where, update) from error
        except InvalidDocument as error:
            raise SessionDataError(f"{where} | value cannot be stored in MongoDB: {error}") from error
        except OperationFailure as error:
            if error.code in _TOO_LARGE_CODES:
                raise _too_large(where, update) from error
            if error.code == _PATH_NOT_VIABLE:
                raise _path_not_viable(where, update) from error
            raise
        except ConnectionFailure as error:
            raise StorageUnavailableError(
                f"{where} | MongoDB is unreachable ({type(error).__name__}): {error}"
            ) from error


def _too_large(where: str, update: Mapping[str, Any] | None) -> DocumentTooLargeError:
    size = len(bson.encode(update)) if update is not None else 0
    return DocumentTooLargeError(
        f"{where} | update_bytes=<{size}> | the write would exceed MongoDB's "
        f"{docs.MAX_DOCUMENT_BYTES}-byte document limit; nothing was written"
    )


def _path_not_viable(where: str, update: Mapping[str, Any] | None) -> SessionDataError:
    """The error for a dotted path that runs through a stored value that is not an object (MongoDB code 28)."""
    paths = [path for path in (update or {}).get("$set", {}) if path.startswith("metadata.") and path.count(".") > 1]
    keys = ",".join(repr(path.removeprefix("metadata.")) for path in paths)
    return SessionDataError(
        f"{where} | keys=<{keys}> | a dotted key runs through a stored value that is not an object "
        "(store a dict at its parent key first); nothing was written"
    )


def _check_layout(to: Any) -> None:
    if to not in docs.MESSAGE_LAYOUTS:
        raise ValueError(f"to=<{to!r}> | the layout must be one of {list(docs.MESSAGE_LAYOUTS)}")


def _check_message_id(message_id: Any) -> int:
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ValueError(f"message_id=<{message_id!r}> | message id must be an integer")
    return message_id


def _config_fields(agent_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manager-owned config fields to store: known names only, never a ``None`` value."""
    config = dict(agent_config or {})
    unknown = set(config) - set(docs.AGENT_CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"agent_config=<{sorted(unknown)}> | only {list(docs.AGENT_CONFIG_FIELDS)} can be set")
    return {key: value for key, value in config.items() if value is not None}


def _extra_fields(extra_fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fields stored beside a message's own; a name of a ``SessionMessage`` field is refused."""
    fields = dict(extra_fields or {})
    clashing = set(fields) & _MESSAGE_FIELD_NAMES
    if clashing:
        raise ValueError(f"extra_fields=<{sorted(clashing)}> | these are SessionMessage fields")
    return fields


def _stored_form(value: Any) -> bytes | None:
    """The BSON bytes MongoDB stores for a field value (``1``, ``1.0`` and ``True`` differ), or None if unencodable."""
    try:
        return bson.encode({"v": value})
    except (BSONError, OverflowError, TypeError, ValueError):
        return None


def _from_stored_form(stored: bytes | None) -> Any:
    """Invert `_stored_form` (None stays None)."""
    return bson.decode(stored)["v"] if stored is not None else None


def _config(agent_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"agent_id": data.get("agent_id", agent_id), **{key: data.get(key) for key in docs.AGENT_CONFIG_FIELDS}}


def _index(path: str) -> IndexModel:
    """An ascending index on ``path``; ``created_at`` also orders by ``_id`` for stable newest-first paging."""
    keys = [(path, ASCENDING), ("_id", ASCENDING)] if path == "created_at" else [(path, ASCENDING)]
    return IndexModel(keys, name="_".join(f"{key}_1" for key, _ in keys))
