"""Playground settings: environment variables (``PLAYGROUND_*``, plus ``MONGODB_URI``) and ``.env``."""

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mongodb_session_manager.documents import DEFAULT_COLLECTION, DEFAULT_DATABASE
from mongodb_session_manager.startup import SERVER_SELECTION_TIMEOUT_MS

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly assistant in the mongodb-session-manager chat playground. Keep answers short. Use the "
    "calculator tool for arithmetic. When the user tells you a fact about themselves or a preference, store it "
    "with the manage_metadata tool (action 'set', short snake_case keys)."
)


class Settings(BaseSettings):
    """Configuration of the chat playground backend."""

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
    log_level: str = "INFO"
