"""How the server knows who is calling: its auth settings.

``local``: no login; every caller is the single local admin. Only for a
server on a loopback address (``conveyor dev``, or ``conveyor server`` on
127.0.0.1 of an instance with no users). ``login``: every request carries a
session cookie (from the login page or OpenID Connect) or an API token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from conveyor.definitions.access import Role, parse_role
from conveyor.errors import ConfigError, DefinitionError

ENV_OIDC_ISSUER = "CONVEYOR_OIDC_ISSUER"
ENV_OIDC_CLIENT_ID = "CONVEYOR_OIDC_CLIENT_ID"
ENV_OIDC_CLIENT_SECRET = "CONVEYOR_OIDC_CLIENT_SECRET"
ENV_OIDC_DEFAULT_ROLE = "CONVEYOR_OIDC_DEFAULT_ROLE"
ENV_OIDC_NAME = "CONVEYOR_OIDC_NAME"

AuthMode = Literal["local", "login"]


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """An OpenID Connect provider users sign in through."""

    issuer: str  # its URL; its /.well-known/openid-configuration says the rest
    client_id: str
    client_secret: str
    # The role of a user seen for the first time (an admin may change it).
    default_role: Role = Role.VIEWER
    # What the login page's button says: "Sign in with <name>".
    name: str = "single sign-on"
    scopes: str = "openid email profile"

    @classmethod
    def from_env(cls) -> OidcSettings | None:
        """From ``CONVEYOR_OIDC_*``; ``None`` when no issuer is set."""
        issuer = os.environ.get(ENV_OIDC_ISSUER, "").strip()
        if not issuer:
            return None
        client_id = os.environ.get(ENV_OIDC_CLIENT_ID, "").strip()
        secret = os.environ.get(ENV_OIDC_CLIENT_SECRET, "").strip()
        if not client_id or not secret:
            raise ConfigError(
                f"{ENV_OIDC_ISSUER} is set, so {ENV_OIDC_CLIENT_ID} and "
                f"{ENV_OIDC_CLIENT_SECRET} must be too: the client registered for Conveyor "
                f"at the provider"
            )
        try:
            role = parse_role(os.environ.get(ENV_OIDC_DEFAULT_ROLE, "viewer"))
        except DefinitionError as e:
            raise ConfigError(f"{ENV_OIDC_DEFAULT_ROLE}: {e}") from None
        return cls(
            issuer.rstrip("/"),
            client_id,
            secret,
            role,
            os.environ.get(ENV_OIDC_NAME, "").strip() or "single sign-on",
        )


@dataclass(frozen=True, slots=True)
class AuthSettings:
    mode: AuthMode = "local"
    oidc: OidcSettings | None = None
    # Session cookies marked Secure (sent over HTTPS only). ``None``: when the
    # request came over HTTPS (or a proxy says so with X-Forwarded-Proto).
    secure_cookies: bool | None = None

    @property
    def login_required(self) -> bool:
        return self.mode == "login"
