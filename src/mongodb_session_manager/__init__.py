"""MongoDB persistence for Strands Agents."""

from .encryption import EncryptionSettings
from .errors import (
    DocumentTooLargeError,
    DuplicateMessageError,
    EncryptionKeyError,
    InvalidApplicationNameError,
    InvalidIdError,
    InvalidMetadataKeyError,
    MessageLayoutError,
    SessionDataError,
    SessionException,
    SessionExistsError,
    SessionKeyErasedError,
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
from .hooks import (
    FeedbackSNSHook,
    MetadataSQSHook,
    MetadataWebSocketHook,
    combine_hooks,
    combine_metadata_hooks,
    create_feedback_sns_hook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
    is_feedback_sns_hook_available,
    is_metadata_sqs_hook_available,
    is_metadata_websocket_hook_available,
)
from .manager import MongoDBSessionManager
from .pool import MongoDBConnectionPool
from .repository import MongoDBSessionRepository
from .storage import MongoDBStorage
from .transfer import export_sessions, import_sessions

__version__ = "0.6.0"

__all__ = [
    "DocumentTooLargeError",
    "DuplicateMessageError",
    "EncryptionKeyError",
    "EncryptionSettings",
    "FeedbackSNSHook",
    "InvalidApplicationNameError",
    "InvalidIdError",
    "InvalidMetadataKeyError",
    "MessageLayoutError",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "MongoDBConnectionPool",
    "MongoDBSessionManager",
    "MongoDBSessionManagerFactory",
    "MongoDBSessionRepository",
    "MongoDBStorage",
    "SessionDataError",
    "SessionException",
    "SessionExistsError",
    "SessionKeyErasedError",
    "SessionNotFoundError",
    "StorageUnavailableError",
    "__version__",
    "close_global_factory",
    "combine_hooks",
    "combine_metadata_hooks",
    "create_feedback_sns_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "create_mongodb_session_manager",
    "export_sessions",
    "get_global_factory",
    "import_sessions",
    "initialize_global_factory",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
