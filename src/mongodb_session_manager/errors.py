"""Exception types raised by mongodb_session_manager.

Everything that strands' session contract expects as a ``SessionException`` subclasses it, so
code written against strands' own managers keeps working unchanged.
"""

from strands.types.exceptions import SessionException

__all__ = [
    "DocumentTooLargeError",
    "DuplicateMessageError",
    "EncryptionKeyError",
    "InvalidApplicationNameError",
    "InvalidIdError",
    "InvalidMetadataKeyError",
    "MessageLayoutError",
    "SessionDataError",
    "SessionException",
    "SessionExistsError",
    "SessionKeyErasedError",
    "SessionNotFoundError",
    "StorageUnavailableError",
]


class SessionExistsError(SessionException):
    """``create_session`` found a session with the same id; the stored one is left untouched."""


class SessionNotFoundError(SessionException, ValueError):
    """The session, agent or message a write addresses does not exist; nothing was written."""


class DuplicateMessageError(SessionException):
    """A message with this id is already stored for the agent; nothing was written."""


class DocumentTooLargeError(SessionException):
    """The write would push the session document past MongoDB's 16 MB limit; nothing was written."""


class MessageLayoutError(SessionException):
    """An agent's messages cannot be moved to the requested layout; nothing was changed.

    Raised by ``migrate_session``/``migrate_sessions`` for a move to the embedded layout that would not fit
    in one 16 MB session document or that meets a message stored in GridFS, and by a promotion that keeps
    losing the race against concurrent writers.
    """


class StorageUnavailableError(SessionException):
    """MongoDB could not be reached within the configured timeouts."""


class SessionDataError(SessionException, ValueError):
    """A value cannot be stored in MongoDB (for example an object BSON cannot encode)."""


class EncryptionKeyError(SessionException):
    """An encrypted value cannot be decrypted or encrypted; nothing is returned in its place and nothing was written.

    Raised when a read meets a ciphertext (client-side field-level encryption) and the repository has no
    ``encryption=`` settings, or its settings cannot use the value's data key (a wrong master key, no access to
    the KMS). Never a silent garbage read. The message names the session.
    """


class SessionKeyErasedError(EncryptionKeyError):
    """The session's data key was erased (``erase_session_keys``): its encrypted fields are gone for good.

    Raised by reads of the session's encrypted fields and by writes to it. Listing and its clear fields (ids,
    timestamps, counters, metrics) keep working. A process that held the key before the erasure may go on using
    it until its key cache expires (``EncryptionSettings.key_cache_seconds``).
    """


class InvalidIdError(SessionException, ValueError, TypeError):
    """A session, agent or multi-agent id is not a non-empty string; nothing was sent to MongoDB.

    Raised before any command is built, so an id taken from a request body can never act as a query
    operator (``{"$ne": None}``) or be joined into another field path (``["a", "b"]``). It is a
    ``ValueError`` and a ``TypeError`` as well as a strands ``SessionException``: code catching any
    of the three catches it.
    """


class InvalidApplicationNameError(ValueError, TypeError):
    """An ``application_name`` is not a non-empty string of at most 128 characters without NUL; nothing was sent.

    Raised by the constructors that take one (before anything connects) and by ``list_sessions``. It is a
    ``ValueError`` and a ``TypeError``: code catching either catches it.
    """


class InvalidMetadataKeyError(ValueError):
    """A metadata key is not a string, has an empty path segment or a segment starting with ``$``."""
