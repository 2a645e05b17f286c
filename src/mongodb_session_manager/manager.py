"""``MongoDBSessionManager``: strands' ``RepositorySessionManager`` plus metrics, config, metadata and feedback."""

import difflib
import inspect
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import MongoClient
from pymongo.common import VALIDATORS
from strands.agent.agent import Agent
from strands.hooks.events import AfterInvocationEvent, AfterModelCallEvent, BeforeInvocationEvent, BeforeModelCallEvent
from strands.hooks.registry import HookRegistry
from strands.middleware import InvokeModelStage
from strands.models.bedrock import DEFAULT_BEDROCK_MODEL_ID, BedrockModel
from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from . import documents as docs
from ._guardrails import REDACTED, ModelCalls, Redaction, guardrail_event, watch_model_stream
from ._metrics import METRICS_FIELD, InvocationMetrics
from ._off_loop import OffLoopCallbacks
from .encryption import EncryptionSettings
from .errors import SessionExistsError
from .repository import DEFAULT_MAX_EMBEDDED_MESSAGES, MongoDBSessionRepository

if TYPE_CHECKING:
    from strands.tools.decorator import DecoratedFunctionTool
    from strands.types.agent import LocalAgent
    from strands.types.content import Message

logger = logging.getLogger(__name__)

Hook = Callable[..., Any]
"""An interceptor: ``hook(original_func, action, session_id, **kwargs)`` returns what the operation returns."""

_CLIENT_OPTION_NAMES = set(VALIDATORS) | {"host", "port"}


class MongoDBSessionManager(RepositorySessionManager):
    """Persists strands agents in MongoDB, one document per session.

    On top of strands' session contract it stores each invocation's cost (latency, tokens) on the
    assistant message that closes it, records the agent's model and system prompt, and offers session
    metadata and user feedback, each optionally intercepted by a hook.
    """

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        database_name: str = docs.DEFAULT_DATABASE,
        collection_name: str = docs.DEFAULT_COLLECTION,
        client: MongoClient | None = None,
        metadata_fields: Sequence[str] | None = None,
        metadata_hook: Hook | None = None,
        feedback_hook: Hook | None = None,
        message_storage: str = docs.EMBEDDED,
        max_embedded_messages: int = DEFAULT_MAX_EMBEDDED_MESSAGES,
        ttl_hours: float | None = None,
        application_name: str | None = None,
        encryption: EncryptionSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Open (or create) the session.

        Args:
            session_id: Id of the session document; created when it does not exist yet.
            connection_string: MongoDB URI. Without it and without ``client``, ``MONGODB_URI`` or the
                embedded development server is used.
            database_name: Database holding the sessions (default ``"database_name"``, `documents.DEFAULT_DATABASE`).
            collection_name: Collection holding one document per session (default ``"collection_name"``).
            client: A shared ``MongoClient`` to borrow; `close` leaves it open.
            metadata_fields: Metadata fields to index for searching.
            metadata_hook: Interceptor for metadata ``update``/``get``/``delete`` (alias ``metadataHook``).
            feedback_hook: Interceptor for feedback ``add`` (alias ``feedbackHook``).
            message_storage: Layout of new agents' messages: ``"embedded"`` (in the session document) or
                ``"collection"`` (one document per message in ``<collection_name>.messages``).
            max_embedded_messages: An embedded agent holding this many messages moves to the collection
                layout on its next append (so does one whose next message would not fit in 16 MB).
            ttl_hours: The session expires this many hours after its last write (every write moves
                ``expires_at``; MongoDB's TTL monitor deletes it, see `hold_session`). None: it never expires.
            application_name: The application this manager runs in; stored on the session when this manager
                creates it and never changed afterwards (an existing session keeps its own; a different one
                logs a warning). See `get_application_name`.
            encryption: Client-side field-level encryption of the session (the ``encryption`` extra; see
                `EncryptionSettings`): a session this manager creates gets its own data key, and its messages,
                agent states, system prompt, feedback comments, viewer password and configured metadata fields
                are stored encrypted. A session created without encryption stays clear.
            **kwargs: pymongo ``MongoClient`` options (``maxPoolSize``, ``w``, ...; names as pymongo
                spells them, in any case) and the arguments strands' ``RepositorySessionManager`` takes.

        Raises:
            InvalidIdError: ``session_id`` is not a non-empty string (nothing is connected).
            InvalidApplicationNameError: ``application_name`` is not a non-empty string of at most 128
                characters without NUL (nothing is connected).
            ImportError: ``encryption`` without the ``encryption`` extra installed (nothing is connected).
            EncryptionKeyError: The session is encrypted and cannot be decrypted with ``encryption`` (none given,
                a wrong master key); `SessionKeyErasedError` when its keys were erased.
            TypeError: A keyword argument is none of the above (nothing is connected).
            ValueError: ``message_storage``, ``max_embedded_messages`` or ``ttl_hours`` is invalid (nothing is
                connected).
        """
        docs.validate_ids(session_id=session_id)
        _check_keywords("MongoDBSessionManager", kwargs, MANAGER_KEYWORDS)
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
            message_storage=message_storage,
            max_embedded_messages=max_embedded_messages,
            ttl_hours=ttl_hours,
            application_name=application_name,
            encryption=encryption,
            **client_options,
        )
        self._invocation_metrics = InvocationMetrics()
        self._model_calls = ModelCalls()
        self._seen_config: dict[str, tuple[str | None, str | None]] = {}
        self._off_loop = OffLoopCallbacks()
        try:
            try:
                super().__init__(session_id=session_id, session_repository=self.session_repository, **kwargs)
            except SessionExistsError:  # another request created it between our read and our insert
                super().__init__(session_id=session_id, session_repository=self.session_repository, **kwargs)
        except BaseException:
            self.session_repository.close()
            raise

    # ----------------------------------------------------------------- agent lifecycle

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Register strands' persistence callbacks, with their MongoDB I/O off the event loop where strands awaits them.

        Under ``stream_async``/``invoke_async`` (and the loop strands runs ``agent(...)`` on), each message,
        sync and multi-agent write runs in a worker thread while the loop serves other tasks; strands awaits
        the callbacks in order, so the writes keep their order. Agent initialization stays synchronous:
        strands calls it from the ``Agent`` constructor.

        The invocation callbacks measure what each invocation costs (`InvocationMetrics`): the start and
        the model calls are bookkeeping in memory, the end writes only when the closing message's own
        write could not carry its figures.
        """
        off_loop = self._off_loop.registry(registry)
        super().register_hooks(off_loop, **kwargs)
        registry.add_callback(BeforeInvocationEvent, self._start_invocation)
        registry.add_callback(AfterModelCallEvent, self._end_model_call)
        registry.add_callback(BeforeModelCallEvent, self._start_model_call)
        registry.add_callback(AfterModelCallEvent, self._write_model_call_redactions)
        off_loop.add_callback(AfterInvocationEvent, self._end_invocation)

    def initialize(self, agent: "LocalAgent", **kwargs: Any) -> None:
        """Create or restore the agent, then record its model and system prompt where they are new.

        ``None`` on the agent never replaces a recorded value, nor does the model strands picks for an
        ``Agent`` built without one; an unchanged config costs no command.
        """
        docs.validate_ids(agent_id=agent.agent_id)
        super().initialize(agent, **kwargs)
        if isinstance(agent, Agent):
            agent.add_middleware(InvokeModelStage, watch_model_stream(self._model_calls))  # guardrail traces
            current, config = self._config_to_record(agent)
            if config:
                self.session_repository.update_agent_config(self.session_id, agent.agent_id, **config)
            self._seen_config[agent.agent_id] = current

    def sync_agent(self, agent: "LocalAgent", **kwargs: Any) -> None:
        """Persist what changed in the agent; a changed model or system prompt rides on the same write.

        Nothing changed writes nothing.
        """
        docs.validate_ids(agent_id=agent.agent_id)
        if isinstance(agent, Agent):
            current, config = self._config_to_record(agent)
            if config:  # one explicit write with the state; strands' own sync below then finds nothing changed
                session_agent = SessionAgent.from_agent(agent)
                self.session_repository.update_agent(self.session_id, session_agent, agent_config=config)
            self._seen_config[agent.agent_id] = current
        super().sync_agent(agent, **kwargs)

    def append_message(self, message: "Message", agent: "LocalAgent", **kwargs: Any) -> None:
        """Store a new message of the agent (strands' behaviour); a message closing an invocation carries its cost.

        The invocation's ``event_loop_metrics`` ride on the message's own ``$push``.
        """
        docs.validate_ids(agent_id=agent.agent_id)
        latest = self._latest_agent_message[agent.agent_id]
        session_message = SessionMessage.from_message(message, latest.message_id + 1 if latest is not None else 0)
        metrics = self._invocation_metrics.on_message(agent, message, session_message.message_id)
        extra_fields = {METRICS_FIELD: metrics} if metrics is not None else None
        self._latest_agent_message[agent.agent_id] = session_message
        self.session_repository.create_message(
            self.session_id, agent.agent_id, session_message, extra_fields=extra_fields
        )
        self._held_records.setdefault(agent.agent_id, []).append(session_message)

    def redact_latest_message(
        self,
        redact_message: "Message",
        agent: "LocalAgent",
        *,
        stop_reason: str | None = None,
        guardrail_trace: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Replace the agent's latest message (strands' behaviour) and record the redaction as a guardrail event.

        The stored message gets ``guardrail_event`` ``{action: "redacted", timestamp, stop_reason?,
        policies_triggered?, trace?}`` and the session document's bounded ``guardrail_summary`` counts it, in one
        update (embedded layout) or two (collection layout). strands calls this while a model streams a
        guardrail's ``redactContent`` event: the write then waits for the end of that model call (a moment
        later, before the answer is stored), so that it records the call's stop reason and guardrail trace.
        Called outside a model call, it writes at once.

        Args:
            redact_message: The message that replaces the latest one.
            agent: The agent whose latest message is redacted.
            stop_reason: The model's stop reason to record (default: the model call's, when strands redacts).
            guardrail_trace: A guardrail trace to record (Amazon Bedrock's ``trace["guardrail"]``, or the
                whole ``trace``); default: the one the model call streamed. Stored without its ``match`` and
                ``modelOutput`` text.
            **kwargs: Ignored (strands' signature).

        Raises:
            SessionException: The agent has no message yet.
            SessionNotFoundError: The session, agent or message no longer exists.
        """
        docs.validate_ids(agent_id=agent.agent_id)
        latest = self._latest_agent_message[agent.agent_id]
        if latest is None:
            raise SessionException("No message to redact.")
        latest.redact_message = redact_message
        held = self._held_records.get(agent.agent_id, [])  # a retried prompt may be held twice: rewrite both
        twins = [record for record in held if record is not latest and record.to_message() is redact_message]
        redaction = Redaction(latest, docs.utc_now(), twins, stop_reason, guardrail_trace)
        if not self._model_calls.defer(agent.agent_id, redaction):
            self._write_redactions(agent.agent_id, [redaction])

    def _write_redactions(self, agent_id: str, redactions: list[Redaction]) -> None:
        for redaction in redactions:
            event = guardrail_event(REDACTED, redaction.timestamp, redaction.stop_reason, redaction.trace)
            self.session_repository.record_redaction(self.session_id, agent_id, redaction.record, event)
            for twin in redaction.twins:
                self.session_repository.update_message(self.session_id, agent_id, twin)
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | message_id=<%s> | redaction recorded",
                self.session_id,
                agent_id,
                redaction.record.message_id,
            )

    def _start_model_call(self, event: BeforeModelCallEvent) -> None:
        self._model_calls.open(event.agent.agent_id)

    async def _write_model_call_redactions(self, event: AfterModelCallEvent) -> None:
        """Write the redactions made during the model call that ended, off the event loop (none: no cost)."""
        response = event.stop_response
        agent_id = event.agent.agent_id
        redactions = self._model_calls.close(agent_id, response.stop_reason if response is not None else None)
        if redactions:
            await self._off_loop.wrap(lambda _: self._write_redactions(agent_id, redactions))(event)

    def _start_invocation(self, event: BeforeInvocationEvent) -> None:
        self._invocation_metrics.start(event.agent)

    def _end_model_call(self, event: AfterModelCallEvent) -> None:
        self._invocation_metrics.model_call_ended(event)

    def _end_invocation(self, event: AfterInvocationEvent) -> None:
        """Store the invocation's figures on its closing message when its ``$push`` could not carry them.

        A redaction still waiting for a model call that never ended (a cancelled task) is written first.
        """
        self._write_redactions(event.agent.agent_id, self._model_calls.close(event.agent.agent_id, None))
        correction = self._invocation_metrics.end(event.agent)
        if correction is not None:
            self.session_repository.set_message_fields(
                self.session_id,
                event.agent.agent_id,
                correction.message_id,
                {METRICS_FIELD: correction.metrics},
                move_from=correction.move_from,
            )

    def _config_to_record(self, agent: Agent) -> tuple[tuple[str | None, str | None], dict[str, Any]]:
        """Return the agent's (model id, system prompt) and the fields of it to record: new non-None values only.

        Compared with the record only when the agent object's config changed since it was last recorded
        (cheap on every sync). strands' default model (an ``Agent`` built without ``model``) is recorded
        only while no model is.
        """
        current = (_model_id(agent), agent.system_prompt)
        if self._seen_config.get(agent.agent_id) == current:
            return current, {}
        model, system_prompt = current
        recorded = self.session_repository.known_agent_config(self.session_id, agent.agent_id) or {}
        config: dict[str, Any] = {}
        if system_prompt is not None and system_prompt != recorded.get("system_prompt"):
            config["system_prompt"] = system_prompt
        keeps_recorded_model = recorded.get("model") is not None and _is_strands_default_model(agent.model)
        if model is not None and model != recorded.get("model") and not keeps_recorded_model:
            config["model"] = model
        return current, config

    # ----------------------------------------------------------------- agent config

    def get_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        """Return ``{"agent_id", "model", "system_prompt", "prompt_metadata"}`` for an agent of this session, or None.

        Every key is always there: a field never stored (``prompt_metadata`` before `set_prompt_metadata`) is None.
        """
        return self.session_repository.get_agent_config(self.session_id, agent_id)

    def update_agent_config(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change an agent's stored model, system prompt and/or prompt metadata; return the resulting config.

        ``None`` leaves a field as it is; ``prompt_metadata`` replaces the stored one (see `set_prompt_metadata`).

        Returns:
            The agent's config after the change, as `get_agent_config` returns it (one command).

        Raises:
            TypeError: ``prompt_metadata`` is not a dict (nothing written).
            SessionDataError: ``prompt_metadata`` cannot be stored in MongoDB (nothing written).
            SessionNotFoundError: The session or agent does not exist (a ``ValueError``).
        """
        return self.session_repository.update_agent_config(
            self.session_id, agent_id, model, system_prompt, prompt_metadata
        )

    def set_prompt_metadata(self, agent_id: str, metadata: dict[str, Any]) -> None:
        """Record what the application knows about an agent's prompt: id, name, version, deployment, temperature, ...

        The dict replaces the agent's previous prompt metadata and comes back under ``prompt_metadata`` from
        `get_agent_config`, `list_agents` and `update_agent_config`; any JSON-like values, any string keys.
        Stored beside the agent's strands data (``agent_data.prompt_metadata``): restoring the agent is
        unaffected. One update; setting the same metadata again costs no command.

        Raises:
            TypeError: ``metadata`` is not a dict (nothing written).
            SessionDataError: A key is not a string or a value cannot be stored in MongoDB (nothing written).
            SessionNotFoundError: The session or agent does not exist (a ``ValueError``).
        """
        self.session_repository.set_prompt_metadata(self.session_id, agent_id, metadata)

    def list_agents(self) -> list[dict[str, Any]]:
        """Return ``{"agent_id", "model", "system_prompt", "prompt_metadata"}`` for every agent of this session."""
        return self.session_repository.list_agents(self.session_id)

    # ----------------------------------------------------------------- metadata

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Set the given metadata fields and keep every other one; ``"a.b"`` sets a nested field.

        Raises:
            TypeError: ``metadata`` is not a dict (nothing written, the hook is not called).
            InvalidMetadataKeyError: A key is not a string or has an empty or ``$`` segment (nothing written).
            SessionDataError: A value cannot be stored in MongoDB, or a dotted key runs through a stored
                value that is not a dict (nothing written).
        """
        docs.check_metadata_mapping(metadata)

        def update(metadata: dict[str, Any]) -> None:
            self.session_repository.update_metadata(self.session_id, metadata)

        return self._intercept(self.metadata_hook, "update", update, metadata=metadata)

    def get_metadata(self) -> dict[str, Any]:
        """Return ``{"metadata": {...}}`` with all of the session's metadata."""

        def get() -> dict[str, Any]:
            return self.session_repository.get_metadata(self.session_id)

        return self._intercept(self.metadata_hook, "get", get)

    def delete_metadata(self, metadata_keys: str | list[str]) -> None:
        """Remove the given metadata fields and keep every other one; ``"a.b"`` removes a nested field.

        A bare string is one key: ``delete_metadata("theme")`` is ``delete_metadata(["theme"])``.
        """
        keys = docs.metadata_key_list(metadata_keys)

        def delete(keys: list[str]) -> None:
            self.session_repository.delete_metadata(self.session_id, keys)

        return self._intercept(self.metadata_hook, "delete", delete, keys=keys)

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

    # ----------------------------------------------------------------- data lifecycle

    def hold_session(self) -> None:
        """Put this session under legal hold: it never expires until `release_session` (one update).

        Raises:
            SessionNotFoundError: The session was deleted.
        """
        self.session_repository.hold_session(self.session_id)

    def release_session(self) -> None:
        """Lift this session's legal hold; with ``ttl_hours`` it expires that long from now (one update).

        Raises:
            SessionNotFoundError: The session was deleted.
        """
        self.session_repository.release_session(self.session_id)

    def prune_messages(self, agent_id: str, keep_last: int) -> int:
        """Delete an agent's oldest stored messages, keeping its ``keep_last`` newest; return how many went.

        Only storage changes: an ``Agent`` already in memory keeps its messages until it is restored.
        A restored agent gets the kept messages in order (its conversation manager's offset stays valid:
        message ids are never renumbered) and continues the conversation after them.

        Raises:
            ValueError: ``keep_last`` is not a positive int.
            SessionNotFoundError: The session or agent does not exist.
        """
        return self.session_repository.prune_messages(self.session_id, agent_id, keep_last)

    def erase_session_keys(self, session_id: str | None = None) -> int:
        """Delete a session's data keys: its encrypted fields become unreadable everywhere, backups included.

        `MongoDBSessionRepository.erase_session_keys` for this session, or for ``session_id`` when given (needs
        ``encryption``): later reads and writes of its encrypted fields raise `SessionKeyErasedError`; listing
        it still works.

        Returns:
            How many data keys were deleted (0 when they already were).

        Raises:
            InvalidIdError: ``session_id`` is given and is not a non-empty string (nothing was sent).
            ValueError: This manager has no ``encryption`` settings.
        """
        return self.session_repository.erase_session_keys(self.session_id if session_id is None else session_id)

    # ----------------------------------------------------------------- viewer and lifecycle

    def get_application_name(self) -> str | None:
        """Return the ``application_name`` this session was created with (one find).

        None for a session created without one, for example by an earlier version of this library.
        """
        return self.session_repository.get_application_name(self.session_id)

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


def _check_keywords(function: str, names: Iterable[str], allowed: Collection[str] = ()) -> None:
    """Refuse a keyword argument that is neither a pymongo client option (any case) nor in ``allowed``.

    Raises:
        TypeError: Worded like Python's own: ``f() got an unexpected keyword argument 'name'``.
    """
    for name in names:
        if name in allowed or name.lower() in _CLIENT_OPTION_NAMES:
            continue
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def _named_parameters(function: Callable[..., Any]) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}


MANAGER_KEYWORDS = frozenset(
    (_named_parameters(MongoDBSessionManager.__init__) - {"session_id"})
    | (_named_parameters(RepositorySessionManager.__init__) - {"session_id", "session_repository"})
    | {"metadataHook", "feedbackHook"}
)
"""Keyword arguments ``MongoDBSessionManager`` takes besides client options (strands' own included)."""


def _model_id(agent: Agent) -> str | None:
    config = agent.model.get_config()
    model_id = config.get("model_id") if isinstance(config, dict) else getattr(config, "model_id", None)
    return str(model_id) if model_id is not None else None


def _is_strands_default_model(model: object) -> bool:
    """True for the ``BedrockModel`` strands builds for an ``Agent`` given no model.

    Its id depends on the region (``us.``, ``eu.``, ``global.`` ... followed by strands' default model
    name), so it says nothing about what the user chose. A ``BedrockModel`` given that same id explicitly
    cannot be told apart and is treated the same way.
    """
    if type(model) is not BedrockModel:
        return False
    model_id = str(model.get_config().get("model_id") or "")
    default_name = DEFAULT_BEDROCK_MODEL_ID.partition(".")[2]
    return model_id == DEFAULT_BEDROCK_MODEL_ID or model_id.partition(".")[2] == default_name
