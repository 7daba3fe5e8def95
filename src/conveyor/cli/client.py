"""A small typed client of a Conveyor server's REST API, for the remote CLI.

Answers are the API's JSON; every refusal of the server (401, 403, 404, 422...)
becomes one ``RemoteError`` line that names the server and the fix, and so does a
server that cannot be reached. ``credentials`` says which server and token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from conveyor.cli.credentials import Remote, token_id_of
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import httpx

# How long one request may take before the command gives up on the server (seconds).
TIMEOUT = 30.0


class RemoteError(ConveyorError):
    """Raised when a remote server refuses a request, fails, or cannot be reached; the
    message names the server and the fix. ``exit_code`` is 2 (bad usage or credentials)
    unless the server itself failed."""

    def __init__(self, message: str, *, status: int | None = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = exit_code


class Client:
    """Calls the REST API of one server; answers are the API's JSON, refusals
    ``RemoteError``. Use as a context manager, or ``close()`` it."""

    def __init__(self, remote: Remote, *, timeout: float = TIMEOUT) -> None:
        import httpx

        from conveyor import __version__

        self.remote = remote
        headers = {"User-Agent": f"conveyor-cli/{__version__}", "Accept": "application/json"}
        if remote.token:
            headers["Authorization"] = f"Bearer {remote.token}"
        self._http = httpx.Client(base_url=remote.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<Client {self.remote.url}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """``method path`` under ``/api``, ``body`` sent as JSON; the answer's JSON."""
        import httpx

        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method,
                f"/api{path}",
                params=clean,
                json=body,
            )
        except httpx.TimeoutException:
            raise RemoteError(
                f"the Conveyor server at {self.remote.url} did not answer {method} /api{path} "
                f"within {self._http.timeout.read:g} s; is it overloaded? try again"
            ) from None
        except httpx.HTTPError as e:
            raise RemoteError(
                f"cannot reach the Conveyor server at {self.remote.url} ({_reason(e)}); "
                f"check the URL (--url, CONVEYOR_URL or `conveyor login`) and that it is running"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        raise self._refusal(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def _refusal(self, response: httpx.Response) -> RemoteError:
        """One line for a refusal: the server's reason and what to do about it."""
        status = response.status_code
        try:
            payload = response.json()
            said = payload.get("error") if isinstance(payload, dict) else None
        except ValueError:
            said = None
        reason = " ".join(str(said or response.reason_phrase or f"HTTP {status}").split())
        url = self.remote.url
        if status == 401:
            if not self.remote.token:
                return RemoteError(
                    f"{url} wants a token: sign in with `conveyor login {url}` (make a token "
                    f"with `conveyor tokens create` or at {url}/account/tokens), or pass "
                    f"--token / CONVEYOR_TOKEN",
                    status=status,
                )
            word = next((w for w in ("expired", "revoked") if w in reason.lower()), None)
            fix = (
                f"make a new one with `conveyor tokens create` (or at {url}/account/tokens) "
                f"and run `conveyor login {url}`"
            )
            token_id = token_id_of(self.remote.token)
            which = f"token {token_id}" if token_id else "the token"
            if word is not None:
                return RemoteError(f"{which} {word}: {fix}", status=status)
            head = reason.split(": ", 1)[0].rstrip(".")
            return RemoteError(f"{which} refused by {url} ({head}): {fix}", status=status)
        if status == 403:
            hint = "" if "admin" in reason else " (an admin can grant it: `conveyor access grant`)"
            return RemoteError(f"{url} refused: {reason}{hint}", status=status)
        if status >= 500:
            return RemoteError(f"the server at {url} failed: {reason}", status=status, exit_code=1)
        return RemoteError(reason, status=status)

    # -- the routes the CLI uses ---------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """Who the server takes the caller for: name, kind, role, groups, token id."""
        out: dict[str, Any] = self.get("/me")
        return out

    def jobs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.get("/jobs")
        return out

    def job(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/jobs/{_part(name)}")
        return out

    def launch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.post("/runs", dict(body))
        return out

    def runs(
        self,
        *,
        job: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        created_before: str | None = None,
    ) -> dict[str, Any]:
        """A page of runs, newest first: ``{"runs": [...], "next_cursor": ...}``."""
        out: dict[str, Any] = self.get(
            "/runs",
            job=job,
            status=status,
            limit=limit,
            cursor=cursor,
            created_before=created_before,
        )
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/runs/{_part(run_id)}")
        return out

    def cancel(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.post(f"/runs/{_part(run_id)}/cancel")
        return out

    def rerun(
        self, run_id: str, *, full: bool = False, run_config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"full": full, "run_config": dict(run_config) if run_config is not None else None}
        out: dict[str, Any] = self.post(f"/runs/{_part(run_id)}/rerun", body)
        return out

    def log(
        self, run_id: str, task_key: str, *, stream: str = "stdout", offset: int = 0
    ) -> dict[str, Any]:
        """One chunk of a task's log from byte ``offset`` (the API's ``LogChunk``)."""
        out: dict[str, Any] = self.get(
            f"/runs/{_part(run_id)}/tasks/{_part(task_key)}/logs",
            stream=stream,
            offset=offset,
            limit=1 << 20,
        )
        return out

    def log_text(self, run_id: str, task_key: str, *, stream: str = "stdout") -> str:
        """A task's whole log so far."""
        return "".join(chunk["text"] for chunk in self.log_chunks(run_id, task_key, stream))

    def log_chunks(self, run_id: str, task_key: str, stream: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            chunk = self.log(run_id, task_key, stream=stream, offset=offset)
            yield chunk
            if chunk["next_offset"] >= chunk["size"]:
                return
            offset = chunk["next_offset"]

    def backfill(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.post("/backfills", dict(body))
        return out

    def schedules(self, count: int = 3) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.get("/schedules")
        if count != 3:  # the list shows 3 next times; ask each schedule for more
            out = [self.get(f"/schedules/{_part(s['job_name'])}", count=count) for s in out]
        return out


def _part(text: str) -> str:
    """``text`` as one segment of a URL path."""
    return quote(text, safe="")


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


@contextmanager
def client(remote: Remote) -> Iterator[Client]:
    """A ``Client`` of ``remote``, closed after the block."""
    c = Client(remote)
    try:
        yield c
    finally:
        c.close()
