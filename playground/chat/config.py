"""Playground settings: environment variables (``PLAYGROUND_*``, plus ``MONGODB_URI``) and ``.env``."""

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from mongodb_session_manager.documents import DEFAULT_COLLECTION, DEFAULT_DATABASE
from mongodb_session_manager.startup import SERVER_SELECTION_TIMEOUT_MS
from web_common.settings import WebSettings

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly assistant in the mongodb-session-manager chat playground. Keep answers short. Use the "
    "calculator tool for arithmetic. When the user tells you a fact about themselves or a preference, store it "
    "with the manage_metadata tool (action 'set', short snake_case keys)."
)

DEFAULT_MAX_REQUEST_BYTES = 65536
"""Longest URL or body accepted by default: a chat request of 4000 characters, each a JSON-escaped emoji, fits."""


def chat_request_bytes(max_message_chars: int) -> int:
    """The largest JSON chat request a message of ``max_message_chars`` characters can make.

    Worst case 12 bytes a character (an emoji escaped as a ``\\uXXXX\\uXXXX`` surrogate pair), plus the session
    id (at most 128 characters) and the keys.
    """
    return 12 * max_message_chars + 512


class Settings(WebSettings):
    """Configuration of the chat playground backend.

    ``PLAYGROUND_ALLOWED_HOSTS``, ``PLAYGROUND_MAX_REQUEST_BYTES`` and ``ENV`` are the shared ones of
    `web_common.settings.WebSettings`.
    """

    model_config = SettingsConfigDict(
        env_prefix="PLAYGROUND_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    mongodb_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("mongodb_uri", "MONGODB_URI", "PLAYGROUND_MONGODB_URI"),
        description="MongoDB URI; unset starts the embedded development server.",
    )
    database_name: str = Field(default=DEFAULT_DATABASE, min_length=1)
    collection_name: str = Field(default=DEFAULT_COLLECTION, min_length=1)
    message_storage: Literal["embedded", "collection"] = Field(
        default="embedded",
        description="Where new conversations keep their messages: in the session document (the library's default) "
        "or one document per message in <collection>.messages. Both are read whatever the setting.",
    )
    server_selection_timeout_ms: int = Field(
        default=SERVER_SELECTION_TIMEOUT_MS,
        ge=100,
        description="How long to wait for MongoDB before giving up (at start-up and on each request).",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8880, ge=0, le=65535)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_message_chars: int = Field(default=4000, ge=1, le=100_000)
    demo_token_delay_ms: int = Field(
        default=35,
        ge=0,
        le=1000,
        description="Pause after each streamed token, only with the offline demo model (which has no latency of "
        "its own), so that streaming can be seen. Real models stream at their own pace.",
    )
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        ge=256,
        description="Longest URL (else 414) or body (else 413), in bytes; must hold a request of "
        "PLAYGROUND_MAX_MESSAGE_CHARS characters.",
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check_request_size(self) -> "Settings":
        """Refuse a request-size cap too small for the longest message accepted."""
        needed = chat_request_bytes(self.max_message_chars)
        if self.max_request_bytes < needed:
            raise ValueError(
                f"PLAYGROUND_MAX_REQUEST_BYTES ({self.max_request_bytes}) must be at least {needed} to hold a message "
                f"of PLAYGROUND_MAX_MESSAGE_CHARS ({self.max_message_chars}) characters"
            )
        return self

    @property
    def bound_host(self) -> str:
        """``PLAYGROUND_HOST``: with the loopback names, the ``Host`` allowed without ``PLAYGROUND_ALLOWED_HOSTS``."""
        return self.host
