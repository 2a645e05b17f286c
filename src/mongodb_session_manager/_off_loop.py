"""Run a session manager's blocking strands callbacks in a worker thread when strands awaits them."""

import asyncio
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

from strands.hooks.events import (
    AfterInvocationEvent,
    AfterMultiAgentInvocationEvent,
    AfterNodeCallEvent,
    MessageAddedEvent,
    MultiAgentInitializedEvent,
)
from strands.hooks.registry import HookRegistry

OFF_LOOP_EVENTS: frozenset[type] = frozenset(
    {
        MessageAddedEvent,
        AfterInvocationEvent,
        MultiAgentInitializedEvent,
        AfterNodeCallEvent,
        AfterMultiAgentInvocationEvent,
    }
)
"""Events strands only dispatches with ``invoke_callbacks_async`` (which awaits coroutine callbacks).

``AgentInitializedEvent`` is not here: strands invokes it synchronously and refuses coroutine callbacks. An
event missing from this set keeps its callback as registered, so a newer strands never breaks.
"""


class OffLoopCallbacks:
    """Turns blocking callbacks into coroutines that run them in a worker thread, one at a time per event loop.

    strands awaits the callbacks of one event in order, so the writes of one agent keep their order. The
    per-loop lock also keeps the order of callbacks raised concurrently on one loop (a Graph's parallel
    nodes): each waits for the previous one's write to finish, as it did when the write blocked the loop.
    """

    def __init__(self) -> None:
        """Start with no loop seen yet."""
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def registry(self, registry: HookRegistry) -> HookRegistry:
        """Return a view of ``registry`` whose ``add_callback`` moves callbacks of `OFF_LOOP_EVENTS` off the loop."""
        return cast(HookRegistry, _OffLoopRegistry(registry, self))

    def wrap(self, callback: Callable[[Any], Any]) -> Callable[[Any], Awaitable[None]]:
        """Return a coroutine callback that runs ``callback(event)`` with ``asyncio.to_thread``."""

        async def run_off_loop(event: Any) -> None:
            async with self._lock_for(asyncio.get_running_loop()):
                await asyncio.to_thread(callback, event)

        return run_off_loop

    def _lock_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        """Return this loop's lock (an ``asyncio.Lock`` belongs to one loop; sync agents run on fresh ones)."""
        with self._guard:
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
            return lock


class _OffLoopRegistry:
    """A strands ``HookRegistry`` stand-in for ``register_hooks``: wraps what `OffLoopCallbacks` moves, forwards all."""

    def __init__(self, registry: HookRegistry, off_loop: OffLoopCallbacks) -> None:
        self._registry = registry
        self._off_loop = off_loop

    def add_callback(self, event_type: Any, callback: Callable[[Any], Any], **options: Any) -> None:
        """Register ``callback``, as an off-loop coroutine when strands always awaits ``event_type``."""
        if isinstance(event_type, type) and event_type in OFF_LOOP_EVENTS and not inspect.iscoroutinefunction(callback):
            callback = self._off_loop.wrap(callback)
        self._registry.add_callback(event_type, callback, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)
