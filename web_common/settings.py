"""The settings both web apps share: the ``Host`` allow-list, the request-size cap and the production guard.

Each app's ``Settings`` subclasses `WebSettings` and says where it listens (`WebSettings.bound_host`). The
variables take the app's ``env_prefix`` (``ALLOWED_HOSTS`` and ``MAX_REQUEST_BYTES`` for the Session Viewer,
``PLAYGROUND_ALLOWED_HOSTS`` and ``PLAYGROUND_MAX_REQUEST_BYTES`` for the playground), except ``ENV``, which
both read.
"""

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from .hosts import HostAllowList, default_hosts, parse_host_list

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "ProductionConfigurationError", "WebSettings"]

DEFAULT_MAX_REQUEST_BYTES = 16384
"""Longest URL or body accepted by default, in bytes."""

PRODUCTION = "production"
"""The ``ENV`` value that refuses the embedded development server."""


class ProductionConfigurationError(ValueError):
    """``ENV=production`` with a setting meant for development only (no ``MONGODB_URI``: the embedded server)."""


class WebSettings(BaseSettings):
    """Settings of a web app: allowed ``Host`` names, request-size cap, ``ENV`` and the MongoDB URI."""

    mongodb_uri: str | None = Field(
        default=None, description="MongoDB URI; unset starts the embedded development server."
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated Host names answered besides the loopback names and the bound host: names, "
        "IP addresses, '*.example.com' (its subdomains) or '*' (any: unsafe, allows DNS rebinding).",
    )
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES, ge=256, description="Longest URL (else 414) or body (else 413), in bytes."
    )
    env: str = Field(
        default="",
        validation_alias=AliasChoices("env", "ENV"),
        description="'production' refuses to start without MONGODB_URI (on the embedded development server).",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: str) -> str:
        """Refuse a malformed entry (a port, a URL, a wildcard other than a leading ``*.``)."""
        parse_host_list(value)
        return value

    @model_validator(mode="after")
    def _check_bound_host(self) -> "WebSettings":
        """Refuse a host to listen on that is no host name or address (it joins the allow-list)."""
        try:
            default_hosts(self.bound_host)
        except ValueError as error:
            raise ValueError(f"the host to listen on is not a host name or an IP address: {error}") from error
        return self

    @property
    def bound_host(self) -> str:
        """The address the app listens on (the app's host setting); subclasses name it."""
        raise NotImplementedError

    @property
    def host_allow_list(self) -> HostAllowList:
        """The ``Host`` names answered: loopback names, the bound host (unless 0.0.0.0 or ::), ``ALLOWED_HOSTS``."""
        return HostAllowList([*default_hosts(self.bound_host), *parse_host_list(self.allowed_hosts)])

    @property
    def allowed_hosts_variable(self) -> str:
        """The environment variable of `allowed_hosts` for this app (with its prefix), for messages."""
        return f"{self.model_config.get('env_prefix', '')}ALLOWED_HOSTS"

    @property
    def production(self) -> bool:
        """Whether ``ENV`` is ``production`` (any case)."""
        return self.env.strip().lower() == PRODUCTION

    def check_production(self) -> None:
        """Refuse development-only settings when ``ENV=production``.

        Raises:
            ProductionConfigurationError: ``ENV=production`` and no MongoDB URI (the embedded server would start).
        """
        if self.production and not self.mongodb_uri:
            raise ProductionConfigurationError(
                "ENV=production and MONGODB_URI is not set: the embedded development MongoDB server is not for "
                "production; set MONGODB_URI to your MongoDB deployment"
            )
