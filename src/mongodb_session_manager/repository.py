"""``MongoDBSessionRepository``: strands' ``SessionRepository`` on one MongoDB document per session."""

import contextlib
import dataclasses
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
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
)
from pymongo.results import UpdateResult
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from . import documents as docs
from .errors import (
    DocumentTooLargeError,
    DuplicateMessageError,
    SessionDataError,
    SessionExistsError,
    SessionNotFoundError,
    StorageUnavailableError,
)

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)

_TOO_LARGE_CODES = {10334, 17419, 17420}
_PATH_NOT_VIABLE = 28
_ALL_REMAINING = 2**31 - 1
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
            **client_options: pymongo ``MongoClient`` options for an owned client.
        """
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
        self._lock = threading.Lock()
        self._known_agent_data: dict[tuple[str, str], dict[str, bytes | None]] = {}
        """Per agent, the BSON form of each ``agent_data`` field as last read or written (see `_stored_form`)."""
        try:
            self._ensure_indexes()
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
        """Delete a session and everything in it.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            result = self.collection.delete_one({"_id": session_id})
        if result.deleted_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        with self._lock:
            for key in [key for key in self._known_agent_data if key[0] == session_id]:
                del self._known_agent_data[key]

    # ----------------------------------------------------------------- agents

    def create_agent(
        self,
        session_id: str,
        session_agent: SessionAgent,
        agent_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add an agent to a session (re-creating an agent replaces its data and keeps its messages).

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
        update = {"$set": {f"{path}.agent_data": data, f"{path}.created_at": now, f"{path}.updated_at": now}}
        result = self._update(session_id, {"_id": session_id}, update)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        self._remember(session_id, agent_id, data)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent's data without its messages."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        path = f"{docs.agent_path(agent_id)}.agent_data"
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {path: 1})
        data = docs.get_path(document, path)
        if data is None:
            return None
        self._remember(session_id, agent_id, data)
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
        """Append one message to an agent, keeping the array ordered by ``message_id``.

        ``extra_fields`` are stored beside the message's own fields in the same command (the manager's
        ``event_loop_metrics``); they never replace a ``SessionMessage`` field.

        The usual append (a new id above every stored one) is a plain ``$push``, which a replica set logs as
        the one new element; an id below a stored one falls back to a sorted push, which MongoDB logs as the
        whole array (see the data-model page).

        Raises:
            DuplicateMessageError: The agent already has a message with this id; nothing was written.
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        path = docs.agent_path(agent_id)
        ids = f"{path}.messages.message_id"
        query = {"_id": session_id, f"{path}.agent_data": {"$exists": True}, ids: {"$not": {"$gte": message_id}}}
        now = docs.utc_now()
        element = {**_extra_fields(extra_fields), **docs.message_document(session_message)}
        stamps = {"updated_at": now, f"{path}.updated_at": now}
        if self._update(session_id, query, {"$push": {f"{path}.messages": element}, "$set": stamps}).matched_count:
            return
        query[ids] = {"$ne": message_id}
        sorted_push = {"$each": [element], "$sort": {"message_id": ASCENDING}}
        if self._update(session_id, query, {"$push": {f"{path}.messages": sorted_push}, "$set": stamps}).matched_count:
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | message_id=<%s> | out-of-order message inserted in order",
                session_id,
                agent_id,
                message_id,
            )
            return
        self._explain_missed_message_write(session_id, agent_id, message_id)

    def _explain_missed_message_write(self, session_id: str, agent_id: str, message_id: int) -> None:
        """Raise the right error after a message write matched nothing (failure path only)."""
        path = docs.agent_path(agent_id)
        with self._errors(session_id):
            document = self.collection.find_one(
                {"_id": session_id}, {f"{path}.agent_data.agent_id": 1, f"{path}.messages": {"$slice": 0}}
            )
            if document is None:
                raise SessionNotFoundError(f"Session {session_id} does not exist")
            if docs.get_path(document, f"{path}.agent_data") is None:
                raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        raise DuplicateMessageError(
            f"session_id=<{session_id}> | agent_id=<{agent_id}> | message_id=<{message_id}> | "
            "a message with this id is already stored; nothing was written"
        )

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        """Read one message, shipping only that element of the array."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(message_id)
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": session_id}},
            {
                "$project": {
                    "_id": 0,
                    "found": {
                        "$filter": {
                            "input": f"${docs.messages_path(agent_id)}",
                            "as": "m",
                            "cond": {"$eq": ["$$m.message_id", message_id]},
                        }
                    },
                }
            },
        ]
        with self._errors(session_id):
            results = list(self.collection.aggregate(pipeline))
        found = results[0].get("found") if results else None
        return docs.session_message_from(found[0]) if found else None

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Rewrite one message's content (redaction), keeping its ``created_at``.

        Raises:
            SessionNotFoundError: No such session, agent or message.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        path = docs.messages_path(agent_id)
        element = docs.message_document(session_message)
        updates = {f"{path}.$[m].{key}": element[key] for key in ("message", "redact_message", "updated_at")}
        updates["updated_at"] = docs.utc_now()
        query = {"_id": session_id, f"{path}.message_id": message_id}
        result = self._update(session_id, query, {"$set": updates}, array_filters=[{"m.message_id": message_id}])
        if result.matched_count == 0:
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
        path = docs.messages_path(agent_id)
        update: dict[str, Any] = {"$set": {f"{path}.$[m].{key}": value for key, value in fields.items()}}
        update["$set"]["updated_at"] = docs.utc_now()
        array_filters: list[Mapping[str, Any]] = [{"m.message_id": message_id}]
        if move_from is not None and move_from != message_id:
            update["$unset"] = {f"{path}.$[old].{key}": "" for key in fields}
            array_filters.append({"old.message_id": _check_message_id(move_from)})
        query = {"_id": session_id, f"{path}.message_id": message_id}
        if self._update(session_id, query, update, array_filters=array_filters).matched_count == 0:
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
        path = docs.agent_path(agent_id)
        page: Any = 1 if offset == 0 and limit is None else {"$slice": [offset, limit or _ALL_REMAINING]}
        projection = {f"{path}.agent_data.agent_id": 1, f"{path}.messages": page}
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        if document is None:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        agent = docs.get_path(document, path)
        if agent is None:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        return [docs.session_message_from(element) for element in agent.get("messages", [])]

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
