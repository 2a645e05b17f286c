"""Moving one agent's messages between layouts, crash-safe and idempotent, with ONE commit point.

Promotion (embedded -> collection, the outlier pattern), each step idempotent:

1. read the agent's embedded messages (one find);
2. copy them into ``<collection>.messages`` with upserts keyed by ``(session_id, agent_id, message_id)``;
3. COMMIT: one ``update_one`` on the session document whose filter says "no marker yet, and the array is
   still exactly what was copied" (same length, same last ``message_id`` and ``updated_at``) and whose
   update sets the marker ``agents.<id>.message_storage: "collection"`` and unsets the array.

If the commit matches nothing, either another process promoted the agent (the marker is set: done) or a
message arrived or changed meanwhile (go back to 1, a bounded number of times). A process killed before 3
leaves the agent embedded (its copies are harmless duplicates that the next promotion upserts over and
``delete_session`` removes); after 3 it is promoted. Readers see every message exactly once: before the
commit they read the array, after it the collection.

Demotion (collection -> embedded, for ``migrate_session(..., to="embedded")``): read the message
documents, COMMIT with one ``update_one`` guarded by the marker that sets the array and unsets the marker,
then delete the message documents (cleanup, idempotent). Demotion is an operator's move: run it while no
application writes to the session.
"""

import logging
import os

import bson

from . import documents as docs
from .collection_messages import CollectionMessages
from .errors import DocumentTooLargeError, MessageLayoutError
from .inline_messages import InlineMessages

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Commits a promotion tries before giving up (each miss means another writer changed the array)."""

_EXIT_AT = os.environ.get("_MSM_TEST_LAYOUT_MOVE_EXIT_AT")
"""Test-only: the step after which the process exits abruptly (crash-safety tests); read once, at import."""


def promote(inline: InlineMessages, collection: CollectionMessages, session_id: str, agent_id: str) -> bool:
    """Move an agent's embedded messages to the collection layout.

    Returns:
        True when this call committed the move, False when the agent was already promoted.

    Raises:
        SessionNotFoundError: No such session or agent.
        MessageLayoutError: Concurrent writers changed the array ``MAX_ATTEMPTS`` times in a row.
    """
    for attempt in range(MAX_ATTEMPTS):
        found = inline.page(session_id, agent_id)
        if found.storage == docs.COLLECTION:
            return False
        _test_exit("read")
        collection.copy(session_id, agent_id, found.elements)
        _test_exit("copied")
        if inline.commit_promotion(session_id, agent_id, found.elements):
            _test_exit("committed")
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | messages=<%d> | attempt=<%d> | messages moved to the collection",
                session_id,
                agent_id,
                len(found.elements),
                attempt + 1,
            )
            return True
        logger.debug("session_id=<%s> | agent_id=<%s> | array changed during promotion, retrying", session_id, agent_id)
    raise MessageLayoutError(
        f"session_id=<{session_id}> | agent_id=<{agent_id}> | attempts=<{MAX_ATTEMPTS}> | "
        "other writers kept changing the messages; the agent stays embedded, nothing was lost"
    )


def demote(inline: InlineMessages, collection: CollectionMessages, session_id: str, agent_id: str) -> bool:
    """Move an agent's messages from the collection layout back into the session document.

    Returns:
        True when this call committed the move, False when the agent was already embedded.

    Raises:
        SessionNotFoundError: No such session or agent.
        MessageLayoutError: A message is stored in GridFS, or the messages would not fit in the 16 MB
            session document; nothing was changed.
    """
    if inline.storage(session_id, agent_id) != docs.COLLECTION:
        return False
    rows = collection.rows(session_id, agent_id)
    where = f"session_id=<{session_id}> | agent_id=<{agent_id}>"
    in_gridfs = [row["message_id"] for row in rows if docs.PAYLOAD_FILE_FIELD in row]
    if in_gridfs:
        raise MessageLayoutError(
            f"{where} | message_ids=<{in_gridfs}> | these messages are bigger than a document and live in "
            "GridFS; they cannot move into the session document, which stays as it is"
        )
    elements = [docs.element_from_row(row) for row in rows]
    size = len(bson.encode({"messages": elements}))
    if size >= docs.MAX_DOCUMENT_BYTES:
        raise _too_big(where, size)
    try:
        committed = inline.commit_demotion(session_id, agent_id, elements)
    except DocumentTooLargeError as error:
        raise _too_big(where, size) from error
    if committed:
        _test_exit("committed")
        collection.delete_agent(session_id, agent_id)
        logger.debug("%s | messages=<%d> | messages moved into the session document", where, len(elements))
    return committed


def _too_big(where: str, size: int) -> MessageLayoutError:
    return MessageLayoutError(
        f"{where} | messages_bytes=<{size}> | the messages would not fit in the "
        f"{docs.MAX_DOCUMENT_BYTES}-byte session document; the agent stays in the collection layout"
    )


def _test_exit(step: str) -> None:
    """Exit the process at once after ``step`` when the crash-safety tests ask for it (no cost otherwise)."""
    if step == _EXIT_AT:
        os._exit(17)
