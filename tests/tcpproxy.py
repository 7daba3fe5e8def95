"""A TCP proxy that tests put between a client and a server to make the server go away.

Stopping the shared PostgreSQL server would break every other test running
against it, so outages are simulated here instead: ``cut()`` resets every
connection through the proxy and refuses new ones, as a crashed or
unreachable database does; ``restore()`` lets connections through again.

One thread serves every connection with non-blocking sockets and a selector,
so that ``cut()`` and ``close()`` act at once and at a known moment: the other
methods hand their work to that thread and wait until it is done.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy.engine import make_url

# Reads from one side pause while this much waits to be written to the other.
HIGH_WATER = 256 * 1024
CHUNK = 64 * 1024
# A connection one side closed is given this long to deliver what is left.
DRAIN_SECONDS = 2.0
# How long a caller waits for the proxy's thread to carry out a request.
CALL_TIMEOUT = 5.0

T = TypeVar("T")

_WAKE = "wake"
_LISTEN = "listen"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (not a FIN), as when the other host's connection is lost."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Pipe:
    """One client connection and the proxy's connection to the target for it."""

    def __init__(self, client: socket.socket, upstream: socket.socket, opened: float) -> None:
        self.client = client
        self.upstream = upstream
        self.opened = opened
        self.connecting = True
        self.to_upstream = bytearray()
        self.to_client = bytearray()
        # When one side closed: the moment the rest must have been delivered by.
        self.drain_by: float | None = None

    def other(self, sock: socket.socket) -> socket.socket:
        return self.upstream if sock is self.client else self.client

    def outbox(self, sock: socket.socket) -> bytearray:
        """The bytes waiting to be written to ``sock``."""
        return self.to_client if sock is self.client else self.to_upstream


class TcpProxy:
    """Forwards connections on ``127.0.0.1:port`` to ``target``; can cut and restore them.

    Use as a context manager (``with TcpProxy(("127.0.0.1", 5432)) as proxy:``)
    or call ``close()``.
    """

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.accepted = 0
        self.refused = 0
        self.killed = 0
        self._listener = self._bind(host)
        self.port: int = self._listener.getsockname()[1]
        self._listening = True
        self._cut = False
        self._kill_after: float | None = None
        self._pipes: list[_Pipe] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._sel.register(self._listener, selectors.EVENT_READ, _LISTEN)
        self._calls: list[tuple[Callable[[], object], threading.Event]] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"tcpproxy:{self.port}")
        self._thread.daemon = True
        self._thread.start()

    @staticmethod
    def _bind(host: str) -> socket.socket:
        # The listener is bound to its port by number, not by port 0: only then does Linux
        # keep the port through the shutdown() that cut() uses to refuse connections.
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, 0))
        try:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, probe.getsockname()[1]))
        finally:
            probe.close()
        listener.listen(128)
        listener.setblocking(False)
        return listener

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "cut" if self._cut else "open"
        return f"<TcpProxy {self.host}:{self.port} -> {self.target[0]}:{self.target[1]} {state}>"

    def url_for(self, url: str) -> str:
        """``url`` (an SQLAlchemy URL) with its host and port replaced by the proxy's."""
        proxied = make_url(url).set(host=self.host, port=self.port)
        return proxied.render_as_string(hide_password=False)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until ``restore()``."""
        self._call(self._do_cut)

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._call(self._do_restore)

    def kill_connections_every(self, seconds: float | None) -> None:
        """Reset each connection ``seconds`` after it opened (``None``: stop doing so).

        Connections already open longer than that are reset at once.
        """

        def kill_after() -> None:
            self._kill_after = seconds

        self._call(kill_after)

    def connections(self) -> int:
        """How many connections are open through the proxy now."""
        return self._call(lambda: len(self._pipes))

    def close(self, timeout: float = CALL_TIMEOUT) -> None:
        """Reset every connection and stop listening; returns within ``timeout`` or raises."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self!r} did not stop within {timeout:g}s")

    # -- requests to the proxy's thread ------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        done = threading.Event()
        result: list[T] = []
        errors: list[Exception] = []

        def call() -> None:
            try:
                result.append(fn())
            except Exception as e:  # raised again in the caller's thread
                errors.append(e)

        with self._lock:
            if self._stopping or not self._thread.is_alive():
                raise RuntimeError(f"{self!r} is closed")
            self._calls.append((call, done))
        self._wake()
        if not done.wait(CALL_TIMEOUT):
            raise RuntimeError(f"{self!r} did not answer within {CALL_TIMEOUT:g}s")
        if errors:
            raise errors[0]
        if not result:
            raise RuntimeError(f"{self!r} closed before answering")
        return result[0]

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _run_calls(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            calls, self._calls = self._calls, []
        for fn, done in calls:
            try:
                fn()
            finally:
                done.set()

    def _do_cut(self) -> None:
        self._cut = True
        for pipe in list(self._pipes):
            self._drop(pipe, reset=True)
        if self._listening:
            try:
                # Linux takes a listening socket out of the listening state on shutdown()
                # and keeps its port: connecting is then refused, as with a server that
                # went away. listen() again restores it.
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                return  # elsewhere: new connections are accepted and reset at once
            self._sel.unregister(self._listener)
            self._listening = False

    def _do_restore(self) -> None:
        self._cut = False
        if not self._listening:
            self._listener.listen(128)
            self._sel.register(self._listener, selectors.EVENT_READ, _LISTEN)
            self._listening = True

    # -- the proxy's thread ------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._sel.select(self._timeout()):
                    if key.data == _WAKE:
                        self._run_calls()
                    elif key.data == _LISTEN:
                        self._accept()
                    else:
                        self._serve(key.data, key.fileobj, mask)  # type: ignore[arg-type]
                self._expire()
        finally:
            for pipe in list(self._pipes):
                self._drop(pipe, reset=True)
            self._listener.close()
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()
            with self._lock:
                calls, self._calls = self._calls, []
            for _, done in calls:
                done.set()

    def _timeout(self) -> float | None:
        """Seconds until the next connection must be killed or given up on."""
        deadlines = [p.drain_by for p in self._pipes if p.drain_by is not None]
        if self._kill_after is not None:
            deadlines += [p.opened + self._kill_after for p in self._pipes]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _expire(self) -> None:
        now = time.monotonic()
        for pipe in list(self._pipes):
            if self._kill_after is not None and now >= pipe.opened + self._kill_after:
                self.killed += 1
                self._drop(pipe, reset=True)
            elif pipe.drain_by is not None and now >= pipe.drain_by:
                self._drop(pipe, reset=True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # the client gave up before being accepted
            if self._cut:
                self.refused += 1
                _reset(client)
                continue
            self.accepted += 1
            client.setblocking(False)
            upstream = socket.socket()
            upstream.setblocking(False)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = upstream.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS):
                _reset(client)
                upstream.close()
                continue
            pipe = _Pipe(client, upstream, time.monotonic())
            self._pipes.append(pipe)
            self._update(pipe)

    def _serve(self, pipe: _Pipe, sock: socket.socket, mask: int) -> None:
        if pipe not in self._pipes:
            return  # dropped earlier in this round of events
        try:
            if pipe.connecting and sock is pipe.upstream:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._drop(pipe, reset=True)  # the target refused: so does the proxy
                    return
                pipe.connecting = False
                self._flush(pipe, pipe.upstream)
            else:
                if mask & selectors.EVENT_READ:
                    data = sock.recv(CHUNK)
                    if data:
                        pipe.outbox(pipe.other(sock)).extend(data)
                    elif pipe.drain_by is None:
                        pipe.drain_by = time.monotonic() + DRAIN_SECONDS
                self._flush(pipe, pipe.client)
                if not pipe.connecting:
                    self._flush(pipe, pipe.upstream)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(pipe, reset=True)  # one side reset: so does the proxy, to the other
            return
        if pipe.drain_by is not None and not pipe.to_client and not pipe.to_upstream:
            self._drop(pipe, reset=False)
            return
        self._update(pipe)

    @staticmethod
    def _flush(pipe: _Pipe, sock: socket.socket) -> None:
        box = pipe.outbox(sock)
        while box:
            sent = sock.send(box)
            del box[:sent]

    def _update(self, pipe: _Pipe) -> None:
        """Watch each side for what it can do next: read unless the other side is behind."""
        for sock in (pipe.client, pipe.upstream):
            if sock is pipe.upstream and pipe.connecting:
                events = selectors.EVENT_WRITE
            else:
                events = 0
                backlog = pipe.outbox(pipe.other(sock))
                if pipe.drain_by is None and len(backlog) < HIGH_WATER:
                    events |= selectors.EVENT_READ
                if pipe.outbox(sock):
                    events |= selectors.EVENT_WRITE
            try:
                key = self._sel.get_key(sock)
            except KeyError:
                if events:
                    self._sel.register(sock, events, pipe)
                continue
            if not events:
                self._sel.unregister(sock)
            elif key.events != events:
                self._sel.modify(sock, events, pipe)

    def _drop(self, pipe: _Pipe, *, reset: bool) -> None:
        self._pipes.remove(pipe)
        for sock in (pipe.client, pipe.upstream):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(sock)
            if reset:
                _reset(sock)
            else:
                sock.close()
