"""``BackgroundPublisher``: runs notification sends off the caller's thread, bounded, in order per session."""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

logger = logging.getLogger(__name__)

ErrorHandler = Callable[[BaseException, str, str], None]
"""``on_error(error, session_id, description)``: logs a failed send."""


def log_failure(error: BaseException, session_id: str, description: str) -> None:
    """Default error handler: one warning line naming the session, what was sent and why it failed."""
    logger.warning(
        "session_id=<%s> | notification=<%s> | error=<%s: %s> | notification failed",
        session_id,
        description,
        type(error).__name__,
        error,
    )


class BackgroundPublisher:
    """A bounded set of worker threads that send notifications after the user's operation has returned.

    Work for one session always goes to the same worker (``lanes`` single-thread executors picked by a hash of
    the session id), so a session's notifications arrive in the order its operations happened while different
    sessions are sent in parallel. At most ``max_pending`` notifications wait or run at once: when that many are
    outstanding a new one is dropped with a warning rather than making the caller wait.
    """

    def __init__(
        self,
        name: str,
        max_workers: int = 4,
        max_pending: int = 1000,
        on_error: ErrorHandler = log_failure,
    ) -> None:
        """Create the publisher; threads start lazily on the first notification.

        Args:
            name: Thread name prefix (``mongodb-session-manager-<name>``).
            max_workers: Number of worker threads.
            max_pending: Most notifications queued or running at once; more are dropped.
            on_error: Called on the worker thread when a send raises.
        """
        if max_workers < 1:
            raise ValueError(f"max_workers=<{max_workers}> | max_workers must be at least 1")
        if max_pending < 1:
            raise ValueError(f"max_pending=<{max_pending}> | max_pending must be at least 1")
        self.name = name
        self.max_pending = max_pending
        self._on_error = on_error
        self._lanes = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mongodb-session-manager-{name}-{index}")
            for index in range(max_workers)
        ]
        self._slots = threading.BoundedSemaphore(max_pending)
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._closed = False
        self._counts = {"sent": 0, "failed": 0, "dropped": 0}

    def submit(self, session_id: str, description: str, send: Callable[..., Any], *args: Any) -> bool:
        """Queue ``send(*args)``; return False (after logging a warning) when it was dropped."""
        if self._closed:
            return self._drop(session_id, description, "publisher closed")
        if not self._slots.acquire(blocking=False):
            return self._drop(session_id, description, f"{self.max_pending} notifications already pending")
        lane = self._lanes[zlib.crc32(session_id.encode("utf-8", "surrogatepass")) % len(self._lanes)]
        try:
            future = lane.submit(self._run, session_id, description, send, args)
        except RuntimeError as error:  # shut down, or the interpreter is exiting
            self._slots.release()
            return self._drop(session_id, description, str(error))
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every notification queued so far has been sent (or failed); False if ``timeout`` ran out."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting notifications, wait up to ``timeout`` for queued ones, then stop the threads.

        Returns:
            True when everything queued was sent (or failed) before the threads stopped.
        """
        self._closed = True
        drained = self.flush(timeout)
        for lane in self._lanes:
            lane.shutdown(wait=drained, cancel_futures=not drained)
        return drained

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def stats(self) -> dict[str, int]:
        """Return counts of notifications ``sent``, ``failed``, ``dropped`` and still ``pending``."""
        with self._lock:
            return {**self._counts, "pending": len(self._pending)}

    def _run(self, session_id: str, description: str, send: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            send(*args)
        except Exception as error:
            self._count("failed")
            try:
                self._on_error(error, session_id, description)
            except Exception:
                logger.exception("session_id=<%s> | notification=<%s> | error handler failed", session_id, description)
        else:
            self._count("sent")

    def _finished(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def _drop(self, session_id: str, description: str, reason: str) -> bool:
        self._count("dropped")
        logger.warning(
            "session_id=<%s> | notification=<%s> | reason=<%s> | notification dropped", session_id, description, reason
        )
        return False

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1
