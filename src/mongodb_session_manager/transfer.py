"""Export and import of whole sessions as JSON Lines in MongoDB Extended JSON.

One line per session::

    {"format": "mongodb-session-manager/session", "version": 1, "session": <session document>}

where ``<session document>`` is the session document as stored (see ``documents.py``), every agent's
messages included in ``agents.<id>.messages`` whatever their layout (messages stored in
``<collection>.messages`` and in GridFS are inlined), and no layout marker. Values are written in
canonical Extended JSON (``bson.json_util``), so bytes, dates, ints and doubles come back exactly.

Export streams: it holds one session at a time, walking the session ids by keyset pages (or the pages
of ``repository.list_sessions`` when filters are given). Import places each session's messages by the
importing repository's layout rules (``message_storage``, ``max_embedded_messages``, the 16 MB
document limit) and is crash-safe and idempotent: a session's message documents (collection layout,
GridFS) are written first and its session document last, as the commit point. A run killed half-way
leaves at most message documents of a session that does not exist yet; the next run clears them
before writing that session again, so re-running the same import converges.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING, Any, TypeAlias

import bson
from bson import json_util
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import documents as docs
from .encryption import KEY_ID_FIELD
from .errors import SessionException, SessionExistsError, SessionNotFoundError, StorageUnavailableError

if TYPE_CHECKING:
    from .collection_messages import CollectionMessages
    from .repository import MongoDBSessionRepository

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "ON_CONFLICT", "export_sessions", "import_sessions"]

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "mongodb-session-manager/session"
"""The ``format`` field of every exported line."""
EXPORT_VERSION = 1
"""The ``version`` field of every exported line; an import refuses lines of a newer version."""
ON_CONFLICT = ("skip", "replace", "fail")
"""What `import_sessions` does with a session that already exists."""

LIST_FILTERS = (
    "prefix",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "metadata",
    "application_name",
)
"""The ``list_sessions`` filters `export_sessions` accepts (it pages itself: no ``limit`` or ``cursor``)."""
PAGE_SIZE = 100
"""Session ids read per page while exporting."""

_WRITE_OPTIONS = json_util.CANONICAL_JSON_OPTIONS
_READ_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True)
_EXIT_AT = os.environ.get("_MSM_TEST_IMPORT_EXIT_AT")
"""Test-only: the import step after which the process exits abruptly (crash-safety tests); read once."""

Source: TypeAlias = str | os.PathLike[str] | IO[str] | Iterable[str | bytes]
"""What `import_sessions` reads: a path, a text stream, or lines."""
Destination: TypeAlias = str | os.PathLike[str] | IO[str]
"""Where `export_sessions` writes: a path or a text stream."""


# ----------------------------------------------------------------- export


def export_sessions(
    repository: MongoDBSessionRepository,
    out: Destination,
    session_ids: Sequence[str] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    *,
    decrypt: bool = False,
    **list_filters: Any,
) -> dict[str, Any]:
    """Write sessions as JSON Lines in canonical MongoDB Extended JSON, one session per line.

    Every agent's messages are included whatever their layout (GridFS payloads inlined), with their
    extra fields such as ``event_loop_metrics``. One session is held in memory at a time. Each session
    costs one read of its document, plus one find when an agent keeps its messages in the collection
    layout (and one read per GridFS file).

    Encrypted sessions are exported as stored: their ciphertexts (BSON binary subtype 6, ``"subType": "06"``
    in the line) and their ``encryption_key_id``, so the file is as safe as the database, and erasing the
    session's keys makes the export unreadable too. `import_sessions` writes them back unchanged: they are
    readable wherever the key vault holds their keys. With ``decrypt`` every ciphertext is replaced by its
    clear value and ``encryption_key_id`` is left out: the line imports as a clear session.

    Args:
        repository: The repository to export from.
        out: A path (the file is created or truncated) or a text stream open for writing.
        session_ids: Export these sessions, in this order. Default: every session of the collection
            (by ``_id``), or those `MongoDBSessionRepository.list_sessions` returns for ``list_filters``.
        on_progress: Called as ``on_progress(done, total)`` after each session; ``total`` is None when
            it is not known in advance (filters).
        decrypt: Export clear values (the repository needs ``encryption`` settings with access to the keys).
        **list_filters: Filters of ``repository.list_sessions`` (``prefix``, ``created_after``,
            ``created_before``, ``updated_after``, ``updated_before``, ``metadata``).

    Returns:
        ``{"exported": sessions written, "messages": messages written}``.

    Raises:
        TypeError: An unknown filter name; nothing was written.
        ValueError: Both ``session_ids`` and filters are given, a filter is invalid, or ``decrypt`` is asked of
            a repository without ``encryption`` settings; nothing was written.
        SessionNotFoundError: A session of ``session_ids`` does not exist; nothing was written.
        EncryptionKeyError: With ``decrypt``: a session's key cannot be used (`SessionKeyErasedError`: it was
            erased); the lines before it were written (a partial file: write to a path through a temporary name).
        StorageUnavailableError: MongoDB is unreachable.
    """
    if decrypt and repository.encryption is None:
        raise ValueError("decrypt=True needs a repository with encryption=EncryptionSettings(...) (the keys)")
    ids, total = _sessions_to_export(repository, session_ids, list_filters)
    summary = {"exported": 0, "messages": 0}
    with ExitStack() as stack:
        stream: IO[str] = (
            stack.enter_context(open(out, "w", encoding="utf-8")) if isinstance(out, str | os.PathLike) else out
        )
        for line in _export_lines(repository, ids, summary, decrypt):
            stream.write(line)
            if on_progress is not None:
                on_progress(summary["exported"], total)
        stream.flush()
    return summary


def export_line(session_document: Mapping[str, Any]) -> str:
    """Return the exported line (newline included) of a session document whose agents hold all their messages."""
    session = json_util.dumps(session_document, json_options=_WRITE_OPTIONS)
    return f'{{"format": "{EXPORT_FORMAT}", "version": {EXPORT_VERSION}, "session": {session}}}\n'


def _sessions_to_export(
    repository: MongoDBSessionRepository, session_ids: Sequence[str] | None, filters: dict[str, Any]
) -> tuple[Iterable[str], int | None]:
    """The ids to export, lazily where possible, and their number when known (checked before any write)."""
    unknown = sorted(set(filters) - set(LIST_FILTERS))
    if unknown:
        raise TypeError(f"filters=<{unknown}> | export_sessions filters are {list(LIST_FILTERS)}")
    if session_ids is not None and filters:
        raise ValueError(f"filters=<{sorted(filters)}> | give session_ids or filters, not both")
    if session_ids is not None:
        if isinstance(session_ids, str):
            raise TypeError("session_ids must be a list of session ids, not one string")
        ids = list(dict.fromkeys(session_ids))
        for session_id in ids:
            docs.validate_ids(session_id=session_id)
        with repository._errors(None):
            found = {row["_id"] for row in repository.collection.find({"_id": {"$in": ids}}, {"_id": 1})}
        missing = [session_id for session_id in ids if session_id not in found]
        if missing:
            raise SessionNotFoundError(f"Unknown session(s): {', '.join(missing)}")
        return ids, len(ids)
    if filters:
        first_page = repository.list_sessions(**filters, limit=PAGE_SIZE)  # validates the filters now
        return _listed_ids(repository, filters, first_page), None
    with repository._errors(None):
        total = repository.collection.count_documents({})
    return _all_ids(repository), total


def _all_ids(repository: MongoDBSessionRepository) -> Iterator[str]:
    """Every session id of the collection in ``_id`` order, by keyset pages (no long-lived cursor)."""
    query: dict[str, Any] = {}
    while True:
        with repository._errors(None):
            page = [
                row["_id"]
                for row in repository.collection.find(query, {"_id": 1}).sort("_id", ASCENDING).limit(PAGE_SIZE)
            ]
        yield from (session_id for session_id in page if isinstance(session_id, str))
        if len(page) < PAGE_SIZE:
            return
        query = {"_id": {"$gt": page[-1]}}


def _listed_ids(repository: MongoDBSessionRepository, filters: dict[str, Any], page: dict[str, Any]) -> Iterator[str]:
    """The ids `list_sessions` returns for ``filters``, page after page."""
    while True:
        yield from (summary["session_id"] for summary in page["sessions"])
        if not page.get("next_cursor"):
            return
        page = repository.list_sessions(**filters, limit=PAGE_SIZE, cursor=page["next_cursor"])


def _export_lines(
    repository: MongoDBSessionRepository, ids: Iterable[str], summary: dict[str, int], decrypt: bool = False
) -> Iterator[str]:
    """One exported line per session that still exists (a session deleted meanwhile is left out)."""
    for session_id in ids:
        document = _complete_session(repository, session_id)
        if document is None:
            logger.debug("session_id=<%s> | session deleted during the export, left out", session_id)
            continue
        if decrypt:
            document = _decrypted(repository, session_id, document)
        summary["exported"] += 1
        summary["messages"] += sum(len(agent["messages"]) for agent in document.get("agents", {}).values())
        yield export_line(document)


def _decrypted(repository: MongoDBSessionRepository, session_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """The session document with every ciphertext decrypted and no ``encryption_key_id``: a clear session."""
    clear: dict[str, Any] = repository._cipher.open_tree(session_id, document)
    clear.pop(KEY_ID_FIELD, None)
    return clear


def _complete_session(repository: MongoDBSessionRepository, session_id: str) -> dict[str, Any] | None:
    """The session document with every agent's stored messages in ``agents.<id>.messages``, or None.

    One find reads the document (its embedded messages and layout markers at one moment); the agents
    whose marker names the collection layout are then read from there (a promotion commits after its
    copy, so every message is seen exactly once).
    """
    with repository._errors(session_id):
        document = repository.collection.find_one({"_id": session_id})
    if document is None:
        return None
    agents: dict[str, Any] = document.get("agents") or {}
    moved = {key: docs.unescape_key(key) for key, agent in agents.items() if _is_collection(agent)}
    collected = _layout(repository).session_elements(session_id, moved.values()) if moved else {}
    for key, agent in agents.items():
        elements = collected[moved[key]] if key in moved else agent.get("messages") or []
        agent.pop(docs.MESSAGE_STORAGE_FIELD, None)
        agent["messages"] = elements
    return document


# ----------------------------------------------------------------- import


def import_sessions(repository: MongoDBSessionRepository, source: Source, on_conflict: str = "skip") -> dict[str, Any]:
    """Import sessions written by `export_sessions` into the repository's database and collection.

    Each agent's messages go where the repository's own rules put them: the collection layout when it
    was built with ``message_storage="collection"``, when the agent has more than
    ``max_embedded_messages`` messages, or when the session document would pass 16 MB (largest agents
    first); otherwise the session document. Message documents are written first, the session document
    last: a killed import never leaves a half session visible, and running it again converges (it
    clears the message documents left by the killed run). Sessions keep their ids, timestamps,
    metadata, feedback and viewer password; the expiry is set by the repository's ``ttl_hours`` (a
    session on legal hold gets none).

    Args:
        repository: The repository to import into (another database: a repository on that database).
        source: A path, a text stream, or an iterable of lines (``str`` or ``bytes``); blank lines are ignored.
        on_conflict: For a session that already exists: ``"skip"`` it, ``"replace"`` it (the old session
            and its messages are deleted first), or ``"fail"`` (report it as failed and go on).

    Returns:
        ``{"read", "imported", "skipped", "replaced", "failed", "failures"}``: lines read, sessions
        created, left alone, replaced, and failed; ``failures`` is ``[{"line", "session_id", "error"}]``
        (``session_id`` None for a line that is not an exported session).

    Raises:
        ValueError: ``on_conflict`` is not one of ``"skip"``, ``"replace"``, ``"fail"``; nothing was read.
        StorageUnavailableError: MongoDB is unreachable (the import stops; run it again).
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict=<{on_conflict!r}> | on_conflict must be one of {list(ON_CONFLICT)}")
    summary: dict[str, Any] = {"read": 0, "imported": 0, "skipped": 0, "replaced": 0, "failed": 0}
    failures: list[dict[str, Any]] = []
    with ExitStack() as stack:
        lines: Iterable[str | bytes] = (
            stack.enter_context(open(source, encoding="utf-8")) if isinstance(source, str | os.PathLike) else source
        )
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            summary["read"] += 1
            session_id = None
            try:
                document = parse_line(line)
                session_id = document["_id"]
                outcome = _import_one(repository, document, on_conflict)
            except StorageUnavailableError:
                raise
            except (SessionException, ValueError, TypeError, KeyError, PyMongoError) as error:
                logger.debug("session_id=<%s> | line=<%d> | import failed: %s", session_id, number, error)
                failures.append({"line": number, "session_id": session_id, "error": str(error)})
                outcome = "failed"
            summary[outcome] += 1
    return {**summary, "failures": failures}


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Return the session document of one exported line.

    Raises:
        ValueError: The line is not JSON, not an exported session, or of a newer format version.
    """
    try:
        envelope = json_util.loads(line, json_options=_READ_OPTIONS)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a JSON line: {error}") from error
    if not isinstance(envelope, dict) or envelope.get("format") != EXPORT_FORMAT:
        raise ValueError(f'not an exported session (no "format": "{EXPORT_FORMAT}")')
    version = envelope.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise ValueError(f"version=<{version!r}> | this library reads export version {EXPORT_VERSION} and older")
    document = envelope.get("session")
    if not isinstance(document, dict) or not docs.is_session_document(document):
        raise ValueError('the line\'s "session" is not a session document (_id == session_id, session_type)')
    docs.validate_ids(session_id=document["_id"])
    return document


def _import_one(repository: MongoDBSessionRepository, document: dict[str, Any], on_conflict: str) -> str:
    """Import one session; return the summary key it counts under."""
    session_id = document["_id"]
    with repository._errors(session_id):
        exists = repository.collection.find_one({"_id": session_id}, {"_id": 1}) is not None
    if exists and on_conflict == "skip":
        return "skipped"
    if exists and on_conflict == "fail":
        raise SessionExistsError(f"Session {session_id} already exists")
    if exists:
        with contextlib.suppress(SessionNotFoundError):  # deleted meanwhile: nothing to remove
            repository.delete_session(session_id)  # the session document, then its messages and files
    else:
        _layout(repository).delete_session(session_id)  # message documents left by a killed import, if any
    stored, messages = _place_messages(repository, document)
    layout = _layout(repository)
    for agent_id, elements in messages.items():
        layout.copy(session_id, agent_id, elements)
    _test_exit("messages")
    try:
        with repository._errors(session_id):
            repository.collection.insert_one(stored)
    except DuplicateKeyError as error:  # written by someone else since the check
        raise SessionExistsError(f"Session {session_id} was created during the import") from error
    except SessionException:
        layout.delete_session(session_id)
        raise
    logger.debug("session_id=<%s> | agents=<%d> | session imported", session_id, len(stored.get("agents", {})))
    return "replaced" if exists else "imported"


def _place_messages(
    repository: MongoDBSessionRepository, document: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Split an exported session: the document to insert, and the messages of its collection-layout agents.

    Returns:
        The session document (embedded agents hold their messages; the others carry the layout marker
        and no array) and, by agent id, the messages to write to the collection layout.
    """
    agents: dict[str, Any] = document.get("agents") or {}
    arrays = {key: list(agent.pop("messages", None) or []) for key, agent in agents.items()}
    for agent in agents.values():
        agent.pop(docs.MESSAGE_STORAGE_FIELD, None)
    moved = {
        key
        for key, elements in arrays.items()
        if repository.message_storage == docs.COLLECTION or len(elements) > repository.max_embedded_messages
    }
    sizes = {key: len(bson.encode({"messages": elements})) for key, elements in arrays.items() if key not in moved}
    room = docs.MAX_DOCUMENT_BYTES - len(bson.encode(document))
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if sum(size for other, size in sizes.items() if other not in moved) < room:
            break
        moved.add(key)
    for key, agent in agents.items():
        if key in moved:
            agent[docs.MESSAGE_STORAGE_FIELD] = docs.COLLECTION
        elif arrays[key]:
            agent["messages"] = arrays[key]
    _set_expiry(repository, document)
    return document, {docs.unescape_key(key): arrays[key] for key in moved}


def _set_expiry(repository: MongoDBSessionRepository, document: dict[str, Any]) -> None:
    """Give the session the importing repository's expiry: now + ``ttl_hours``, none without a ttl or on hold."""
    document.pop(docs.EXPIRES_AT_FIELD, None)
    ttl = docs.check_ttl_hours(repository.ttl_hours)
    if ttl is not None and document.get(docs.LEGAL_HOLD_FIELD) is not True:
        document[docs.EXPIRES_AT_FIELD] = docs.utc_now() + ttl


def _is_collection(agent: Any) -> bool:
    return isinstance(agent, Mapping) and agent.get(docs.MESSAGE_STORAGE_FIELD) == docs.COLLECTION


def _layout(repository: MongoDBSessionRepository) -> CollectionMessages:
    """The repository's collection layout (the package's own object: its indexes, GridFS bucket and errors)."""
    return repository._collection


def _test_exit(step: str) -> None:
    """Exit the process at once after ``step`` when the crash-safety tests ask for it (no cost otherwise)."""
    if step == _EXIT_AT:
        os._exit(17)
