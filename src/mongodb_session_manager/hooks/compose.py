"""``combine_hooks``: several interceptors acting as one, with the operation run exactly once.

A manager takes one ``metadata_hook`` and one ``feedback_hook``. To push metadata to a WebSocket client *and* to
SQS (and perhaps audit it too), combine them::

    metadata_hook = combine_metadata_hooks(audit_hook, websocket_hook, sqs_hook)

Every hook here wraps ``original_func``, so calling them one after another would run the operation once per
hook. Instead, the combined hook:

* chains the plain interceptors (any ``hook(original_func, action, session_id, **kwargs)`` callable) in the order
  given, the first outermost, each calling the next through its ``original_func``;
* runs the operation once, at the inside of that chain, with the arguments the last interceptor passed on;
* then tells every notification hook (the AWS hooks, which have ``notify``) about it, in the order given. An
  interceptor that does not call ``original_func`` (a validation refusing, a cache answering) means no operation
  and so no notification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import NotificationHook, call_operation


class CombinedHook:
    """An interceptor made of several hooks; see `combine_hooks`."""

    def __init__(self, *hooks: Callable[..., Any]) -> None:
        """Combine ``hooks`` (notification hooks and plain interceptors, in the order they should act).

        Raises:
            ValueError: No hooks were given.
            TypeError: A hook is not callable.
        """
        if not hooks:
            raise ValueError("combine at least one hook")
        for hook in hooks:
            if not callable(hook):
                raise TypeError(f"hook=<{hook!r}> | a hook must be callable")
        self.hooks = hooks
        self._notifiers = [hook for hook in hooks if isinstance(hook, NotificationHook)]
        self._interceptors = [hook for hook in hooks if not isinstance(hook, NotificationHook)]

    def __call__(self, original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        """Run the interceptor chain around one call of ``original_func``; return what the chain returns."""
        names = tuple(kwargs)
        session_manager = getattr(original_func, "session_manager", None)

        def operation(*args: Any, **given: Any) -> Any:
            arguments = _bind(names, args, given)
            result = call_operation(original_func, arguments)
            for hook in self._notifiers:
                hook.notify(action, session_id, arguments, result, session_manager=session_manager)
            return result

        step = _carrying(operation, session_manager)
        for interceptor in reversed(self._interceptors):
            step = _carrying(_link(interceptor, step, action, session_id, names), session_manager)
        return step(**kwargs)

    def flush(self, timeout: float | None = None) -> bool:
        """Flush every combined notification hook; False if any ran out of time."""
        return all([hook.flush(timeout) for hook in self._drainable()])

    def close(self, timeout: float | None = None) -> bool:
        """Close every combined notification hook (draining its queue); False if any ran out of time."""
        return all([hook.close(timeout) for hook in self._drainable()])

    def _drainable(self) -> list[NotificationHook | CombinedHook]:
        return [hook for hook in self.hooks if isinstance(hook, NotificationHook | CombinedHook)]

    def __enter__(self) -> CombinedHook:
        """Use the combination as a context manager that closes every hook on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the ``with`` block."""
        self.close()


def combine_hooks(*hooks: Callable[..., Any]) -> CombinedHook:
    """Return one interceptor that runs the operation once and tells every notification hook about it.

    Plain interceptors wrap the operation in the order given; notification hooks (SNS/SQS/WebSocket) are told
    after it ran. Works for metadata and feedback hooks alike.
    """
    return CombinedHook(*hooks)


def combine_metadata_hooks(*hooks: Callable[..., Any]) -> CombinedHook:
    """Combine metadata hooks, e.g. ``combine_metadata_hooks(websocket_hook, sqs_hook)``; see `combine_hooks`."""
    return CombinedHook(*hooks)


def _bind(names: tuple[str, ...], args: tuple[Any, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Name the arguments an interceptor passed on, positionally (as the documented hooks do) or by keyword."""
    if len(args) > len(names):
        raise TypeError(f"the operation takes {len(names)} argument(s) ({', '.join(names)}), got {len(args)}")
    arguments = dict(zip(names, args, strict=False))
    twice = arguments.keys() & given.keys()
    if twice:
        raise TypeError(f"the operation got argument {sorted(twice)[0]!r} twice")
    arguments.update(given)
    ordered = {name: arguments.pop(name) for name in names if name in arguments}
    return ordered | arguments


def _link(
    interceptor: Callable[..., Any],
    next_step: Callable[..., Any],
    action: str,
    session_id: str,
    names: tuple[str, ...],
) -> Callable[..., Any]:
    def step(*args: Any, **given: Any) -> Any:
        return interceptor(next_step, action, session_id, **_bind(names, args, given))

    return step


def _carrying(func: Callable[..., Any], session_manager: Any) -> Callable[..., Any]:
    """Give a chain step the ``session_manager`` attribute hooks read from ``original_func``."""
    if session_manager is not None:
        func.session_manager = session_manager  # type: ignore[attr-defined]
    return func
