"""MongoDB persistence for Strands Agents."""

from .errors import (
    DocumentTooLargeError,
    DuplicateMessageError,
    InvalidMetadataKeyError,
    SessionDataError,
    SessionException,
    SessionNotFoundError,
    StorageUnavailableError,
)
from .factory import (
    MongoDBSessionManagerFactory,
    close_global_factory,
    create_mongodb_session_manager,
    get_global_factory,
    initialize_global_factory,
)
from .manager import MongoDBSessionManager
from .pool import MongoDBConnectionPool
from .repository import MongoDBSessionRepository

__version__ = "0.6.0"

__all__ = [
    "DocumentTooLargeError",
    "DuplicateMessageError",
    "InvalidMetadataKeyError",
    "MongoDBConnectionPool",
    "MongoDBSessionManager",
    "MongoDBSessionManagerFactory",
    "MongoDBSessionRepository",
    "SessionDataError",
    "SessionException",
    "SessionNotFoundError",
    "StorageUnavailableError",
    "__version__",
    "close_global_factory",
    "create_mongodb_session_manager",
    "get_global_factory",
    "initialize_global_factory",
]
