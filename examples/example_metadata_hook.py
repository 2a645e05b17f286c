"""Metadata hooks: intercept every metadata operation for auditing, validation and caching.

Run it with ``uv run python examples/example_metadata_hook.py`` (embedded MongoDB when ``MONGODB_URI`` is unset).

A hook is ``hook(original_func, action, session_id, **kwargs)``; ``action`` is ``"update"`` (with ``metadata=``),
``"get"`` or ``"delete"`` (with ``keys=``). It decides whether and how ``original_func`` runs and returns what the
operation returns. The agent's ``manage_metadata`` tool goes through the same hook.

1. audit: log every operation and how long it took;
2. validation: refuse unknown fields and bad values before anything is written;
3. caching: answer ``get`` from memory until an update or delete (MongoDB reads are counted to show it);
4. all three at once with ``combine_hooks``.
"""

import time
import uuid
from collections.abc import Callable
from typing import Any

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, combine_hooks, create_mongodb_session_manager
from mongodb_session_manager.demo_model import create_model, describe_model
from mongodb_session_manager.startup import require_mongodb
from mongodb_session_manager.testing import CommandLog


def audit_hook(original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
    """Log each metadata operation with its arguments, outcome and duration."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        return original_func(**kwargs)
    except Exception as error:
        outcome = f"failed: {error}"
        raise
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"    [audit] {action} session={session_id} args={kwargs} -> {outcome} ({elapsed_ms:.1f} ms)")


ALLOWED_FIELDS = {"status", "priority", "customer", "notes"}
ALLOWED_STATUS = {"open", "pending", "closed"}


def validation_hook(original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
    """Refuse unknown fields and invalid values; nothing is written when it refuses."""
    if action == "update":
        metadata = kwargs["metadata"]
        unknown = {key.split(".")[0] for key in metadata} - ALLOWED_FIELDS
        if unknown:
            raise ValueError(f"unknown metadata fields: {sorted(unknown)}")
        if "status" in metadata and metadata["status"] not in ALLOWED_STATUS:
            raise ValueError(f"status must be one of {sorted(ALLOWED_STATUS)}")
        metadata = {key: value.strip() if isinstance(value, str) else value for key, value in metadata.items()}
        return original_func(metadata)
    return original_func(**kwargs)


class CachingHook:
    """Serve ``get`` from memory; any update or delete of the session clears its entry."""

    def __init__(self) -> None:
        self.cache: dict[str, dict[str, Any]] = {}
        self.hits = 0

    def __call__(self, original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        if action == "get":
            if session_id in self.cache:
                self.hits += 1
                return self.cache[session_id]
            self.cache[session_id] = original_func()
            return self.cache[session_id]
        self.cache.pop(session_id, None)
        return original_func(**kwargs)


def open_session(name: str, hook: Callable[..., Any], **client_options: Any) -> MongoDBSessionManager:
    return create_mongodb_session_manager(
        session_id=f"metadata-hook-{name}-{uuid.uuid4().hex[:8]}",
        metadata_hook=hook,
        **client_options,
    )


def main() -> None:
    model = create_model()
    print(f"Model: {describe_model(model)}")

    print("1. Audit hook")
    with open_session("audit", audit_hook) as session_manager:
        session_manager.update_metadata({"status": "open", "customer": "alice"})
        session_manager.get_metadata()
        session_manager.delete_metadata(["customer"])
        agent = Agent(
            agent_id="assistant",
            model=model,
            tools=[session_manager.get_metadata_tool()],
            session_manager=session_manager,
            callback_handler=None,
        )
        agent.tool.manage_metadata(action="set", metadata={"priority": "high"})  # the agent's tool is audited too

    print("2. Validation hook")
    with open_session("validation", validation_hook) as session_manager:
        session_manager.update_metadata({"status": "open", "notes": "  needs a call back  "})
        print(f"    accepted and cleaned: {session_manager.get_metadata()['metadata']}")
        for bad in ({"status": "maybe"}, {"credit_card": "4111 1111 1111 1111"}):
            try:
                session_manager.update_metadata(bad)
            except ValueError as error:
                print(f"    refused {bad}: {error}")
        print(f"    stored afterwards: {session_manager.get_metadata()['metadata']}")

    print("3. Caching hook")
    cache, commands = CachingHook(), CommandLog(count_bytes=False)  # CommandLog records the client's commands
    with open_session("cache", cache, event_listeners=[commands]) as session_manager:
        session_manager.update_metadata({"status": "open"})
        commands.clear()
        for _ in range(5):
            session_manager.get_metadata()
        print(f"    5 x get_metadata(): {len(commands.reads)} MongoDB read(s), {cache.hits} cache hits")
        session_manager.update_metadata({"status": "closed"})
        print(f"    after an update the cache was cleared: {session_manager.get_metadata()['metadata']}")

    print("4. All three with combine_hooks(audit, validation, cache)")
    combined = combine_hooks(audit_hook, validation_hook, CachingHook())
    with open_session("combined", combined) as session_manager:
        session_manager.update_metadata({"status": "pending", "priority": "low"})
        session_manager.get_metadata()
        session_manager.get_metadata()  # served by the cache: the audit hook still sees it
        try:
            session_manager.update_metadata({"status": "unknown"})
        except ValueError as error:
            print(f"    refused: {error}")
        print(f"    stored: {session_manager.get_metadata()['metadata']}")


if __name__ == "__main__":
    require_mongodb("example_metadata_hook")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
