"""An OpenID provider for tests, served by uvicorn on 127.0.0.1 in a thread.

It does what a real provider does for the authorization-code flow, with no UI:
``/authorize`` checks the request (client, redirect URI, PKCE S256, state and
nonce) and redirects back at once with a code for ``user``; ``/token`` checks
the client's secret (Basic or in the form), the code (once), the redirect URI
and the PKCE verifier, and returns an ID token signed with its RSA key, which
``/jwks`` publishes. ``fault`` makes the next ID tokens wrong in one way, as a
broken or hostile provider would send them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.waiting import wait_until

Fault = Literal[
    "audience",  # aud is another client
    "azp",  # several audiences, azp another client
    "signature",  # signed by another key under the provider's key id
    "unknown_key",  # signed by a key the provider does not publish
    "expired",
    "future",  # issued an hour from now
    "nonce",  # the nonce of another login
    "issuer",  # iss another provider
    "no_nonce",
    "alg_none",  # unsigned
]
ALL_FAULTS: tuple[Fault, ...] = (
    "audience",
    "azp",
    "signature",
    "unknown_key",
    "expired",
    "future",
    "nonce",
    "issuer",
    "no_nonce",
    "alg_none",
)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class OidcProvider:
    """A provider with one client (``client_id``/``client_secret``) and one user."""

    def __init__(
        self,
        *,
        client_id: str = "conveyor-test",
        client_secret: str = "client secret/with+odd:chars",
        auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post"),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_methods = auth_methods
        self.first_key = self.key = _rsa("key-1")
        # Another key under the same id: what a forger without the real key signs with.
        self.forger = _rsa("key-1")
        self.issuer = ""
        self.user: dict[str, Any] = {}
        self.fault: Fault | None = None
        self.deny = False
        # Changes to the discovery document (a key set to None goes), or its whole
        # body replaced by ``discovery_body``.
        self.discovery_changes: dict[str, Any] = {}
        self.discovery_body: bytes | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.seen: list[str] = []  # the paths asked, in order
        self.client_auth: list[str] = []  # how the client authenticated at /token
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def reset(self) -> None:
        """Back to a good provider with the default user (between tests)."""
        self.user = {
            "sub": "u-1001",
            "preferred_username": "alice",
            "email": "alice@example.org",
            "name": "Alice Example",
        }
        self.key = self.first_key
        self.fault = None
        self.deny = False
        self.discovery_changes = {}
        self.discovery_body = None
        self.codes.clear()
        self.seen.clear()
        self.client_auth.clear()
        self.auth_methods = ("client_secret_basic", "client_secret_post")

    def rotate_key(self) -> None:
        """A new signing key under a new id; the old one is no longer published."""
        self.key = _rsa(f"key-{secrets.token_hex(4)}")

    # -- serving -------------------------------------------------------------------

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        port = sock.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="oidc-provider", daemon=True
        )
        self._thread.start()
        wait_until(lambda: server.started, 30, "the test OpenID provider to listen")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive(), "the test OpenID provider did not stop"
        if self._socket is not None:
            self._socket.close()

    # -- the endpoints -------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        if self.discovery_body is not None:
            return Response(self.discovery_body, media_type="application/json")
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
        }
        doc.update(self.discovery_changes)
        return JSONResponse({k: v for k, v in doc.items() if v is not None})

    async def jwks(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        q = request.query_params
        problems = []
        if q.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if q.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in q.get("scope", "").split():
            problems.append("scope lacks openid")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            problems.append("PKCE S256 required")
        for name in ("redirect_uri", "state", "nonce"):
            if not q.get(name):
                problems.append(f"no {name}")
        if problems:
            return JSONResponse({"error": "invalid_request", "problems": problems}, 400)
        back = q["redirect_uri"]
        if self.deny:
            query = {"error": "access_denied", "error_description": "the user said no"}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q["nonce"],
                "challenge": q["code_challenge"],
                "redirect_uri": back,
                "user": dict(self.user),
            }
            query = {"code": code}
        query["state"] = q["state"]
        return RedirectResponse(f"{back}?{urlencode(query)}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        form = dict(parse_qsl((await request.body()).decode()))
        client = self._client(request, form)
        if client is None:
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, 400)
        if _challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant["user"], grant["nonce"]),
            }
        )

    def _client(self, request: Request, form: dict[str, str]) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            pair = base64.b64decode(header[6:]).decode()
            client_id, _, secret = pair.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            method = "client_secret_basic"
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            method = "client_secret_post"
        self.client_auth.append(method)
        if method not in self.auth_methods:
            return None
        if client_id != self.client_id or secret != self.client_secret:
            return None
        return client_id

    def id_token(self, user: dict[str, Any], nonce: str) -> str:
        """An ID token for ``user`` answering the login of ``nonce``, as ``fault`` says."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            **user,
        }
        key, kid = self.key, self.key.kid
        fault = self.fault
        if fault == "audience":
            claims["aud"] = "another-app"
        elif fault == "azp":
            claims["aud"] = [self.client_id, "another-app"]
            claims["azp"] = "another-app"
        elif fault == "signature":
            key = self.forger
        elif fault == "unknown_key":
            key = _rsa("key-not-published")
            kid = key.kid
        elif fault == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif fault == "future":
            claims.update(iat=now + 3600, exp=now + 7200)
        elif fault == "nonce":
            claims["nonce"] = "the-nonce-of-another-login"
        elif fault == "issuer":
            claims["iss"] = "https://other-provider.example"
        elif fault == "no_nonce":
            del claims["nonce"]
        elif fault == "alg_none":
            header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            return f"{header.decode()}.{body.decode()}."
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


@contextmanager
def serving(provider: OidcProvider | None = None) -> Iterator[OidcProvider]:
    """A provider listening on 127.0.0.1 while the block runs."""
    provider = provider or OidcProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
