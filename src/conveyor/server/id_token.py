"""The checks an OpenID Connect ID token must pass before its user is signed in.

The token is checked in full rather than trusted for having come over TLS from
the provider's token endpoint (OpenID Connect Core §3.1.3.7): its signature
against the provider's published keys, its issuer, audience, authorized party,
lifetime and the nonce of the login it answers. A failure is a ``LoginError``
whose ``reason`` the audit log records and whose message names what failed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from conveyor.errors import ConveyorError

# Clock skew allowed between the provider and this server (seconds).
LEEWAY = 60
# Asymmetric signatures only: "none" and the HS family (keyed with the client
# secret, which the server would then have to treat as a signing key) are refused.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class LoginError(ConveyorError):
    """Signing in through the OpenID provider failed.

    ``reason`` is a short word for the audit log and the login page
    (``audience``, ``signature``, ``expired``...); ``detail`` what else the audit
    log keeps; the message says what failed.
    """

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in: its verified ID token's claims."""

    issuer: str
    sub: str
    claims: Mapping[str, Any]

    @property
    def subject(self) -> str:
        """The user's key across logins: ``<iss>|<sub>`` (``users.oidc_subject``)."""
        return f"{self.issuer}|{self.sub}"

    @property
    def email(self) -> str | None:
        email = self.claims.get("email")
        return email if isinstance(email, str) and email else None


def verify(
    id_token: str,
    keys: Callable[[bool], KeySet],
    *,
    algorithms: Collection[str],
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
) -> Identity:
    """The identity in ``id_token`` once its signature and claims hold.

    ``keys(refresh)`` gives the provider's keys; a token signed with a key id not
    among them makes them be fetched again, once (the provider may have rotated
    its keys since).

    Raises:
        LoginError: naming the first check that failed.
    """
    allowed = [a for a in algorithms if a in SIGNING_ALGORITHMS]
    try:
        try:
            token = jwt.decode(id_token, keys(False), algorithms=allowed)
        except InvalidKeyIdError:
            token = jwt.decode(id_token, keys(True), algorithms=allowed)
    except InvalidKeyIdError:
        raise LoginError(
            "unknown_key",
            "the ID token is signed with a key the sign-in provider does not publish",
        ) from None
    except BadSignatureError:
        raise LoginError(
            "signature", "the ID token's signature does not match the provider's keys"
        ) from None
    except (JoseError, ValueError, TypeError) as e:
        raise LoginError(
            "malformed", "the ID token could not be read", error=f"{type(e).__name__}: {e}"
        ) from None
    return check_claims(token.claims, issuer=issuer, client_id=client_id, nonce=nonce, now=now)


def check_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str, now: float
) -> Identity:
    """The identity of an ID token whose signature holds, once its claims do too."""
    if claims.get("iss") != issuer:
        raise LoginError(
            "issuer",
            f"the ID token comes from {claims.get('iss')!r}, not the provider {issuer!r}",
        )
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise LoginError(
            "audience",
            "the ID token was issued for another application (wrong audience)",
            aud=audience if isinstance(audience, str | list) else None,
        )
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise LoginError("azp", "the ID token was issued to another application (authorized party)")
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _number(exp) or not _number(iat):
        raise LoginError("malformed", "the ID token has no expiry or issue time")
    if now - LEEWAY >= exp:
        raise LoginError("expired", "the ID token has expired; sign in again")
    if iat > now + LEEWAY:
        raise LoginError("not_yet_valid", "the ID token was issued in the future: check the clocks")
    if nbf is not None and (not _number(nbf) or nbf > now + LEEWAY):
        raise LoginError("not_yet_valid", "the ID token is not valid yet: check the clocks")
    got = claims.get("nonce")
    if not isinstance(got, str) or not same_secret(got, nonce):
        raise LoginError("nonce", "the ID token answers another login (wrong nonce); sign in again")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise LoginError("malformed", "the ID token names no user (no sub)")
    return Identity(issuer, sub, dict(claims))


def same_secret(a: str, b: str) -> bool:
    """``a == b`` in constant time, for any characters (``hmac.compare_digest`` takes
    only ASCII in a ``str``)."""
    return hmac.compare_digest(a.encode(), b.encode())


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
