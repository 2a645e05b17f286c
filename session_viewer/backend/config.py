"""Session Viewer settings: environment variables and ``.env``, validated at start-up."""

import json
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mongodb_session_manager.documents import DEFAULT_COLLECTION, DEFAULT_DATABASE
from mongodb_session_manager.encryption import (
    DEFAULT_KEY_VAULT_NAMESPACE,
    EncryptionSettings,
    load_local_key,
    require_encryption_support,
)
from mongodb_session_manager.startup import SERVER_SELECTION_TIMEOUT_MS
from web_common.settings import WebSettings

MIN_PASSWORD_LENGTH = 16
"""Shortest ``BACKEND_PASSWORD`` accepted."""

_METADATA_PREFIX = "metadata."


def _split(value: str) -> list[str]:
    """Split a comma-separated setting into its non-empty, stripped items."""
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(WebSettings):
    """Configuration of the Session Viewer backend (every variable is documented in ``.env.example``).

    ``ALLOWED_HOSTS``, ``MAX_REQUEST_BYTES`` and ``ENV`` are the shared ones of `web_common.settings.WebSettings`.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    mongodb_uri: str | None = Field(
        default=None, description="MongoDB URI; unset starts the embedded development server."
    )
    database_name: str = Field(default=DEFAULT_DATABASE, min_length=1)
    collection_name: str = Field(
        default=DEFAULT_COLLECTION, min_length=1, description="The collection shown first; the header switches."
    )
    snapshot_collection_name: str = Field(
        default="strands_storage",
        min_length=1,
        description="MongoDBStorage collection (in DATABASE_NAME) whose snapshot sessions are listed, if it exists.",
    )
    backend_password: SecretStr | None = Field(
        default=None, description=f"Password for full access, at least {MIN_PASSWORD_LENGTH} characters."
    )
    backend_host: str = "127.0.0.1"
    backend_port: int = Field(default=8882, ge=0, le=65535)
    allowed_origins_str: str = Field(default="", description="Comma-separated CORS origins; '*' is refused.")
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    enum_fields_str: str = Field(default="", description="Comma-separated metadata fields offered as value lists.")
    enum_max_values: int = Field(default=50, ge=1, le=1000)
    password_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords per client (and per session) before 429 for a while."
    )
    password_failure_window_seconds: int = Field(
        default=60, ge=1, description="How long a wrong password counts towards PASSWORD_MAX_FAILURES, in seconds."
    )
    server_selection_timeout_ms: int = Field(default=SERVER_SELECTION_TIMEOUT_MS, ge=100)
    log_level: str = "INFO"
    encryption_local_key_file: Path | None = Field(
        default=None, description="A 96-byte local master key file: the viewer decrypts encrypted sessions with it."
    )
    encryption_kms_providers_file: Path | None = Field(
        default=None,
        description="A JSON file of pymongo kms_providers (aws, azure, gcp, kmip credentials) to decrypt with.",
    )
    encryption_key_vault: str = Field(
        default=DEFAULT_KEY_VAULT_NAMESPACE, description="<database>.<collection> of the key vault."
    )
    encryption_key_vault_uri: SecretStr | None = Field(
        default=None, description="MongoDB URI of a key vault on another cluster; unset: MONGODB_URI's."
    )
    encryption_deterministic_fields: str = Field(
        default="", description="Comma-separated metadata fields encrypted deterministically (filterable with a key)."
    )
    encryption_random_fields: str = Field(
        default="", description="Comma-separated metadata fields encrypted randomly (never filterable)."
    )
    _encryption: EncryptionSettings | None = PrivateAttr(default=None)

    @field_validator("backend_password", mode="before")
    @classmethod
    def _check_password(cls, value: object) -> object:
        """Refuse a short password; an empty one counts as unset (a random one is generated then)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or len(raw) < MIN_PASSWORD_LENGTH:
            raise ValueError(
                f"BACKEND_PASSWORD must be at least {MIN_PASSWORD_LENGTH} characters long "
                "(or leave it unset to have a random one generated and printed at start-up)"
            )
        return raw

    @field_validator("encryption_local_key_file", "encryption_kms_providers_file", mode="before")
    @classmethod
    def _empty_file_is_unset(cls, value: object) -> object:
        """An empty file name counts as unset (``.env.example`` lists them empty)."""
        return None if value == "" else value

    @field_validator("encryption_key_vault_uri", mode="before")
    @classmethod
    def _empty_uri_is_unset(cls, value: object) -> object:
        """An empty URI counts as unset."""
        return None if value == "" else value

    @field_validator("allowed_origins_str")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        """Refuse the wildcard origin: the API authenticates with headers, so origins must be named."""
        if "*" in _split(value):
            raise ValueError("ALLOWED_ORIGINS_STR must list origins explicitly; '*' is not allowed")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        """Accept the standard logging level names in any case."""
        level = value.upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return level

    @model_validator(mode="after")
    def _check_page_sizes(self) -> "Settings":
        """Keep the default page size within the maximum."""
        if self.default_page_size > self.max_page_size:
            raise ValueError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE")
        return self

    @model_validator(mode="after")
    def _load_encryption(self) -> "Settings":
        """Read the key access once (the key file, the KMS providers file) into the library's settings.

        Raises:
            ValueError: A file cannot be read or holds no valid key or providers, a field list is invalid, or
                the ``encryption`` extra is not installed.
        """
        providers = _kms_providers(self.encryption_local_key_file, self.encryption_kms_providers_file)
        if not providers:
            self._encryption = None
            return self
        try:
            require_encryption_support()
        except ImportError as error:
            raise ValueError(f"decrypting sessions needs the encryption extra: {error}") from error
        provider = "local" if "local" in providers else next(iter(providers))
        # The viewer only decrypts: it never makes a data key, so a cloud KMS needs no master key here.
        master_key: dict[str, Any] | None = None if provider.partition(":")[0] in ("local", "kmip") else {}
        vault_uri = self.encryption_key_vault_uri
        try:
            self._encryption = EncryptionSettings(
                kms_providers=providers,
                key_vault_namespace=self.encryption_key_vault,
                kms_provider=provider,
                master_key=master_key,
                deterministic_metadata_fields=self.deterministic_fields,
                random_metadata_fields=self.random_fields,
                key_vault_uri=vault_uri.get_secret_value() if vault_uri is not None else None,
            )
        except TypeError as error:
            raise ValueError(str(error)) from error
        return self

    @property
    def encryption(self) -> EncryptionSettings | None:
        """The key access to decrypt encrypted sessions with (None: encrypted values are shown as not readable)."""
        return self._encryption

    @property
    def deterministic_fields(self) -> list[str]:
        """``ENCRYPTION_DETERMINISTIC_FIELDS``: metadata fields (without ``metadata.``) encrypted deterministically."""
        return [item.removeprefix(_METADATA_PREFIX) for item in _split(self.encryption_deterministic_fields)]

    @property
    def random_fields(self) -> list[str]:
        """``ENCRYPTION_RANDOM_FIELDS``: metadata fields (without ``metadata.``) encrypted randomly."""
        return [item.removeprefix(_METADATA_PREFIX) for item in _split(self.encryption_random_fields)]

    @property
    def bound_host(self) -> str:
        """``BACKEND_HOST``: with the loopback names, the ``Host`` allowed without ``ALLOWED_HOSTS``."""
        return self.backend_host

    @property
    def allowed_origins(self) -> list[str]:
        """CORS origins allowed to call the API."""
        return _split(self.allowed_origins_str)

    @property
    def enum_fields(self) -> set[str]:
        """Metadata field names (without the ``metadata.`` prefix) offered as value lists."""
        return {item.removeprefix(_METADATA_PREFIX) for item in _split(self.enum_fields_str)}

    def resolve_password(self) -> tuple["Settings", str | None]:
        """Return settings with a backend password, generating a random one when none is configured.

        Returns:
            The settings to run with, and the generated password (None when one was configured).
        """
        if self.backend_password is not None:
            return self, None
        generated = secrets.token_urlsafe(24)
        return self.model_copy(update={"backend_password": SecretStr(generated)}), generated


def _kms_providers(key_file: Path | None, providers_file: Path | None) -> dict[str, Any]:
    """pymongo's ``kms_providers`` from ``ENCRYPTION_LOCAL_KEY_FILE`` and ``ENCRYPTION_KMS_PROVIDERS_FILE``.

    Raises:
        ValueError: A file cannot be read, the key is not 96 bytes, or the JSON is not an object of objects
            (a ``local`` key belongs in the key file).
    """
    providers: dict[str, Any] = {}
    if providers_file is not None:
        try:
            loaded = json.loads(providers_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"ENCRYPTION_KMS_PROVIDERS_FILE={providers_file} is no JSON file: {error}") from error
        if not isinstance(loaded, dict) or not all(isinstance(value, dict) for value in loaded.values()):
            raise ValueError(
                f"ENCRYPTION_KMS_PROVIDERS_FILE={providers_file} must hold a JSON object such as "
                '{"aws": {"accessKeyId": "...", "secretAccessKey": "..."}}'
            )
        if any(name.partition(":")[0] == "local" for name in loaded):
            raise ValueError("a local master key goes in ENCRYPTION_LOCAL_KEY_FILE, not ENCRYPTION_KMS_PROVIDERS_FILE")
        providers.update(loaded)
    if key_file is not None:
        try:
            providers["local"] = {"key": load_local_key(key_file)}
        except OSError as error:
            raise ValueError(f"ENCRYPTION_LOCAL_KEY_FILE={key_file} cannot be read: {error.strerror}") from error
        except ValueError as error:
            raise ValueError(f"ENCRYPTION_LOCAL_KEY_FILE: {error}") from error
    return providers
