"""``MongoDBSessionRepository``: strands' ``SessionRepository`` on one MongoDB document per session."""

import contextlib
import copy
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bson
from bson.errors import InvalidDocument
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
_ALL_REMAINING = 2**31 - 1

_indexed: dict[int, set[tuple[str, str, str]]] = {}
"""Indexes created in this process, per client (by identity: clients compare equal by address)."""
_indexed_lock = threading.Lock()


@dataclass
class StagedAgentUpdate:
    """Manager-owned fields waiting to ride on the next write of one agent."""

    agent_data: dict[str, Any] = field(default_factory=dict)
    message_id: int | None = None
    message_fields: dict[str, Any] = field(default_factory=dict)


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
        self._known_agent_data: dict[tuple[str, str], dict[str, Any]] = {}
        self._staged: dict[tuple[str, str], StagedAgentUpdate] = {}
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
        """Create the timestamp and metadata indexes once per client and collection in this process."""
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
            done.update((*namespace, path) for path in missing)
        logger.debug("collection=<%s> | fields=<%s> | created indexes", self.collection.full_name, missing)

    # ----------------------------------------------------------------- sessions

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Insert a new session document.

        Raises:
            SessionExistsError: A session with this id already exists (a strands ``SessionException``);
                it is left untouched.
        """
        with self._errors(session.session_id):
            try:
                self.collection.insert_one(docs.session_document(session))
            except DuplicateKeyError as error:
                raise SessionExistsError(f"Session {session.session_id} already exists") from error
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session without any of its agents or messages."""
        projection = {"session_id": 1, "session_type": 1, "session_data": 1}
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        return docs.session_from_document(document) if document else None

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session and everything in it.

        Raises:
            SessionNotFoundError: No such session.
        """
        with self._errors(session_id):
            result = self.collection.delete_one({"_id": session_id})
        if result.deleted_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        with self._lock:
            for key in [key for key in self._known_agent_data if key[0] == session_id]:
                del self._known_agent_data[key]

    # ----------------------------------------------------------------- agents

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Add an agent to a session (re-creating an agent replaces its data and keeps its messages).

        Staged manager fields (agent config) are stored with it.

        Raises:
            SessionNotFoundError: No such session.
        """
        agent_id = session_agent.agent_id
        staged = self._take_staged(session_id, agent_id)
        data = {**docs.agent_data(session_agent), **(staged.agent_data if staged else {})}
        now = docs.utc_now()
        path = docs.agent_path(agent_id)
        update = {"$set": {f"{path}.agent_data": data, f"{path}.created_at": now, f"{path}.updated_at": now}}
        result = self._update(session_id, {"_id": session_id}, update)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        self._remember(session_id, agent_id, data)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent's data without its messages."""
        path = f"{docs.agent_path(agent_id)}.agent_data"
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {path: 1})
        data = docs.get_path(document, path)
        if data is None:
            return None
        self._remember(session_id, agent_id, data)
        return docs.session_agent_from(data)

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Write the agent fields that changed since this repository last wrote or read them.

        Staged manager fields (agent config, message metrics) ride on the same command. Nothing
        changed means no command at all. The stored ``created_at`` is kept.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        data = docs.agent_data(session_agent)
        data.pop("created_at")
        self._write_agent(
            session_id, session_agent.agent_id, data, self._take_staged(session_id, session_agent.agent_id)
        )

    def stage_agent_update(self, session_id: str, agent_id: str, staged: StagedAgentUpdate) -> None:
        """Hold manager fields for an agent until its next `update_agent` or `flush_agent_update`."""
        with self._lock:
            self._staged[(session_id, agent_id)] = staged

    def flush_agent_update(self, session_id: str, agent_id: str) -> None:
        """Write staged fields that no `update_agent` carried (nothing to write costs nothing)."""
        staged = self._take_staged(session_id, agent_id)
        if staged is not None:
            self._write_agent(session_id, agent_id, {}, staged)

    def _take_staged(self, session_id: str, agent_id: str) -> StagedAgentUpdate | None:
        with self._lock:
            return self._staged.pop((session_id, agent_id), None)

    def _write_agent(
        self, session_id: str, agent_id: str, data: dict[str, Any], staged: StagedAgentUpdate | None
    ) -> None:
        """Write changed agent fields plus staged ones in one update, or nothing when nothing changed."""
        staged = staged or StagedAgentUpdate()
        data = {**data, **staged.agent_data}
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id))
        if known is not None:
            data = {key: value for key, value in data.items() if key == "updated_at" or known.get(key) != value}
        changed = [key for key in data if key != "updated_at"]
        message_fields = staged.message_fields if staged.message_id is not None else {}
        if not changed and not message_fields:
            logger.debug("session_id=<%s> | agent_id=<%s> | agent unchanged, nothing written", session_id, agent_id)
            return

        path = docs.agent_path(agent_id)
        now = docs.utc_now()
        updates: dict[str, Any] = {"updated_at": now, f"{path}.updated_at": now}
        if changed:
            updates.update({f"{path}.agent_data.{key}": value for key, value in data.items()})
        array_filters: list[Mapping[str, Any]] | None = None
        if message_fields:
            updates.update({f"{path}.messages.$[m].{key}": value for key, value in message_fields.items()})
            array_filters = [{"m.message_id": staged.message_id}]
        query = {"_id": session_id, f"{path}.agent_data": {"$exists": True}}
        result = self._update(session_id, query, {"$set": updates}, array_filters=array_filters)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        if changed:
            self._remember(session_id, agent_id, data, merge=True)

    def _remember(self, session_id: str, agent_id: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Record what the database holds for an agent, so unchanged fields are never re-sent."""
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id), {}) if merge else {}
            self._known_agent_data[(session_id, agent_id)] = {**known, **copy.deepcopy(dict(data))}

    # ----------------------------------------------------------------- messages

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Append one message to an agent, keeping the array ordered by ``message_id``.

        Raises:
            DuplicateMessageError: The agent already has a message with this id; nothing was written.
            SessionNotFoundError: No such session or agent.
        """
        message_id = _check_message_id(session_message.message_id)
        path = docs.agent_path(agent_id)
        query = {
            "_id": session_id,
            f"{path}.agent_data": {"$exists": True},
            f"{path}.messages.message_id": {"$ne": message_id},
        }
        now = docs.utc_now()
        element = docs.message_document(session_message)
        update = {
            "$push": {f"{path}.messages": {"$each": [element], "$sort": {"message_id": ASCENDING}}},
            "$set": {"updated_at": now, f"{path}.updated_at": now},
        }
        if self._update(session_id, query, update).matched_count == 0:
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
        message_id = _check_message_id(session_message.message_id)
        path = docs.messages_path(agent_id)
        element = docs.message_document(session_message)
        updates = {f"{path}.$[m].{key}": element[key] for key in ("message", "redact_message", "updated_at")}
        updates["updated_at"] = docs.utc_now()
        query = {"_id": session_id, f"{path}.message_id": message_id}
        result = self._update(session_id, query, {"$set": updates}, array_filters=[{"m.message_id": message_id}])
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Message {message_id} does not exist")

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """List an agent's messages in ``message_id`` order, shipping only the requested page.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
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
        now = docs.utc_now()
        entry = {"state": multi_agent.serialize_state(), "created_at": now, "updated_at": now}
        update = {"$set": {docs.multi_agent_path(multi_agent.id): entry, "updated_at": now}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")

    def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> dict[str, Any] | None:
        """Read a multi-agent's serialized state, or None."""
        path = f"{docs.multi_agent_path(multi_agent_id)}.state"
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {path: 1})
        state = docs.get_path(document, path)
        return dict(state) if state is not None else None

    def update_multi_agent(self, session_id: str, multi_agent: "MultiAgentBase", **kwargs: Any) -> None:
        """Replace a multi-agent's serialized state.

        Raises:
            SessionNotFoundError: No such session or multi-agent.
        """
        path = docs.multi_agent_path(multi_agent.id)
        now = docs.utc_now()
        update = {
            "$set": {f"{path}.state": multi_agent.serialize_state(), f"{path}.updated_at": now, "updated_at": now}
        }
        query = {"_id": session_id, path: {"$exists": True}}
        if self._update(session_id, query, update).matched_count == 0:
            raise SessionNotFoundError(f"MultiAgent state {multi_agent.id} in session {session_id} does not exist")

    # ----------------------------------------------------------------- metadata

    def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Set the given metadata fields, keeping all others (dotted keys address nested fields).

        Raises:
            InvalidMetadataKeyError: A key is invalid; nothing was written.
            SessionDataError: A value cannot be stored as BSON; nothing was written.
            SessionNotFoundError: No such session.
        """
        paths = docs.metadata_paths(metadata)
        updates = dict(zip(paths, metadata.values(), strict=True))
        updates["updated_at"] = docs.utc_now()
        if self._update(session_id, {"_id": session_id}, {"$set": updates}).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")

    def get_metadata(self, session_id: str) -> dict[str, Any]:
        """Return ``{"metadata": {...}}`` for the session, or ``{}`` when it does not exist."""
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"metadata": 1})
        return {"metadata": document.get("metadata", {})} if document else {}

    def delete_metadata(self, session_id: str, metadata_keys: Sequence[str]) -> None:
        """Remove the given metadata fields, keeping all others.

        Raises:
            InvalidMetadataKeyError: A key is invalid; nothing was written.
            SessionNotFoundError: No such session.
        """
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
        now = docs.utc_now()
        entry = {**feedback, "created_at": now}
        update = {"$push": {"feedbacks": entry}, "$set": {"updated_at": now}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        return entry

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """Return the session's feedback entries in the order they were added."""
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"feedbacks": 1})
        return list(document.get("feedbacks", [])) if document else []

    def get_viewer_password(self, session_id: str) -> str | None:
        """Return the session's Session Viewer password, or None when the session does not exist."""
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"session_viewer_password": 1})
        return document.get("session_viewer_password") if document else None

    # ----------------------------------------------------------------- agent config

    def get_agent_config(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return ``{agent_id, model, system_prompt}`` for one agent, or None."""
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

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        config = {
            key: value for key, value in (("model", model), ("system_prompt", system_prompt)) if value is not None
        }
        if not config:
            return
        self._write_agent(session_id, agent_id, {}, StagedAgentUpdate(agent_data=config))

    def list_agents(self, session_id: str) -> list[dict[str, Any]]:
        """Return ``{agent_id, model, system_prompt}`` for every agent in the session, without messages."""
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


def _check_message_id(message_id: Any) -> int:
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ValueError(f"message_id=<{message_id!r}> | message id must be an integer")
    return message_id


def _config(agent_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"agent_id": data.get("agent_id", agent_id), **{key: data.get(key) for key in docs.AGENT_CONFIG_FIELDS}}


def _index(path: str) -> IndexModel:
    """An ascending index on ``path``; ``created_at`` also orders by ``_id`` for stable newest-first paging."""
    keys = [(path, ASCENDING), ("_id", ASCENDING)] if path == "created_at" else [(path, ASCENDING)]
    return IndexModel(keys, name="_".join(f"{key}_1" for key, _ in keys))
