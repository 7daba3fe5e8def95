"""Where the remote CLI finds its server and token.

A command runs remotely when ``conveyor --url URL`` (or ``CONVEYOR_URL``) names a
server, or ``conveyor login URL`` made one the default; ``--local`` forces the local
instance. The token comes from ``--token``, ``CONVEYOR_TOKEN``, or what ``conveyor
login`` stored for that URL in ``$XDG_CONFIG_HOME/conveyor/credentials.json``
(``~/.config`` by default), a file only its owner may read.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conveyor.errors import ConfigError

TOKEN_PREFIX = "cvt_"
URL_ENV = "CONVEYOR_URL"
TOKEN_ENV = "CONVEYOR_TOKEN"


@dataclass(frozen=True, slots=True)
class Remote:
    """A server to talk to, and the token to show it (``None``: none is sent)."""

    url: str
    token: str | None

    def __repr__(self) -> str:  # never the token
        return f"Remote({self.url!r}, token={'set' if self.token else 'none'})"


def credentials_path() -> Path:
    """``$XDG_CONFIG_HOME/conveyor/credentials.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "conveyor" / "credentials.json"


def load_credentials(path: Path | None = None) -> dict[str, Any]:
    """The stored credentials: ``{"default": URL | None, "servers": {URL: {"token": T}}}``;
    empty when the file is not there. ``ConfigError`` naming the file if it is unreadable."""
    path = path or credentials_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"default": None, "servers": {}}
    except OSError as e:
        raise ConfigError(f"cannot read the credentials file {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"the credentials file {path} is not valid JSON ({e.msg}, line {e.lineno}); "
            f"delete it and run `conveyor login URL` again"
        ) from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("token"), str) for v in servers.values()
    ):
        raise ConfigError(
            f"the credentials file {path} is not one `conveyor login` wrote; "
            f"delete it and run `conveyor login URL` again"
        )
    default = data.get("default")
    return {"default": default if isinstance(default, str) else None, "servers": servers}


def save_credentials(data: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write the credentials file, readable by its owner only from its first byte on:
    a new file made with mode 0600 in the same folder (0700 when made here), then moved
    over the old one."""
    path = path or credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp makes the file with 0600 whatever the umask.
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def server_url(text: str) -> str:
    """``text`` as a server's base URL (scheme and host, no trailing slash);
    ``ConfigError`` saying what a URL looks like otherwise."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{text!r} is not a server's URL: give its address with http:// or https://, "
            f"e.g. https://conveyor.example.com or http://127.0.0.1:3000"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{text!r}: a server's URL has no ?query or #fragment; leave them out")
    return url


def remote_of(
    url: str | None = None,
    token: str | None = None,
    *,
    local: bool = False,
    env: Mapping[str, str] | None = None,
    credentials: Mapping[str, Any] | None = None,
) -> Remote | None:
    """The server a command talks to, or ``None`` for the local instance.

    The URL is ``url`` (``--url``), else ``CONVEYOR_URL``, else the default server of
    ``conveyor login``; the token is ``token`` (``--token``), else ``CONVEYOR_TOKEN``,
    else the one stored for that URL. ``local`` (``--local``) wins over all of them.
    """
    env = os.environ if env is None else env
    if local:
        if url:
            raise ConfigError("give --url URL or --local, not both")
        return None
    stored = credentials

    def saved() -> Mapping[str, Any]:
        nonlocal stored
        if stored is None:
            stored = load_credentials()
        return stored

    chosen = url or env.get(URL_ENV) or saved().get("default")
    if not chosen:
        if token:  # --token alone; CONVEYOR_TOKEN alone leaves local commands local
            raise ConfigError(
                "a token needs a server: give --url URL (or CONVEYOR_URL), "
                "or sign in once with `conveyor login URL`"
            )
        return None
    base = server_url(chosen)
    token = token or env.get(TOKEN_ENV) or None
    if token is None:
        entry = saved().get("servers", {}).get(base)
        token = entry.get("token") if isinstance(entry, dict) else None
    return Remote(base, token)


def current_remote() -> Remote | None:
    """The server of the running ``conveyor`` command (its global options ``--url``,
    ``--token``, ``--local``, the environment, the credentials file), or ``None``."""
    import click

    ctx = click.get_current_context(silent=True)
    params = ctx.find_root().params if ctx is not None else {}
    return remote_of(params.get("url"), params.get("token"), local=bool(params.get("local")))


def token_id_of(token: str | None) -> str | None:
    """The id of a token ``cvt_<id>_<secret>``, which lists and revocations show."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, _ = token[len(TOKEN_PREFIX) :].partition("_")
    return token_id if sep and token_id else None
