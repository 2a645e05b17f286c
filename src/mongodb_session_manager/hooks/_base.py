"""``NotificationHook``: the interceptor shape shared by the AWS hooks, plus their boto3 plumbing.

boto3 is imported only when a hook is created, so importing the package never needs it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._publisher import BackgroundPublisher, ErrorHandler, log_failure

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the 'aws' extra: pip install 'mongodb-session-manager[aws]'"

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 3


@functools.cache
def boto3_available() -> bool:
    """Return True when boto3 (and botocore) can be imported."""
    try:
        importlib.import_module("boto3")
        importlib.import_module("botocore.config")
    except ImportError:
        return False
    return True


def require_boto3(hook_name: str) -> Any:
    """Import and return boto3, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module("boto3")
    except ImportError as error:
        raise ImportError(f"{hook_name} needs boto3: {INSTALL_HINT}") from error


def resolve_region(region: str | None, region_name: str | None) -> str | None:
    """Return the region given as ``region`` or its alias ``region_name``."""
    if region and region_name and region != region_name:
        raise ValueError(f"region=<{region}> | region_name=<{region_name}> | give the region once")
    return region or region_name


def create_client(
    service: str,
    hook_name: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    boto3_session: Any,
    max_workers: int,
) -> Any:
    """Create the one boto3 client a hook uses for all its sends (thread-safe, short timeouts, few retries)."""
    boto3 = require_boto3(hook_name)
    from botocore.config import Config

    session = boto3_session if boto3_session is not None else boto3.session.Session()
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=max(10, max_workers),
    )
    region = region or session.region_name or "us-east-1"
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def call_operation(original_func: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Run the intercepted operation the way the documented hooks do: its arguments passed positionally.

    An ``original_func`` that takes no arguments (such as ``lambda: result`` when one hook feeds another's result
    to a second hook) is called without them.
    """
    args = tuple(kwargs.values())
    if args and _takes_no_arguments(original_func):
        return original_func()
    return original_func(*args)


def _takes_no_arguments(func: Callable[..., Any]) -> bool:
    try:
        return not inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


class NotificationHook:
    """An interceptor that runs the operation, then queues a notification about it.

    Call it as ``hook(original_func, action, session_id, **kwargs)`` (pass it as ``metadata_hook`` or
    ``feedback_hook``). The operation runs first, on the caller's thread; if it raises, nothing is sent and the
    error reaches the caller unchanged. The notification is then built and handed to a background publisher: the
    caller never waits for AWS, and an AWS failure is logged (with the session id), never raised.
    """

    hook_name = "NotificationHook"

    def __init__(self, publisher_name: str, max_workers: int, max_pending: int, on_error: ErrorHandler = log_failure):
        """Create the hook's background publisher."""
        self._publisher = BackgroundPublisher(publisher_name, max_workers, max_pending, on_error)
        self._client: Any = None
        self._owns_client = False

    @property
    def client(self) -> Any:
        """The boto3 client used for every send."""
        return self._client

    def __call__(self, original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        """Run the operation, queue its notification, and return what the operation returned."""
        result = call_operation(original_func, kwargs)
        self.notify(action, session_id, kwargs, result, session_manager=getattr(original_func, "session_manager", None))
        return result

    def notify(
        self,
        action: str,
        session_id: str,
        kwargs: Mapping[str, Any],
        result: Any = None,
        *,
        session_manager: Any = None,
    ) -> None:
        """Queue the notification for an operation that has completed; never raises.

        Args:
            action: The hook action (``update``, ``delete``, ``get``, ``add``).
            session_id: The session the operation changed.
            kwargs: The operation's arguments (``metadata=``, ``keys=``, ``feedback=``).
            result: What the operation returned.
            session_manager: The calling ``MongoDBSessionManager``, for hooks that read more of the session.
        """
        if self._publisher.closed:
            logger.warning(
                "session_id=<%s> | hook=<%s> | hook closed, no notification sent", session_id, self.hook_name
            )
            return
        try:
            self._notify(action, session_id, kwargs, result, session_manager)
        except Exception:
            logger.exception(
                "session_id=<%s> | hook=<%s> | action=<%s> | notification not sent", session_id, self.hook_name, action
            )

    def _notify(
        self, action: str, session_id: str, kwargs: Mapping[str, Any], result: Any, session_manager: Any
    ) -> None:
        raise NotImplementedError

    def _submit(self, session_id: str, description: str, send: Callable[..., Any], *args: Any) -> bool:
        return self._publisher.submit(session_id, description, send, *args)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every notification queued so far has been sent or has failed.

        Returns:
            False when ``timeout`` (seconds) ran out first.
        """
        return self._publisher.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Send what is queued (waiting up to ``timeout`` seconds), stop the worker threads and close the client.

        Operations still run through a closed hook; they just send nothing.

        Returns:
            True when everything queued was sent (or failed) in time.
        """
        drained = self._publisher.close(timeout)
        if self._owns_client and hasattr(self._client, "close"):
            try:
                self._client.close()
            except Exception:
                logger.debug("hook=<%s> | closing the boto3 client failed", self.hook_name, exc_info=True)
        return drained

    def stats(self) -> dict[str, int]:
        """Return counts of notifications ``sent``, ``failed``, ``dropped`` and still ``pending``."""
        return self._publisher.stats()

    def __enter__(self) -> NotificationHook:
        """Use the hook as a context manager that closes (draining its queue) on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the ``with`` block."""
        self.close()

    def _use_client(
        self,
        service: str,
        *,
        client: Any,
        region: str | None,
        endpoint_url: str | None,
        boto3_session: Any,
        max_workers: int,
    ) -> None:
        if client is not None:
            self._client, self._owns_client = client, False
            return
        self._client = create_client(
            service,
            self.hook_name,
            region=region,
            endpoint_url=endpoint_url,
            boto3_session=boto3_session,
            max_workers=max_workers,
        )
        self._owns_client = True
