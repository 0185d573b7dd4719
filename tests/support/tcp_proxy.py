"""A TCP forwarder on loopback that can be cut and restored: what a client sees when the server
behind it (PostgreSQL, Redis, SMTP) restarts or goes away for a while.

``cut()`` resets every open connection and stops listening, so new connections are refused, as
while a server restarts; ``restore()`` listens again on the same port. Standard library only,
so the fault tests (tests/) and the load-and-fault benchmark (bench/load.py) share it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a crashed server's kernel would. ``shutdown`` first:
    a bare ``close`` neither wakes the pump blocked in ``recv`` on the socket nor lets the kernel
    tear the connection down while that call holds it, so the peer would never hear of it (and
    a query sent meanwhile would vanish, leaving its sender waiting)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = port
        self.cuts = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: the listener was closed
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _reset(client)
                    _reset(server)
                    return
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _reset(source)
            _reset(target)

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_now, self._open = set(self._open), set()
        if listener is not None:
            listener.close()
        for sock in open_now:
            _reset(sock)
        self.cuts += 1

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    def close(self) -> None:
        self.cut()
