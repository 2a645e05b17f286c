"""Child process for ``test_promotion.py``: appends messages to one agent, so that it promotes.

Usage: ``python layout_child.py URI DATABASE FIRST_ID COUNT STRIDE MAX_EMBEDDED`` appends the messages
``FIRST_ID, FIRST_ID + STRIDE, ...`` (``COUNT`` of them) with ``max_embedded_messages=MAX_EMBEDDED``.
With ``_MSM_TEST_LAYOUT_MOVE_EXIT_AT`` set, the process exits abruptly after that step of a promotion.
"""

import sys

from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionRepository

COLLECTION, SESSION, AGENT = "sessions", "s-promote", "agent.v2"
STAMP = "2025-01-01T00:00:00+00:00"


def message(index: int) -> SessionMessage:
    """The message the tests expect under ``index``."""
    content = {"role": "user", "content": [{"text": f"message {index}"}]}
    return SessionMessage(message=content, message_id=index, created_at=STAMP, updated_at=STAMP)


def main() -> None:
    """Append the messages named on the command line."""
    uri, database, first, count, stride, max_embedded = sys.argv[1:]
    with MongoDBSessionRepository(
        uri, database_name=database, collection_name=COLLECTION, max_embedded_messages=int(max_embedded)
    ) as repository:
        for index in range(int(first), int(first) + int(count) * int(stride), int(stride)):
            repository.create_message(SESSION, AGENT, message(index))


if __name__ == "__main__":
    main()
