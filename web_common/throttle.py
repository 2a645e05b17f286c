"""Failed-password throttle: after a few wrong passwords, refuse further attempts for a while without checking them.

In memory and per process: each worker of a multi-worker server counts on its own (``--workers 4`` allows up to
four times the failures). Never a permanent lockout: a key is free again once its oldest counted failure is older
than the window. Clients are told apart by ``request.client.host``; behind a reverse proxy, run uvicorn with
``--proxy-headers --forwarded-allow-ips=<proxy address>`` so that it is the real client's address, not the proxy's.
"""

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

__all__ = [
    "DEFAULT_MAX_FAILURES",
    "DEFAULT_MAX_KEYS",
    "DEFAULT_WINDOW_SECONDS",
    "FailureThrottle",
    "PasswordThrottle",
]

DEFAULT_MAX_FAILURES = 5
"""Failures within the window after which a key is refused."""

DEFAULT_WINDOW_SECONDS = 60.0
"""How long a failure counts, in seconds."""

DEFAULT_MAX_KEYS = 10_000
"""Most keys remembered by one :class:`FailureThrottle`; the least recently failed one is forgotten first."""

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic``; tests pass a fake one)."""


class FailureThrottle:
    """Count failures per key in a sliding window; a key with ``max_failures`` of them in the window is blocked.

    Thread-safe (one lock, held for a few dictionary operations and never across an ``await``), so one instance
    serves every request of an async app. Memory is bounded: at most ``max_failures`` timestamps for each of at
    most ``max_keys`` keys.
    """

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> None:
        """Create an empty throttle.

        Args:
            max_failures: Failures within the window that block a key (at least 1).
            window_seconds: How long a failure counts, in seconds (positive).
            max_keys: Most keys remembered; beyond it the least recently failed key is forgotten.
            clock: Monotonic time in seconds.

        Raises:
            ValueError: A limit is not positive.
        """
        if max_failures < 1 or window_seconds <= 0 or max_keys < 1:
            raise ValueError("max_failures, window_seconds and max_keys must be positive")
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of keys remembered (with failures not yet known to be expired)."""
        with self._lock:
            return len(self._failures)

    def retry_after(self, key: Hashable) -> int | None:
        """Whole seconds until ``key`` may try again (at least 1), or None when it is not blocked."""
        with self._lock:
            return self._retry_after(key, self._clock())

    def record_failure(self, key: Hashable) -> int | None:
        """Count a failure of ``key`` now.

        Returns:
            The seconds to wait when this failure blocks the key, else None.
        """
        now = self._clock()
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.max_failures)
            failures.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
            return self._retry_after(key, now)

    def clear(self, key: Hashable) -> None:
        """Forget the failures of ``key``."""
        with self._lock:
            self._failures.pop(key, None)

    def _retry_after(self, key: Hashable, now: float) -> int | None:
        """Drop the expired failures of ``key`` and return its wait (the lock is held)."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and now - failures[0] >= self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_seconds - now))


class PasswordThrottle:
    """Failed passwords counted per client and per protected resource (a session id), each with its own bound.

    Two :class:`FailureThrottle` instances share the limits, so that a flood of new client addresses cannot push
    the resources' counts out of memory (and the reverse).
    """

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> None:
        """Create empty per-client and per-resource throttles with the same limits (see :class:`FailureThrottle`)."""
        self.clients = FailureThrottle(max_failures, window_seconds, max_keys=max_keys, clock=clock)
        self.resources = FailureThrottle(max_failures, window_seconds, max_keys=max_keys, clock=clock)
