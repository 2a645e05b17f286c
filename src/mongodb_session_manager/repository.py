"""``MongoDBSessionRepository``: strands' ``SessionRepository`` on one MongoDB document per session.

Message operations are delegated to the agent's layout: ``inline_messages.py`` (the array in the
session document) or ``collection_messages.py`` (one document per message); ``promotion.py`` moves an
agent between them.
"""

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import bson
from bson.binary import Binary
from bson.errors import BSONError, InvalidDocument
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, ReturnDocument
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

from . import _guardrails, promotion, transfer
from . import documents as docs
from .collection_messages import CollectionMessages
from .encryption import (
    AGENT_SEALED_FIELDS,
    KEY_ID_FIELD,
    EncryptionSettings,
    FieldCipher,
    require_encryption_support,
    sealer_for,
    session_key_alt_name,
    without_ciphertexts,
)
from .errors import (
    DocumentTooLargeError,
    SessionDataError,
    SessionException,
    SessionExistsError,
    SessionNotFoundError,
    StorageUnavailableError,
)
from .inline_messages import FULL, InlineMessages, message_counts_expression

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)

DEFAULT_MAX_EMBEDDED_MESSAGES = 1000
"""Messages an embedded agent holds before the append that would pass it moves them to the collection layout."""
DEFAULT_LIST_LIMIT = 50
"""Sessions per `MongoDBSessionRepository.list_sessions` page unless told otherwise."""
MAX_LIST_LIMIT = 1000
"""The largest page `MongoDBSessionRepository.list_sessions` returns."""
ORPHAN_GRACE = timedelta(minutes=10)
"""How old an orphaned message must be before `MongoDBSessionRepository.delete_orphaned_messages` deletes it.

A writer that stores messages before their session document (an import in progress) is not swept.
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LISTING_INDEX = "created_at_1__id_1"
_LAST_DATE = datetime(9999, 12, 31, tzinfo=UTC)

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
        database_name: str = docs.DEFAULT_DATABASE,
        collection_name: str = docs.DEFAULT_COLLECTION,
        client: MongoClient | None = None,
        metadata_fields: Sequence[str] | None = None,
        message_storage: str = docs.EMBEDDED,
        max_embedded_messages: int = DEFAULT_MAX_EMBEDDED_MESSAGES,
        create_indexes: bool = True,
        ttl_hours: float | None = None,
        application_name: str | None = None,
        encryption: EncryptionSettings | None = None,
        **client_options: Any,
    ) -> None:
        """Connect (or borrow a client) and make sure the collection's indexes exist.

        Args:
            connection_string: MongoDB URI; when neither it nor ``client`` is given, ``MONGODB_URI``
                or the embedded development server is used.
            database_name: Database holding the sessions (default ``"database_name"``, `documents.DEFAULT_DATABASE`).
            collection_name: Collection holding one document per session (default ``"collection_name"``).
            client: A client to borrow; it is never closed by this repository.
            metadata_fields: Metadata fields to index for searching.
            message_storage: Where new agents keep their messages: ``"embedded"`` (in the session document,
                the default) or ``"collection"`` (one document per message in ``<collection_name>.messages``).
                Existing agents keep the layout recorded for them; both are read and written by any setting.
            max_embedded_messages: An embedded agent holding this many messages is moved to the collection
                layout by the append that would pass it (as is one whose next message would push the
                session document past 16 MB).
            create_indexes: Create the collection's indexes if this process has not yet (no command once
                done). False for a reader that must not write, such as the Session Viewer with a read-only
                user: nothing is sent at construction.
            ttl_hours: Sessions expire this many hours after their last write (``expires_at`` on the
                session document, deleted by MongoDB's TTL monitor; see `hold_session`). None: this
                repository never sets an expiry (sessions others gave one still expire).
            application_name: The application this repository writes for: stored in every session it
                creates (``application_name`` of the session document), never changed afterwards.
            encryption: Client-side field-level encryption (the ``encryption`` extra): every session this
                repository creates gets its own data key and its messages, states, feedback comments, viewer
                password and configured metadata fields are stored encrypted (see `EncryptionSettings`). A
                session created without encryption stays clear. Without it, reading an encrypted value
                raises `EncryptionKeyError`.
            **client_options: pymongo ``MongoClient`` options for an owned client.

        Raises:
            ImportError: ``encryption`` is given without the ``encryption`` extra installed (nothing is connected).
            TypeError: ``encryption`` is not an `EncryptionSettings` (nothing is connected).
            InvalidApplicationNameError: ``application_name`` is not a non-empty string of at most 128
                characters without NUL (nothing is connected).
            ValueError: ``message_storage`` is not a layout name, ``max_embedded_messages`` is not a
                positive int or ``ttl_hours`` is not a positive number (nothing is connected).
        """
        self.application_name = docs.check_application_name(application_name)
        docs.check_message_layout(message_storage, max_embedded_messages)
        if encryption is not None:
            if not isinstance(encryption, EncryptionSettings):
                raise TypeError(f"encryption must be an EncryptionSettings, not {type(encryption).__name__}")
            require_encryption_support()
        self.encryption = encryption
        self.ttl_hours = ttl_hours
        self._ttl = docs.check_ttl_hours(ttl_hours)
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
        if encryption is not None:  # queried by equality: indexed like metadata_fields
            self.metadata_fields += [
                name for name in encryption.deterministic_metadata_fields if name not in self.metadata_fields
            ]
        self._cipher = FieldCipher(sealer_for(client, encryption) if encryption is not None else None)
        self._session_keys: dict[str, Binary | None] = {}
        """Per session, its data key id (None: a clear session), as last read or written (see `_session_key`)."""
        self._inline = InlineMessages(self.collection, self._errors, max_embedded_messages, self._ttl)
        self._collection = CollectionMessages(self.collection, self._errors)
        self._layouts: dict[tuple[str, str], str] = {}
        """Per agent, the message layout last seen in its session document (see `_learn`)."""
        self._lock = threading.Lock()
        self._indexed_metadata: set[str] | None = None
        """Metadata fields the collection has an index on, read once by `list_sessions` when needed."""
        self._known_agent_data: dict[tuple[str, str], dict[str, bytes | None]] = {}
        """Per agent, the BSON form of each ``agent_data`` field as last read or written (see `_stored_form`)."""
        try:
            if create_indexes:
                self._ensure_indexes()
            if create_indexes and message_storage == docs.COLLECTION:
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
        """Create the timestamp, expiry and metadata indexes once per client and collection in this process.

        The TTL index on ``expires_at`` is created whatever ``ttl_hours`` is: it costs nothing on sessions
        without the field, and a process without a ttl still honours the expiry others set.

        No lock is held while ``createIndexes`` runs, so a slow or unreachable server delays only this
        construction, never the others in the process. Two first constructions racing on one collection
        may both send the (idempotent) command; later ones send nothing.
        """
        namespace = (self.collection.database.name, self.collection.name)
        wanted = [
            "created_at",
            "updated_at",
            docs.EXPIRES_AT_FIELD,
            docs.APPLICATION_NAME_FIELD,
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
        """Insert a new session document, with this repository's ``application_name`` when it has one.

        With ``encryption`` the session first gets its own data key in the key vault (one insert; the first
        creation in the process also makes sure of the key vault's ``keyAltNames`` index), named
        ``"session:<session_id>"``; a key left by a deleted session of the same id is reused.

        Raises:
            SessionExistsError: A session with this id already exists (a strands ``SessionException``);
                it is left untouched, its ``application_name`` included.
        """
        session_id = session.session_id
        docs.validate_ids(session_id=session_id)
        document = docs.session_document(session, self._ttl, self.application_name)
        sealer = self._cipher.sealer
        key_id, created = None, False
        if sealer is not None:
            key_id, created = sealer.create_key(session_key_alt_name(session_id), f"session_id=<{session_id}>")
            document[KEY_ID_FIELD] = key_id
            password = document["session_viewer_password"]
            document["session_viewer_password"] = sealer.encrypt(session_id, password, key_id=key_id)
        with self._errors(session_id):
            try:
                self.collection.insert_one(document)
            except DuplicateKeyError as error:
                if created:  # the key this call made belongs to no session
                    sealer.key_vault.delete_one({"_id": key_id})  # type: ignore[union-attr]
                raise SessionExistsError(f"Session {session_id} already exists") from error
        if sealer is not None:
            sealer.recreated(session_id)
        self._remember_key(session_id, key_id)
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session without any of its agents or messages.

        A repository with an ``application_name`` opening a session another application created logs a
        warning (the session keeps its own name); a session without one (written by an earlier version, or
        by a repository without a name) is opened silently and keeps having none.
        """
        docs.validate_ids(session_id=session_id)
        projection = {
            "session_id": 1,
            "session_type": 1,
            "session_data": 1,
            docs.APPLICATION_NAME_FIELD: 1,
            KEY_ID_FIELD: 1,
        }
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, projection)
        if not document:
            return None
        self._remember_key(session_id, document.get(KEY_ID_FIELD))
        stored = document.get(docs.APPLICATION_NAME_FIELD)
        if self.application_name is not None and stored is not None and stored != self.application_name:
            logger.warning(
                "session_id=<%s> | application_name=<%s> | stored_application_name=<%s> | "
                "session was created by another application; its application_name is kept",
                session_id,
                self.application_name,
                stored,
            )
        return docs.session_from_document(document)

    def get_application_name(self, session_id: str) -> str | None:
        """Return the ``application_name`` the session was created with (one find).

        None when the session has none (created by an earlier version or without a name) or does not exist.
        """
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {docs.APPLICATION_NAME_FIELD: 1})
        name = (document or {}).get(docs.APPLICATION_NAME_FIELD)
        return name if isinstance(name, str) else None

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session and everything in it, its message documents and GridFS files included.

        The session document goes first (readers stop seeing the session at once); then its message
        documents and files (two commands, four when it has files in GridFS). An encrypted session's data key
        stays in the key vault (backups still need it): `erase_session_keys` deletes it.

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
            self._session_keys.pop(session_id, None)

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
        stored = self._seal_agent_data(session_id, data)
        fields = {f"{path}.agent_data": stored, f"{path}.created_at": now, f"{path}.updated_at": now}
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
        data = self._cipher.open_fields(session_id, data)
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
        data = self._changed_agent_fields(session_id, agent_id, data)
        if not data:
            logger.debug("session_id=<%s> | agent_id=<%s> | agent unchanged, nothing written", session_id, agent_id)
            return
        query, update = _agent_update(session_id, agent_id, self._seal_agent_data(session_id, data))
        result = self._update(session_id, query, update)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        self._remember(session_id, agent_id, data, merge=True)

    def _changed_agent_fields(self, session_id: str, agent_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """The fields of ``data`` whose stored form differs from the last one read or written; {} when none does."""
        with self._lock:
            known = self._known_agent_data.get((session_id, agent_id))
        if known is not None:
            data = {
                key: value
                for key, value in data.items()
                if key == "updated_at" or known.get(key) is None or known[key] != _stored_form(value)
            }
        return data if any(key != "updated_at" for key in data) else {}

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
        element = self._seal_element(session_id, element)
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
        self._touch(session_id)

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
        if element is None:
            return None
        return docs.session_message_from(self._cipher.open_element(session_id, element))

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Rewrite one message's content (redaction), keeping its ``created_at``.

        Raises:
            SessionNotFoundError: No such session, agent or message.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        element = self._seal_element(session_id, docs.message_document(session_message))
        if not self._write_message(
            session_id, agent_id, lambda layout: layout.update(session_id, agent_id, message_id, element)
        ):
            raise SessionNotFoundError(f"Message {message_id} does not exist")

    def record_redaction(
        self, session_id: str, agent_id: str, session_message: SessionMessage, guardrail_event: Mapping[str, Any]
    ) -> None:
        """Rewrite a redacted message with its ``guardrail_event``, and count the event in ``guardrail_summary``.

        Embedded: one update of the session document does both. Collection: the message document's update,
        then one update of the session document (which also moves its expiry). ``guardrail_summary`` stays
        bounded: ``$inc`` counters and a ``$push`` that keeps the latest events (see ``_guardrails``).

        Raises:
            SessionNotFoundError: No such session, agent or message.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        message_id = _check_message_id(session_message.message_id)
        element = self._seal_element(session_id, docs.message_document(session_message))
        fields = _extra_fields({_guardrails.GUARDRAIL_EVENT_FIELD: dict(guardrail_event)})
        summary = _guardrails.summary_update(agent_id, message_id, guardrail_event)
        if self._layout(session_id, agent_id) != docs.COLLECTION:
            if self._inline.update(session_id, agent_id, message_id, element, fields, session_update=summary):
                return
            storage = self._inline.storage(session_id, agent_id)  # SessionNotFoundError: no session or agent
            self._learn(session_id, agent_id, storage)
            if storage != docs.COLLECTION:
                raise SessionNotFoundError(f"Message {message_id} does not exist")
        if not self._collection.update(session_id, agent_id, message_id, element, fields):
            raise SessionNotFoundError(f"Message {message_id} does not exist")
        self._update(session_id, {"_id": session_id}, {**summary, "$set": {"updated_at": docs.utc_now()}})

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
        page = self._page(session_id, agent_id, limit, offset)
        return [docs.session_message_from(self._cipher.open_element(session_id, element)) for element in page]

    def _page(self, session_id: str, agent_id: str, limit: int | None, offset: int) -> list[dict[str, Any]]:
        """A page of an agent's stored elements from its layout (one command; two when it was just promoted)."""
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        if limit is not None and limit <= 0:
            return []
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            return self._collection.page(session_id, agent_id, limit, offset)
        found = self._inline.page(session_id, agent_id, limit, offset)
        self._learn(session_id, agent_id, found.storage)
        if found.storage == docs.COLLECTION:
            return self._collection.page(session_id, agent_id, limit, offset)
        return found.elements

    def _write_message(self, session_id: str, agent_id: str, write: Callable[[Any], bool]) -> bool:
        """Run a message write in the agent's layout; on a miss in the embedded one, re-read the marker once."""
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            return self._write_collection(session_id, write)
        if write(self._inline):
            return True
        try:
            storage = self._inline.storage(session_id, agent_id)
        except SessionNotFoundError:
            return False
        self._learn(session_id, agent_id, storage)
        return storage == docs.COLLECTION and self._write_collection(session_id, write)

    def _write_collection(self, session_id: str, write: Callable[[Any], bool]) -> bool:
        """Run a message write in the collection layout, then move the session's expiry if it wrote."""
        written = write(self._collection)
        if written:
            self._touch(session_id)
        return written

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

    # ----------------------------------------------------------------- reading messages (viewers, exports)

    def list_message_documents(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """List an agent's messages as stored, in ``message_id`` order, whatever their layout.

        Each dict is a ``SessionMessage``'s fields (``message_id``, ``message``, ``redact_message``,
        ``created_at``, ``updated_at``; ``message`` and ``redact_message`` decoded to what was written) plus
        the extra fields stored with it, such as the manager's ``event_loop_metrics``. Costs what
        `list_messages` costs: one command (two the first time an agent is read after its promotion).

        Args:
            session_id: The agent's session.
            agent_id: The agent.
            limit: At most this many messages; None: all of them.
            offset: Skip the first ``offset`` messages. In the collection layout this means ``message_id >=
                offset`` (strands numbers an agent's messages 0, 1, 2, ...).

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        page = self._page(session_id, agent_id, limit, offset)
        return [docs.decoded_element(self._cipher.open_element(session_id, element)) for element in page]

    def latest_message_document(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return an agent's message with the highest ``message_id``, as `list_message_documents` shows it.

        Only that message is shipped: one command (two for an agent in the collection layout that this
        repository has not read yet).

        Returns:
            The message, or None when the agent has no messages.

        Raises:
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        element: dict[str, Any] | None = None
        if self._layout(session_id, agent_id) == docs.COLLECTION:
            element = self._collection.latest(session_id, agent_id)
        else:
            found = self._inline.latest(session_id, agent_id)
            self._learn(session_id, agent_id, found.storage)
            if found.storage == docs.COLLECTION:
                element = self._collection.latest(session_id, agent_id)
            elif found.elements:
                element = found.elements[-1]
        return docs.decoded_element(self._cipher.open_element(session_id, element)) if element is not None else None

    def session_messages(self, session_id: str) -> dict[str, list[dict[str, Any]]]:
        """Return every agent's messages, by agent id, each list as `list_message_documents` gives it.

        For a whole-session view (a timeline, an export): one aggregate reads the session document's
        embedded messages and each agent's layout marker, and, only when an agent keeps its messages in
        the collection layout, one find reads theirs from ``<collection>.messages`` (a message stored in
        GridFS adds its own reads). Each agent is read from the one place its marker names, so a
        promotion running meanwhile shows every message exactly once.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        agents = self._inline.session_agents(session_id)
        if agents is None:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        moved = [agent_id for agent_id, found in agents.items() if found.storage == docs.COLLECTION]
        collected = self._collection.session_elements(session_id, moved) if moved else {}
        return {
            agent_id: [
                docs.decoded_element(self._cipher.open_element(session_id, element))
                for element in (collected[agent_id] if found.storage == docs.COLLECTION else found.elements)
            ]
            for agent_id, found in agents.items()
        }

    def count_messages(
        self,
        session_ids: Sequence[str],
        agent_counts: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> dict[str, dict[str, int]]:
        """Count the messages of each agent of some sessions (a list page), whatever their layout.

        One aggregate counts the embedded messages with ``$size`` (nothing is shipped but the counts); one
        ``$group`` on ``<collection>.messages``, served by its index, counts the collection layout's, and
        is sent only when one of the sessions has an agent in that layout.

        A reader that already runs an aggregation over these session documents can put
        `agent_message_counts_expression` in its ``$project`` and pass what it produced as ``agent_counts``:
        the first aggregate is then not sent, so a page of sessions with embedded agents only costs no
        command here.

        Args:
            session_ids: The sessions to count.
            agent_counts: By session id, what `agent_message_counts_expression` evaluated to for that
                session document (any subset of ``session_ids``; the others are read).

        Returns:
            ``{session_id: {agent_id: count}}`` for the sessions that exist.
        """
        if isinstance(session_ids, str):
            raise TypeError("session_ids must be a list of session ids, not one string")
        for session_id in session_ids:
            docs.validate_ids(session_id=session_id)
        ids = list(dict.fromkeys(session_ids))
        given = dict(agent_counts or {})
        missing = [session_id for session_id in ids if session_id not in given]
        if missing:
            given.update(self._inline.agent_counts(missing))
        counts: dict[str, dict[str, int]] = {}
        moved: list[tuple[str, str]] = []
        for session_id in ids:
            if session_id not in given:
                continue
            counts[session_id] = {}
            for agent in given[session_id]:
                agent_id = docs.unescape_key(str(agent.get("key")))
                if agent.get(docs.MESSAGE_STORAGE_FIELD) == docs.COLLECTION:
                    moved.append((session_id, agent_id))
                counts[session_id][agent_id] = int(agent.get("embedded_messages") or 0)
        if moved:
            collected = self._collection.counts(dict.fromkeys(session_id for session_id, _ in moved))
            for session_id, agent_id in moved:
                counts[session_id][agent_id] = collected.get((session_id, agent_id), 0)
        return counts

    @staticmethod
    def agent_message_counts_expression() -> dict[str, Any]:
        """Return an aggregation expression that gives, per agent of a session document, what `count_messages` needs.

        Put it in a ``$project`` over session documents (``{"$project": {"agents": ...}}``) and pass the
        values it produced, by session id, to `count_messages` as ``agent_counts``: embedded messages are
        counted by MongoDB in that same aggregation (``$size``; no message is shipped). The value is a
        list of small documents, one per agent, whose shape belongs to the library.
        """
        return message_counts_expression()

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

    # ----------------------------------------------------------------- data lifecycle

    def hold_session(self, session_id: str) -> None:
        """Put a session under legal hold: it loses its ``expires_at`` and no later write sets one.

        One update (``$set legal_hold``, ``$unset expires_at``); the hold lasts until `release_session`.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        update = {"$set": {docs.LEGAL_HOLD_FIELD: True}, "$unset": {docs.EXPIRES_AT_FIELD: ""}}
        with self._errors(session_id, update):
            result = self.collection.update_one({"_id": session_id}, update)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        logger.debug("session_id=<%s> | session put under legal hold", session_id)

    def release_session(self, session_id: str) -> None:
        """Lift a session's legal hold; with ``ttl_hours`` it expires that long from now (one update).

        Without ``ttl_hours`` the session gets no expiry back until a repository with one writes to it.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id)
        update: dict[str, Any] = {"$unset": {docs.LEGAL_HOLD_FIELD: ""}}
        if self._ttl is not None:
            update["$set"] = {docs.EXPIRES_AT_FIELD: docs.utc_now() + self._ttl}
        with self._errors(session_id, update):
            result = self.collection.update_one({"_id": session_id}, update)
        if result.matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        logger.debug("session_id=<%s> | legal hold released", session_id)

    def delete_orphaned_messages(self, older_than: timedelta = ORPHAN_GRACE, batch_size: int = 1000) -> dict[str, int]:
        """Delete the message documents and GridFS files whose session document no longer exists.

        MongoDB's TTL monitor deletes expired session documents (about once a minute); their messages in
        ``<collection>.messages`` and GridFS stay until this sweep: schedule it (a cron job running
        ``mongodb-session-manager sessions prune --orphans``, for example). Deleting a session with
        `delete_session` removes its messages at once and needs no sweep.

        Index-served and batched: the distinct session ids of the messages (and of the files) are walked
        in index order, ``batch_size`` at a time, each batch checked with one ``$in`` find on the session
        collection's ``_id``.

        Args:
            older_than: Only messages stored (files uploaded) at least this long ago go, so that a writer
                that stores messages before their session document is never swept mid-way.
            batch_size: Session ids checked per query.

        Returns:
            ``{"sessions": ..., "messages": ..., "files": ...}``: the orphaned session ids found and the
            message documents and files deleted.

        Raises:
            ValueError: ``batch_size`` is not a positive int or ``older_than`` is not a ``timedelta``.
            StorageUnavailableError: MongoDB is unreachable.
        """
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size=<{batch_size!r}> | batch_size must be a positive int")
        if not isinstance(older_than, timedelta):
            raise ValueError(f"older_than=<{older_than!r}> | older_than must be a datetime.timedelta")
        with self._errors(None):
            removed = self._collection.delete_orphans(self.collection, docs.utc_now() - older_than, batch_size)
        logger.debug(
            "collection=<%s> | sessions=<%d> | messages=<%d> | files=<%d> | orphaned messages deleted",
            self.collection.full_name,
            removed["sessions"],
            removed["messages"],
            removed["files"],
        )
        return removed

    def prune_messages(self, session_id: str, agent_id: str, keep_last: int) -> int:
        """Delete an agent's oldest messages, keeping its ``keep_last`` newest, in either layout.

        Message ids are never renumbered: the agent's ``pruned_before`` records the first kept id, and
        `list_messages` keeps reading ``offset`` as a message id, so strands' restore (which pages from
        its conversation manager's ``removed_message_count``) gets exactly the kept messages that follow
        it. Appends running meanwhile are never touched (they have higher ids).

        Cost: embedded, one aggregate and one update; collection layout, one find, one ``delete_many``,
        one find of the GridFS files (two deletes more if there are any) and one update of the session
        document.

        Returns:
            How many messages were deleted.

        Raises:
            ValueError: ``keep_last`` is not a positive int (to drop every message, delete the session).
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        if type(keep_last) is not int or keep_last < 1:
            raise ValueError(
                f"keep_last=<{keep_last!r}> | keep_last must be a positive int (delete the session to drop everything)"
            )
        removed: int | None = None
        if self._layout(session_id, agent_id) != docs.COLLECTION:
            removed = self._inline.prune(session_id, agent_id, keep_last)
        if removed is None:
            self._learn(session_id, agent_id, docs.COLLECTION)
            removed = self._prune_collection(session_id, agent_id, keep_last)
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | keep_last=<%d> | removed=<%d> | messages pruned",
            session_id,
            agent_id,
            keep_last,
            removed,
        )
        return removed

    def _prune_collection(self, session_id: str, agent_id: str, keep_last: int) -> int:
        """Prune a collection-layout agent and record its first kept id on the session document."""
        deleted, cutoff = self._collection.prune(session_id, agent_id, keep_last)
        path = docs.agent_path(agent_id)
        now = docs.utc_now()
        update: dict[str, Any] = {"$set": {"updated_at": now, f"{path}.updated_at": now}}
        if cutoff is not None:
            update["$max"] = {f"{path}.{docs.PRUNED_BEFORE_FIELD}": cutoff}
        elif deleted == 0:
            self._inline.storage(session_id, agent_id)  # nothing to prune: still say when there is no such agent
            return 0
        query = {"_id": session_id, f"{path}.agent_data": {"$exists": True}}
        if self._update(session_id, query, update).matched_count == 0:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        return deleted

    def list_sessions(
        self,
        prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
        cursor: str | None = None,
        application_name: str | None = None,
    ) -> dict[str, Any]:
        """List sessions newest first (by ``created_at``, then id), one page per call, with keyset paging.

        A page is ONE aggregate walking the ``created_at_1__id_1`` index newest first (with an
        ``application_name`` filter, the ``application_name_1_created_at_1`` index; with a ``metadata``
        filter MongoDB may pick that field's index instead), summaries included: message
        counts of embedded agents come from ``$size`` and those of collection-layout agents from a
        ``$lookup`` grouped by agent on ``<collection>.messages`` (served by its unique index). Pass the
        returned ``next_cursor`` back as ``cursor`` for the next page: sessions created meanwhile (newer)
        never shift a page, and no session listed before is repeated or skipped.

        Args:
            prefix: Only sessions whose id starts with this (an anchored ``_id`` range, never a regex).
            created_after: Only sessions created at or after this time.
            created_before: Only sessions created before this time.
            updated_after: Only sessions last written at or after this time.
            updated_before: Only sessions last written before this time.
            metadata: Equality on metadata fields; each must be indexed (``metadata_fields`` of this
                repository, or an existing index of the collection on ``metadata.<field>``).
            limit: Sessions per page, 1 to `MAX_LIST_LIMIT`.
            cursor: The ``next_cursor`` of the previous page (opaque).
            application_name: Only sessions created with this ``application_name`` (equality).

        Returns:
            ``{"sessions": [summary, ...], "next_cursor": str | None}``, each summary ``{"session_id",
            "created_at", "updated_at", "application_name": str | None, "message_counts": {agent_id: int},
            "metadata": {...}, "expires_at": datetime | None, "legal_hold": bool}``; ``next_cursor`` is None on
            the last page.

        Raises:
            ValueError: A filter, the limit or the cursor is invalid (nothing was sent); an invalid
                ``application_name`` raises `InvalidApplicationNameError`, a ``ValueError``.
            StorageUnavailableError: MongoDB is unreachable.
        """
        if type(limit) is not int or not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit=<{limit!r}> | limit must be an int from 1 to {MAX_LIST_LIMIT}")
        query = self._listing_query(prefix, created_after, created_before, updated_after, updated_before, metadata)
        application_name = docs.check_application_name(application_name)
        if application_name is not None:
            query[docs.APPLICATION_NAME_FIELD] = application_name
        if cursor is not None:
            last_created, last_id = _decode_cursor(cursor)
            query["created_at"]["$lte"] = last_created
            query["$or"] = [{"created_at": {"$lt": last_created}}, {"_id": {"$lt": last_id}}]
        messages = docs.messages_collection_name(self.collection.name)
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$sort": {"created_at": DESCENDING, "_id": DESCENDING}},
            {"$limit": limit + 1},
            {
                "$project": {
                    "created_at": 1,
                    "updated_at": 1,
                    docs.APPLICATION_NAME_FIELD: 1,
                    "metadata": 1,
                    docs.EXPIRES_AT_FIELD: 1,
                    docs.LEGAL_HOLD_FIELD: 1,
                    "agents": message_counts_expression(),
                }
            },
            {
                "$lookup": {
                    "from": messages,
                    "let": {"session_id": "$_id"},
                    "pipeline": [
                        {"$match": {"$expr": {"$eq": ["$session_id", "$$session_id"]}}},
                        {"$group": {"_id": "$agent_id", "count": {"$sum": 1}}},
                    ],
                    "as": "collected",
                }
            },
        ]
        # newest first along the created_at index, or the application's (no in-memory sort); a metadata
        # filter has its own index
        hint = docs.APPLICATION_INDEX if application_name is not None else _LISTING_INDEX
        with self._errors(None):
            if metadata:
                rows = list(self.collection.aggregate(pipeline))
            else:
                try:
                    rows = list(self.collection.aggregate(pipeline, hint=hint))
                except OperationFailure:  # a collection created without the index
                    rows = list(self.collection.aggregate(pipeline))
        page = rows[:limit]
        next_cursor = _encode_cursor(page[-1]["created_at"], page[-1]["_id"]) if len(rows) > limit else None
        return {"sessions": [_summary(row) for row in page], "next_cursor": next_cursor}

    def _listing_query(
        self,
        prefix: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
        updated_after: datetime | None,
        updated_before: datetime | None,
        metadata: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The ``$match`` of `list_sessions` (the ``created_at`` range is always bounded: index bounds).

        Raises:
            ValueError: A filter is invalid.
        """
        created: dict[str, Any] = {"$lte": _LAST_DATE}
        query: dict[str, Any] = {"created_at": created}
        if created_after is not None:
            created["$gte"] = _check_date("created_after", created_after)
        if created_before is not None:
            created["$lt"] = _check_date("created_before", created_before)
        updated: dict[str, Any] = {}
        if updated_after is not None:
            updated["$gte"] = _check_date("updated_after", updated_after)
        if updated_before is not None:
            updated["$lt"] = _check_date("updated_before", updated_before)
        if updated:
            query["updated_at"] = updated
        if prefix is not None:
            if not isinstance(prefix, str):
                raise ValueError(f"prefix=<{prefix!r}> | prefix must be a string")
            if prefix:
                query["_id"] = _prefix_range(prefix)
        for key, value in self._metadata_filter(metadata).items():
            query[key] = value
        return query

    def _metadata_filter(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """Equality terms on indexed metadata fields (the collection's indexes are read once, if needed).

        Raises:
            ValueError: ``metadata`` is not a dict or names a field without an index.
        """
        if not metadata:
            return {}
        if not isinstance(metadata, Mapping):
            raise ValueError(f"metadata=<{metadata!r}> | metadata must be a dict of field: value")
        terms: dict[str, Any] = {}
        for key, value in metadata.items():
            try:
                docs.validate_metadata_key(key)
            except ValueError as error:
                raise ValueError(f"metadata=<{key!r}> | {error}") from error
            if key not in self.metadata_fields and key not in self._indexed_metadata_fields():
                raise ValueError(
                    f"metadata=<{key!r}> | only indexed metadata fields can be filtered on "
                    f"(indexed: {sorted({*self.metadata_fields, *self._indexed_metadata_fields()})}); "
                    "add the field to metadata_fields"
                )
            matches, stored = self._cipher.metadata_query_value(key, docs.encode_value(value))
            terms[f"metadata.{key}"] = stored if matches else {"$in": []}
        return terms

    def _indexed_metadata_fields(self) -> set[str]:
        """Metadata fields with an index on the collection (one ``listIndexes``, then remembered)."""
        if self._indexed_metadata is None:
            with self._errors(None):
                indexes = list(self.collection.list_indexes())
            self._indexed_metadata = {
                str(next(iter(index["key"]))).removeprefix("metadata.")
                for index in indexes
                if str(next(iter(index["key"]))).startswith("metadata.")
            }
        return self._indexed_metadata

    def export_sessions(
        self,
        out: "transfer.Destination",
        session_ids: Sequence[str] | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
        **list_filters: Any,
    ) -> dict[str, Any]:
        """Write sessions as JSON Lines in canonical MongoDB Extended JSON, one session per line, streaming.

        `mongodb_session_manager.export_sessions` on this repository: see it for the arguments, the
        format and the costs.

        Returns:
            ``{"exported": sessions written, "messages": messages written}``.
        """
        return transfer.export_sessions(self, out, session_ids, on_progress, **list_filters)

    def import_sessions(self, source: "transfer.Source", on_conflict: str = "skip") -> dict[str, Any]:
        """Import sessions written by `export_sessions` into this repository's collection, crash-safe.

        `mongodb_session_manager.import_sessions` on this repository: see it for where messages go,
        ``on_conflict`` (``"skip"``, ``"replace"``, ``"fail"``) and interrupted imports.

        Returns:
            ``{"read", "imported", "skipped", "replaced", "failed", "failures"}``.
        """
        return transfer.import_sessions(self, source, on_conflict)

    # ----------------------------------------------------------------- multi-agent

    def create_multi_agent(self, session_id: str, multi_agent: "MultiAgentBase", **kwargs: Any) -> None:
        """Store a multi-agent's (Graph, Swarm) serialized state in the session.

        Raises:
            SessionNotFoundError: No such session.
        """
        docs.validate_ids(session_id=session_id, multi_agent_id=multi_agent.id)
        now = docs.utc_now()
        state = self._seal(session_id, docs.encode_value(multi_agent.serialize_state()))
        entry = {"state": state, "created_at": now, "updated_at": now}
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
        return docs.decode_value(self._cipher.open(session_id, state)) if state is not None else None

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
                f"{path}.state": self._seal(session_id, docs.encode_value(multi_agent.serialize_state())),
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
        values = [docs.encode_value(value) for value in metadata.values()]
        if self._cipher.encrypts_metadata:
            key_id = self._session_key(session_id)
            values = [
                self._cipher.seal_metadata(session_id, key_id, key, value)
                for key, value in zip(metadata, values, strict=True)
            ]
        updates = dict(zip(paths, values, strict=True))
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
        stored = document.get("metadata", {})
        return {"metadata": {key: docs.decode_value(self._cipher.open_tree(session_id, stored[key])) for key in stored}}

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
        key_id = self._session_key(session_id)
        stored = self._cipher.seal_feedback(session_id, key_id, entry) if key_id is not None else entry
        update = {"$push": {"feedbacks": stored}, "$set": {"updated_at": now}}
        if self._update(session_id, {"_id": session_id}, update).matched_count == 0:
            raise SessionNotFoundError(f"Session {session_id} does not exist")
        return docs.decode_value(entry)

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """Return the session's feedback entries in the order they were added."""
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"feedbacks": 1})
        entries = document.get("feedbacks", []) if document else []
        return [docs.decode_value(self._cipher.open_tree(session_id, entry)) for entry in entries]

    def get_viewer_password(self, session_id: str) -> str | None:
        """Return the session's Session Viewer password, or None when the session does not exist."""
        docs.validate_ids(session_id=session_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {"session_viewer_password": 1})
        return self._cipher.open(session_id, document.get("session_viewer_password")) if document else None

    # ----------------------------------------------------------------- agent config

    def get_agent_config(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """Return ``{agent_id, model, system_prompt, prompt_metadata}`` for one agent, or None.

        Every key is always there; a field never stored is None.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, _config_projection(agent_id))
        data = docs.get_path(document, f"{docs.agent_path(agent_id)}.agent_data")
        return _config(agent_id, self._cipher.open_fields(session_id, data)) if data is not None else None

    def update_agent_config(
        self,
        session_id: str,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Set an agent's stored model, system prompt and/or prompt metadata; return its resulting config.

        ``None`` leaves a field unchanged; ``prompt_metadata`` replaces the stored one (see
        `set_prompt_metadata`). One command: an update that returns the agent's config as stored after it
        (``findAndModify``), or, when every value given equals what this repository last read or wrote,
        just the read.

        Returns:
            ``{agent_id, model, system_prompt, prompt_metadata}`` as stored after the call.

        Raises:
            TypeError: ``prompt_metadata`` is not a dict (nothing was sent).
            SessionDataError: ``prompt_metadata`` cannot be stored in MongoDB (nothing was sent).
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        config = _config_fields(
            {"model": model, "system_prompt": system_prompt, docs.PROMPT_METADATA_FIELD: prompt_metadata}
        )
        changed = self._changed_agent_fields(session_id, agent_id, config)
        with self._errors(session_id):
            if changed:
                query, update = _agent_update(session_id, agent_id, self._seal_agent_data(session_id, changed))
                document = self._find_and_update(session_id, query, update, _config_projection(agent_id))
            else:
                document = self.collection.find_one({"_id": session_id}, _config_projection(agent_id))
        data = docs.get_path(document, f"{docs.agent_path(agent_id)}.agent_data")
        if data is None:
            raise SessionNotFoundError(f"Agent {agent_id} in session {session_id} does not exist")
        if changed:
            self._remember(session_id, agent_id, changed, merge=True)
        return _config(agent_id, self._cipher.open_fields(session_id, data))

    def set_prompt_metadata(self, session_id: str, agent_id: str, metadata: Mapping[str, Any]) -> None:
        """Store what the application says about an agent's prompt (id, name, version, temperature, ...).

        The dict replaces the agent's previous prompt metadata (``agent_data.prompt_metadata``, stored
        through the value codec, so any keys round-trip); `get_agent_config`, `list_agents` and
        `update_agent_config` return it under ``prompt_metadata``. One update; the same metadata again
        costs no command.

        Raises:
            TypeError: ``metadata`` is not a dict (nothing was sent).
            SessionDataError: A key is not a string or a value cannot be stored in MongoDB (nothing was sent).
            SessionNotFoundError: No such session or agent.
        """
        docs.validate_ids(session_id=session_id, agent_id=agent_id)
        value = docs.prompt_metadata_value(metadata)
        self._write_agent(session_id, agent_id, {docs.PROMPT_METADATA_FIELD: value})
        logger.debug("session_id=<%s> | agent_id=<%s> | prompt metadata set", session_id, agent_id)

    def list_agents(self, session_id: str) -> list[dict[str, Any]]:
        """Return ``{agent_id, model, system_prompt, prompt_metadata}`` for every agent of the session, no messages."""
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
                    docs.PROMPT_METADATA_FIELD: f"$agents.v.agent_data.{docs.PROMPT_METADATA_FIELD}",
                }
            },
        ]
        with self._errors(session_id):
            rows = list(self.collection.aggregate(pipeline))
        return [_config(docs.unescape_key(row["key"]), self._cipher.open_fields(session_id, row)) for row in rows]

    # ----------------------------------------------------------------- encryption

    def erase_session_keys(self, session_id: str) -> int:
        """Delete the session's data keys from the key vault: its encrypted fields become unreadable for good.

        Crypto-shredding: the ciphertext left in the collections, in GridFS, in exports and in backups can no
        longer be decrypted by anyone. The session's own key (``"session:<session_id>"``) and the key
        ``MongoDBStorage`` uses for it (``"storage:<session_id>"``) go in one ``delete``; the session's
        deterministically encrypted metadata fields, which use keys shared by every session, are removed from its
        document (one update). Idempotent. Afterwards reads of the session's encrypted fields and writes to it
        raise `SessionKeyErasedError` at once in this process; another process that fetched the key before
        may use it until its key cache expires (``EncryptionSettings.key_cache_seconds``), and a process that
        never fetched it fails at once. Listing the session and its clear fields keep working.

        Returns:
            How many data keys were deleted (0 when they already were, or the session was never encrypted).

        Raises:
            ValueError: This repository has no ``encryption`` settings (it does not know the key vault).
            StorageUnavailableError: MongoDB is unreachable.
        """
        docs.validate_ids(session_id=session_id)
        sealer = self._cipher.sealer
        if sealer is None:
            raise ValueError("erase_session_keys needs a repository with encryption=EncryptionSettings(...)")
        deleted = sealer.erase(session_id)
        fields = self._cipher.deterministic_metadata_fields
        if fields:
            unset = {f"metadata.{name}": "" for name in fields}
            with self._errors(session_id):
                self.collection.update_one({"_id": session_id, KEY_ID_FIELD: {"$exists": True}}, {"$unset": unset})
        logger.debug("session_id=<%s> | keys=<%d> | session keys erased", session_id, deleted)
        return deleted

    def _remember_key(self, session_id: str, key_id: Any) -> None:
        """Record a session's data key id as read or written (None: a clear session)."""
        if self._cipher.sealer is not None:
            with self._lock:
                self._session_keys[session_id] = key_id if isinstance(key_id, Binary) else None

    def _session_key(self, session_id: str) -> Binary | None:
        """The data key id to encrypt this session's writes with; None when they stay clear.

        None without ``encryption`` settings or for a session written without encryption. Known from the
        session's creation or `read_session`; otherwise read once (one small find), then remembered.
        """
        if self._cipher.sealer is None:
            return None
        with self._lock:
            if session_id in self._session_keys:
                return self._session_keys[session_id]
        with self._errors(session_id):
            document = self.collection.find_one({"_id": session_id}, {KEY_ID_FIELD: 1})
        if document is None:  # no such session: the write itself says so
            return None
        key_id = document.get(KEY_ID_FIELD)
        self._remember_key(session_id, key_id)
        return key_id if isinstance(key_id, Binary) else None

    def _seal(self, session_id: str, value: Any) -> Any:
        """A stored-form value, encrypted when the session is."""
        key_id = self._session_key(session_id)
        return self._cipher.seal(session_id, key_id, value) if key_id is not None else value

    def _seal_element(self, session_id: str, element: dict[str, Any]) -> dict[str, Any]:
        """A message element with its content encrypted when the session is."""
        key_id = self._session_key(session_id)
        return self._cipher.seal_element(session_id, key_id, element) if key_id is not None else element

    def _seal_agent_data(self, session_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """``agent_data`` fields with the states and system prompt encrypted when the session is."""
        if self._cipher.sealer is None or not any(name in data for name in AGENT_SEALED_FIELDS):
            return data
        key_id = self._session_key(session_id)
        return self._cipher.seal_agent_data(session_id, key_id, data) if key_id is not None else data

    # ----------------------------------------------------------------- plumbing

    def _update(
        self,
        session_id: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        array_filters: list[Mapping[str, Any]] | None = None,
    ) -> UpdateResult:
        """Run one ``update_one`` on a session document with translated errors, moving its expiry.

        With a ttl, a session under legal hold costs a second command (see `documents.expiring_updates`).
        """
        with self._errors(session_id, update):
            for variant_query, variant_update in docs.expiring_updates(query, update, self._ttl):
                result = self.collection.update_one(variant_query, variant_update, array_filters=array_filters)
                if result.matched_count:
                    break
            return result

    def _find_and_update(
        self, session_id: str, query: Mapping[str, Any], update: Mapping[str, Any], projection: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Run one ``findAndModify`` on a session document, moving its expiry; return it as updated (projected).

        With a ttl, a session under legal hold costs a second command (see `documents.expiring_updates`).
        """
        document = None
        with self._errors(session_id, update):
            for variant_query, variant_update in docs.expiring_updates(query, update, self._ttl):
                document = self.collection.find_one_and_update(
                    variant_query, variant_update, projection=projection, return_document=ReturnDocument.AFTER
                )
                if document is not None:
                    break
        return document

    def _touch(self, session_id: str) -> None:
        """Move the session's expiry after a write outside its document (one update; nothing without a ttl)."""
        if self._ttl is None:
            return
        query = {"_id": session_id, docs.LEGAL_HOLD_FIELD: {"$ne": True}}
        update = {"$set": {docs.EXPIRES_AT_FIELD: docs.utc_now() + self._ttl}}
        with self._errors(session_id, update):
            self.collection.update_one(query, update)

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


def _check_date(name: str, value: Any) -> datetime:
    """A listing bound: a ``datetime`` (naive means UTC).

    Raises:
        ValueError: ``value`` is not a ``datetime``.
    """
    if not isinstance(value, datetime):
        raise ValueError(f"{name}=<{value!r}> | {name} must be a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _prefix_range(prefix: str) -> dict[str, str]:
    """The ``_id`` range of the strings starting with ``prefix`` (binary order, as MongoDB compares them)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:  # skip the surrogates, which no stored string holds
            code = 0xE000
        if code <= 0x10FFFF:
            return {"$gte": prefix, "$lt": "".join(chars[:-1]) + chr(code)}
        chars.pop()
    return {"$gte": prefix}


def _encode_cursor(created_at: datetime, session_id: str) -> str:
    """The opaque keyset cursor after a session: base64 of ``[created_at in ms, session id]``."""
    moment = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=UTC)
    millis = (moment - _EPOCH) // timedelta(milliseconds=1)
    return base64.urlsafe_b64encode(json.dumps([millis, session_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> tuple[datetime, str]:
    """Invert `_encode_cursor`.

    Raises:
        ValueError: ``cursor`` is not one `_encode_cursor` made.
    """
    try:
        millis, session_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if type(millis) is not int or not isinstance(session_id, str):
            raise TypeError(type(millis))
        return _EPOCH + timedelta(milliseconds=millis), session_id
    except (TypeError, ValueError, binascii.Error, OverflowError) as error:
        raise ValueError(f"cursor=<{cursor!r}> | not a next_cursor returned by list_sessions") from error


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `MongoDBSessionRepository.list_sessions` item from its aggregate row."""
    collected = {row["_id"]: row["count"] for row in row.get("collected") or []}
    counts: dict[str, int] = {}
    for agent in row.get("agents") or []:
        agent_id = docs.unescape_key(str(agent.get("key")))
        if agent.get(docs.MESSAGE_STORAGE_FIELD) == docs.COLLECTION:
            counts[agent_id] = int(collected.get(agent_id, 0))
        else:
            counts[agent_id] = int(agent.get("embedded_messages") or 0)
    return {
        "session_id": row["_id"],
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
        "application_name": _text_or_none(row.get(docs.APPLICATION_NAME_FIELD)),
        "message_counts": counts,
        "metadata": {
            key: docs.decode_value(value) for key, value in without_ciphertexts(row.get("metadata") or {}).items()
        },
        "expires_at": row.get(docs.EXPIRES_AT_FIELD),
        "legal_hold": row.get(docs.LEGAL_HOLD_FIELD) is True,
    }


def _check_layout(to: Any) -> None:
    if to not in docs.MESSAGE_LAYOUTS:
        raise ValueError(f"to=<{to!r}> | the layout must be one of {list(docs.MESSAGE_LAYOUTS)}")


def _check_message_id(message_id: Any) -> int:
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ValueError(f"message_id=<{message_id!r}> | message id must be an integer")
    return message_id


def _config_fields(agent_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manager-owned config fields to store: known names only, never a ``None`` value.

    ``prompt_metadata`` is checked and encoded (`documents.prompt_metadata_value`).
    """
    config = dict(agent_config or {})
    allowed = (*docs.AGENT_CONFIG_FIELDS, docs.PROMPT_METADATA_FIELD)
    unknown = set(config) - set(allowed)
    if unknown:
        raise ValueError(f"agent_config=<{sorted(unknown)}> | only {list(allowed)} can be set")
    if config.get(docs.PROMPT_METADATA_FIELD) is not None:
        config[docs.PROMPT_METADATA_FIELD] = docs.prompt_metadata_value(config[docs.PROMPT_METADATA_FIELD])
    return {key: value for key, value in config.items() if value is not None}


def _agent_update(session_id: str, agent_id: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (filter, update) that sets ``agent_data`` fields of an existing agent and moves both ``updated_at``."""
    path = docs.agent_path(agent_id)
    now = docs.utc_now()
    updates: dict[str, Any] = {"updated_at": now, f"{path}.updated_at": now}
    updates.update({f"{path}.agent_data.{key}": value for key, value in data.items()})
    return {"_id": session_id, f"{path}.agent_data": {"$exists": True}}, {"$set": updates}


def _config_projection(agent_id: str) -> dict[str, int]:
    """The projection of an agent's config fields in its session document."""
    path = f"{docs.agent_path(agent_id)}.agent_data"
    fields = ("agent_id", *docs.AGENT_CONFIG_FIELDS, docs.PROMPT_METADATA_FIELD)
    return {f"{path}.{key}": 1 for key in fields}


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
    """An agent's config as the API returns it: every key present, None for a field never stored."""
    prompt_metadata = data.get(docs.PROMPT_METADATA_FIELD)
    return {
        "agent_id": data.get("agent_id", agent_id),
        **{key: data.get(key) for key in docs.AGENT_CONFIG_FIELDS},
        docs.PROMPT_METADATA_FIELD: docs.decode_value(prompt_metadata) if prompt_metadata is not None else None,
    }


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _index(path: str) -> IndexModel:
    """An ascending index on ``path``; ``created_at`` also orders by ``_id`` for stable newest-first paging.

    ``expires_at`` is a TTL index: MongoDB deletes a session once its ``expires_at`` date has passed.
    ``application_name`` is `documents.APPLICATION_INDEX`: the name, then ``created_at`` and ``_id`` (one
    application's sessions newest first, paged like the ``created_at`` index, without an in-memory sort).
    """
    if path == docs.APPLICATION_NAME_FIELD:
        keys = [(path, ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
        return IndexModel(keys, name=docs.APPLICATION_INDEX)
    keys = [(path, ASCENDING), ("_id", ASCENDING)] if path == "created_at" else [(path, ASCENDING)]
    options = {"expireAfterSeconds": 0} if path == docs.EXPIRES_AT_FIELD else {}
    return IndexModel(keys, name="_".join(f"{key}_1" for key, _ in keys), **options)
