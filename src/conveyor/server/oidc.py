"""Signing in through an OpenID Connect provider: its discovery, and the
authorization-code flow with PKCE, state and nonce, up to a verified ID token
(whose checks are ``server.id_token``'s).

The routes (``server.ui.oidc``) only move the browser; what is trusted is decided
here. A failure is a ``LoginError`` whose ``reason`` the audit log records and the
login page explains.

A login in progress (its state, nonce, PKCE verifier and where to go after) is
kept here, in memory, under a random handle that a short-lived cookie carries:
the verifier never leaves the server, the handle is good for one callback within
``PENDING_TTL``, and nothing in the cookie can be forged into another login. The
server is one process, so memory is enough; one restarted mid-login makes the
user click "sign in" again.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from conveyor.errors import ConfigError
from conveyor.server.auth_settings import OidcSettings
from conveyor.server.id_token import SIGNING_ALGORITHMS, Identity, LoginError, same_secret, verify

# How long one answer from the provider may take (seconds).
HTTP_TIMEOUT = 10.0
# The discovery document and the keys are fetched again after this long (seconds);
# a token signed with a key not seen yet makes the keys be fetched again at once.
METADATA_TTL = 3600.0
# A login must come back from the provider within this long (seconds).
PENDING_TTL = 600.0
MAX_PENDING = 10_000
MAX_ID_TOKEN = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the provider's discovery document says, as far as the login needs it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login sent to the provider and not back yet."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str
    created_at: float


# The query parameter that takes a failed sign-in's reason to the login page, and
# the one line the page shows for each: fixed texts, so that a link cannot make
# the page say something else. What exactly failed is in the audit log.
FAILED_PARAM = "oidc_failed"
_FAILURE_LINES = {
    "state": "this browser did not start that sign-in, or it took over 10 minutes; try again",
    "denied": "{name} did not let you in",
    "unreachable": "{name} does not answer; try again later",
    "provider_error": "{name} answered something Conveyor cannot use; ask an admin",
    "config": "single sign-on is not set up right on this server; ask an admin",
    "token_exchange": "{name} refused to complete the sign-in; try again",
    "signature": "the identity token's signature is wrong",
    "unknown_key": "the identity token is signed with a key {name} does not publish",
    "issuer": "the identity token comes from another provider",
    "audience": "the identity token was issued for another application",
    "azp": "the identity token was issued to another application",
    "expired": "the identity token has expired; try again",
    "not_yet_valid": "the identity token is not valid yet (are the clocks right?)",
    "nonce": "the identity token answers another sign-in; try again",
    "malformed": "the identity token could not be read",
    "disabled": "your user is disabled; ask an admin",
}


def failure_line(reason: str | None, provider: str = "the sign-in provider") -> str | None:
    """The login page's line for a failed sign-in (``?oidc_failed=<reason>``);
    ``None`` for a reason there is none for."""
    line = _FAILURE_LINES.get(reason or "")
    if line is None:
        return None
    return f"Sign-in with {provider} failed: {line.format(name=provider)}."


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, else ``/``.

    Refuses absolute URLs, scheme-relative ones (``//evil.example``), backslashes
    (which browsers read as slashes) and control characters.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_issuer_url(issuer: str) -> None:
    """``ConfigError`` unless the provider is reached over https (http: loopback only)."""
    parts = urlsplit(issuer)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return
    raise ConfigError(
        f"CONVEYOR_OIDC_ISSUER={issuer!r}: the provider must be reached over https "
        f"(plain http only on a loopback address, for tests)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OidcClient:
    """Conveyor as a client of one OpenID provider (``OidcSettings``); thread-safe."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        timeout: float = HTTP_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_issuer_url(settings.issuer)
        self.settings = settings
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._pending: OrderedDict[str, PendingLogin] = OrderedDict()

    # -- the provider --------------------------------------------------------------

    def _client(self) -> httpx.Client:
        # One client per exchange: a login makes two or three requests, and nothing
        # is left open between logins (or when the server stops).
        return httpx.Client(timeout=self._timeout, follow_redirects=False)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self._client() as http:
                response = http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as e:
            raise LoginError(
                "unreachable",
                f"the sign-in provider does not answer ({what}); try again later",
                url=url,
                error=f"{type(e).__name__}: {e}",
            ) from None
        if response.status_code != 200:
            raise LoginError(
                "provider_error",
                f"the sign-in provider answered {response.status_code} for its {what}; "
                f"try again later, or ask an admin to check CONVEYOR_OIDC_ISSUER",
                url=url,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LoginError(
                "provider_error",
                f"the sign-in provider's {what} is not a JSON object; ask an admin to check "
                f"CONVEYOR_OIDC_ISSUER",
                url=url,
            )
        return body

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, fetched at most every ``METADATA_TTL``."""
        with self._lock:
            cached = self._metadata
        if cached is not None and self._clock() - cached[0] < METADATA_TTL:
            return cached[1]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.settings.issuer.rstrip("/"):
            raise LoginError(
                "provider_error",
                f"the sign-in provider calls itself {issuer!r}, not "
                f"{self.settings.issuer!r}; ask an admin to check CONVEYOR_OIDC_ISSUER",
                url=url,
            )
        endpoints: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
                raise LoginError(
                    "provider_error",
                    f"the sign-in provider's discovery document has no usable {name}",
                    url=url,
                )
            endpoints[name] = value
        algorithms = _strings(doc.get("id_token_signing_alg_values_supported")) or ("RS256",)
        methods = _strings(doc.get("token_endpoint_auth_methods_supported")) or (
            "client_secret_basic",
        )
        meta = ProviderMetadata(
            issuer,
            endpoints["authorization_endpoint"],
            endpoints["token_endpoint"],
            endpoints["jwks_uri"],
            tuple(a for a in algorithms if a in SIGNING_ALGORITHMS),
            methods,
        )
        if not meta.algorithms:
            raise LoginError(
                "provider_error",
                f"the sign-in provider signs ID tokens only with {', '.join(algorithms)}; "
                f"Conveyor accepts {', '.join(SIGNING_ALGORITHMS)}",
            )
        with self._lock:
            self._metadata = (self._clock(), meta)
        return meta

    def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys (its JWKS); ``refresh`` fetches them again."""
        with self._lock:
            cached = self._keys
        if not refresh and cached is not None and self._clock() - cached[0] < METADATA_TTL:
            return cached[1]
        doc = self._get_json(self.metadata().jwks_uri, "signing keys (JWKS)")
        found = doc.get("keys")
        usable = [
            k
            for k in (found if isinstance(found, list) else [])
            if isinstance(k, dict)
            and k.get("kty") in ("RSA", "EC", "OKP")
            and k.get("use", "sig") == "sig"
        ]
        try:
            keys = KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError) as e:
            raise LoginError(
                "provider_error", f"the sign-in provider's signing keys do not load: {e}"
            ) from None
        with self._lock:
            self._keys = (self._clock(), keys)
        return keys

    # -- the flow ------------------------------------------------------------------

    def begin(self, redirect_uri: str, next_path: str | None) -> tuple[str, str]:
        """Start a login: the handle for the browser's cookie, and the provider's URL
        to send the browser to."""
        meta = self.metadata()
        pending = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            redirect_uri=redirect_uri,
            next=safe_next(next_path),
            created_at=self._clock(),
        )
        handle = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_old()
            self._pending[handle] = pending
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.scopes,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pkce_challenge(pending.verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return handle, f"{meta.authorization_endpoint}{separator}{query}"

    def _forget_old(self) -> None:
        oldest = self._clock() - PENDING_TTL
        while self._pending:
            handle, first = next(iter(self._pending.items()))
            if first.created_at > oldest:
                break
            del self._pending[handle]

    def take(self, handle: str | None) -> PendingLogin | None:
        """The login of this handle, once: a second callback with it finds nothing."""
        if not handle:
            return None
        with self._lock:
            pending = self._pending.pop(handle, None)
        if pending is None or self._clock() - pending.created_at > PENDING_TTL:
            return None
        return pending

    def check_state(self, pending: PendingLogin, state: str) -> None:
        """``LoginError`` unless the provider's redirect carries the login's state."""
        if not state or not same_secret(state, pending.state):
            raise LoginError(
                "state",
                "the sign-in came back with a state this browser did not start; sign in again",
            )

    def finish(self, pending: PendingLogin, *, state: str, code: str) -> Identity:
        """The provider's redirect back: check ``state``, exchange ``code`` for the ID
        token, and check it."""
        self.check_state(pending, state)
        if not code:
            raise LoginError("provider_error", "the sign-in provider sent back no code")
        id_token = self.exchange(pending, code)
        return self.validate(id_token, pending.nonce)

    def exchange(self, pending: PendingLogin, code: str) -> str:
        """The ID token the provider gives for ``code`` at its token endpoint."""
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier,
        }
        headers = {"Accept": "application/json"}
        if "client_secret_basic" in meta.auth_methods:
            headers["Authorization"] = _basic(self.settings.client_id, self.settings.client_secret)
        elif "client_secret_post" in meta.auth_methods:
            form.update(
                client_id=self.settings.client_id, client_secret=self.settings.client_secret
            )
        else:
            raise LoginError(
                "provider_error",
                f"the sign-in provider authenticates clients only by "
                f"{', '.join(meta.auth_methods)}; Conveyor sends client_secret_basic or "
                f"client_secret_post",
            )
        try:
            with self._client() as http:
                response = http.post(meta.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as e:
            raise LoginError(
                "unreachable",
                "the sign-in provider does not answer (token endpoint); try again later",
                error=f"{type(e).__name__}: {e}",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise LoginError(
                "token_exchange",
                f"the sign-in provider refused to complete the login "
                f"({error or f'HTTP {response.status_code}'}); sign in again",
                status=response.status_code,
                error=str(error) if error else None,
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_ID_TOKEN:
            raise LoginError("token_exchange", "the sign-in provider sent no usable ID token")
        return id_token

    def validate(self, id_token: str, nonce: str) -> Identity:
        """The identity in ``id_token`` once its signature and claims hold."""
        meta = self.metadata()
        return verify(
            id_token,
            lambda refresh: self.keys(refresh=refresh),
            algorithms=meta.algorithms,
            issuer=meta.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            now=self._clock(),
        )


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _basic(client_id: str, secret: str) -> str:
    """HTTP Basic of a client: RFC 6749 §2.3.1 form-encodes the id and secret first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")
