"""``MongoDBSessionManager``: strands' ``RepositorySessionManager`` plus metrics, config, metadata and feedback."""

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import MongoClient
from pymongo.common import VALIDATORS
from strands.agent.agent import Agent
from strands.session.repository_session_manager import RepositorySessionManager

from .errors import SessionExistsError
from .repository import MongoDBSessionRepository, StagedAgentUpdate

if TYPE_CHECKING:
    from strands.tools.decorator import DecoratedFunctionTool
    from strands.types.agent import LocalAgent

logger = logging.getLogger(__name__)

Hook = Callable[..., Any]
"""An interceptor: ``hook(original_func, action, session_id, **kwargs)`` returns what the operation returns."""

_CLIENT_OPTION_NAMES = set(VALIDATORS) | {"host", "port"}


class MongoDBSessionManager(RepositorySessionManager):
    """Persists strands agents in MongoDB, one document per session.

    On top of strands' session contract it captures event-loop metrics on the latest assistant
    message, the agent's model and system prompt, and offers session metadata and user feedback,
    each optionally intercepted by a hook.
    """

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient | None = None,
        metadata_fields: Sequence[str] | None = None,
        metadata_hook: Hook | None = None,
        feedback_hook: Hook | None = None,
        **kwargs: Any,
    ) -> None:
        """Open (or create) the session.

        Args:
            session_id: Id of the session document; created when it does not exist yet.
            connection_string: MongoDB URI. Without it and without ``client``, ``MONGODB_URI`` or the
                embedded development server is used.
            database_name: Database holding the sessions.
            collection_name: Collection holding one document per session.
            client: A shared ``MongoClient`` to borrow; `close` leaves it open.
            metadata_fields: Metadata fields to index for searching.
            metadata_hook: Interceptor for metadata ``update``/``get``/``delete`` (alias ``metadataHook``).
            feedback_hook: Interceptor for feedback ``add`` (alias ``feedbackHook``).
            **kwargs: pymongo ``MongoClient`` options (``maxPoolSize``, ``w``, ...); anything else goes
                to ``RepositorySessionManager``.
        """
        _check_id(session_id, "session_id")
        self.metadata_hook = metadata_hook or kwargs.pop("metadataHook", None)
        self.feedback_hook = feedback_hook or kwargs.pop("feedbackHook", None)
        client_options = {key: kwargs.pop(key) for key in list(kwargs) if key.lower() in _CLIENT_OPTION_NAMES}
        if client is not None and client_options:
            logger.warning("options=<%s> | client options ignored for a borrowed client", sorted(client_options))
        self.session_repository: MongoDBSessionRepository = MongoDBSessionRepository(
            connection_string=connection_string,
            database_name=database_name,
            collection_name=collection_name,
            client=client,
            metadata_fields=metadata_fields,
            **client_options,
        )
        self._written_metrics: dict[str, tuple[int, dict[str, Any]]] = {}
        try:
            try:
                super().__init__(session_id=session_id, session_repository=self.session_repository, **kwargs)
            except SessionExistsError:  # another request created it between our read and our insert
                super().__init__(session_id=session_id, session_repository=self.session_repository, **kwargs)
        except BaseException:
            self.session_repository.close()
            raise

    # ----------------------------------------------------------------- agent lifecycle

    def initialize(self, agent: "LocalAgent", **kwargs: Any) -> None:
        """Create or restore the agent; a new agent is stored with its model and system prompt."""
        self._stage(agent, with_metrics=False)
        super().initialize(agent, **kwargs)

    def sync_agent(self, agent: "LocalAgent", **kwargs: Any) -> None:
        """Persist what changed in the agent, its config, and the latest assistant message's metrics.

        Everything rides on one write; nothing changed writes nothing.
        """
        metrics = self._stage(agent, with_metrics=True)
        super().sync_agent(agent, **kwargs)
        self.session_repository.flush_agent_update(self.session_id, agent.agent_id)
        if metrics is not None:
            self._written_metrics[agent.agent_id] = metrics

    def _stage(self, agent: "LocalAgent", with_metrics: bool) -> tuple[int, dict[str, Any]] | None:
        """Stage the agent's config (and new metrics) to ride on its next write; return the metrics staged."""
        if not isinstance(agent, Agent):
            return None
        staged = StagedAgentUpdate(agent_data={"model": _model_id(agent), "system_prompt": agent.system_prompt})
        metrics = self._new_metrics(agent) if with_metrics else None
        if metrics is not None:
            staged.message_id, staged.message_fields = metrics[0], {"event_loop_metrics": metrics[1]}
        self.session_repository.stage_agent_update(self.session_id, agent.agent_id, staged)
        return metrics

    def _new_metrics(self, agent: Agent) -> tuple[int, dict[str, Any]] | None:
        """Return (message id, metrics) for the latest assistant message when the totals moved since the last write."""
        latest = self._latest_agent_message.get(agent.agent_id)
        if latest is None or latest.message.get("role") != "assistant":
            return None
        loop = agent.event_loop_metrics
        if loop.accumulated_metrics.get("latencyMs", 0) <= 0:
            return None
        usage = loop.accumulated_usage
        metrics = {
            "accumulated_metrics": {"latencyMs": loop.accumulated_metrics["latencyMs"]},
            "accumulated_usage": {key: usage.get(key, 0) for key in ("inputTokens", "outputTokens", "totalTokens")},
        }
        written = self._written_metrics.get(agent.agent_id)
        if written is not None and written[1] == metrics:
            return None  # strands updates the totals after the message event: these belong to an earlier message
        return latest.message_id, metrics

    # ----------------------------------------------------------------- agent config

    def get_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        """Return ``{"agent_id", "model", "system_prompt"}`` for an agent of this session, or None."""
        return self.session_repository.get_agent_config(self.session_id, agent_id)

    def update_agent_config(self, agent_id: str, model: str | None = None, system_prompt: str | None = None) -> None:
        """Change an agent's stored model and/or system prompt (``None`` leaves a field as it is).

        Raises:
            SessionNotFoundError: The session or agent does not exist (a ``ValueError``).
        """
        self.session_repository.update_agent_config(self.session_id, agent_id, model, system_prompt)

    def list_agents(self) -> list[dict[str, Any]]:
        """Return ``{"agent_id", "model", "system_prompt"}`` for every agent of this session."""
        return self.session_repository.list_agents(self.session_id)

    # ----------------------------------------------------------------- metadata

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Set the given metadata fields and keep every other one; ``"a.b"`` sets a nested field.

        Raises:
            InvalidMetadataKeyError: A key is not a string or has an empty or ``$`` segment (nothing written).
            SessionDataError: A value cannot be stored in MongoDB (nothing written).
        """

        def update(metadata: dict[str, Any]) -> None:
            self.session_repository.update_metadata(self.session_id, metadata)

        return self._intercept(self.metadata_hook, "update", update, metadata=metadata)

    def get_metadata(self) -> dict[str, Any]:
        """Return ``{"metadata": {...}}`` with all of the session's metadata."""

        def get() -> dict[str, Any]:
            return self.session_repository.get_metadata(self.session_id)

        return self._intercept(self.metadata_hook, "get", get)

    def delete_metadata(self, metadata_keys: list[str]) -> None:
        """Remove the given metadata fields and keep every other one."""

        def delete(keys: list[str]) -> None:
            self.session_repository.delete_metadata(self.session_id, keys)

        return self._intercept(self.metadata_hook, "delete", delete, keys=metadata_keys)

    def get_metadata_tool(self) -> "DecoratedFunctionTool":
        """Return the ``manage_metadata`` strands tool bound to this session."""
        from .metadata_tool import create_metadata_tool

        return create_metadata_tool(self)

    # ----------------------------------------------------------------- feedback

    def add_feedback(self, feedback: dict[str, Any]) -> None:
        """Store user feedback (``rating`` "up"/"down"/None, ``comment``, any extra fields) with ``created_at``."""
        if not isinstance(feedback, dict):
            raise TypeError(f"feedback must be a dict, not {type(feedback).__name__}")

        def add(feedback: dict[str, Any]) -> None:
            self.session_repository.add_feedback(self.session_id, feedback)

        return self._intercept(self.feedback_hook, "add", add, feedback=feedback)

    def get_feedbacks(self) -> list[dict[str, Any]]:
        """Return all feedback of this session in the order it was given."""
        return self.session_repository.get_feedbacks(self.session_id)

    # ----------------------------------------------------------------- viewer and lifecycle

    def get_session_viewer_password(self) -> str | None:
        """Return the password the Session Viewer asks for to open this session."""
        return self.session_repository.get_viewer_password(self.session_id)

    def close(self) -> None:
        """Close the MongoDB client if this manager created it (a borrowed client stays open)."""
        self.session_repository.close()

    def __enter__(self) -> "MongoDBSessionManager":
        """Use the manager as a context manager that closes on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the ``with`` block."""
        self.close()

    def _intercept(self, hook: Hook | None, action: str, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """Run an operation directly, or as ``hook(operation, action, session_id, **kwargs)`` when hooked.

        The operation carries ``operation.session_manager`` (this manager) for hooks that need more of the
        session, such as its viewer password.
        """
        if hook is None:
            return operation(**kwargs)
        operation.session_manager = self  # type: ignore[attr-defined]
        return hook(operation, action, self.session_id, **kwargs)


def _check_id(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}=<{value!r}> | {name} must be a non-empty string")


def _model_id(agent: Agent) -> str | None:
    config = agent.model.get_config()
    model_id = config.get("model_id") if isinstance(config, dict) else getattr(config, "model_id", None)
    return str(model_id) if model_id is not None else None
