"""Optional AWS interceptors: SNS feedback alerts, SQS and API Gateway WebSocket metadata push.

Importing this package never needs boto3; creating a hook does (``pip install 'mongodb-session-manager[aws]'``).
"""

from .compose import CombinedHook, combine_hooks, combine_metadata_hooks
from .feedback_sns import FeedbackSNSHook, create_feedback_sns_hook, is_feedback_sns_hook_available
from .metadata_sqs import MetadataSQSHook, create_metadata_sqs_hook, is_metadata_sqs_hook_available
from .metadata_websocket import (
    MetadataWebSocketHook,
    create_metadata_websocket_hook,
    is_metadata_websocket_hook_available,
)

__all__ = [
    "CombinedHook",
    "FeedbackSNSHook",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "combine_hooks",
    "combine_metadata_hooks",
    "create_feedback_sns_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
