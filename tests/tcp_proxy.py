"""A small TCP proxy for fault tests: put it between a process and a server (PostgreSQL, a broker), then
``cut()`` the link (every open connection reset, new ones refused) and ``restore()`` it, without touching
the server itself.

    with TcpProxy("127.0.0.1", 5432) as proxy:      # listens on proxy.port (a free port of 127.0.0.1)
        ... point the process at 127.0.0.1:proxy.port ...
        proxy.cut(); time.sleep(3); proxy.restore()
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading

from tests.brokers import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int | None = None):
        self.target = (target_host, target_port)
        self.host, self.port = host, port or free_port()
        self.connections = 0  # accepted since start
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._accepting: threading.Thread | None = None

    def __enter__(self):
        self.restore()
        return self

    def __exit__(self, *exc):
        self.cut()

    @property
    def up(self) -> bool:
        return self._listener is not None

    def restore(self) -> None:
        """Listen again on the same port and forward new connections."""
        if self._listener is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self._listener = sock
        self._accepting = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        """Stop listening (connects are refused) and reset every open connection at both ends."""
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._accepting is not None:
            self._accepting.join(5)
            self._accepting = None
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for s in pair:
                _reset(s)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            self.connections += 1
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        other = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        try:
            for s in pair:
                sel.register(s, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    other[key.fileobj].sendall(data)
        except (OSError, ValueError):
            return  # reset by cut(), or a peer went away
        finally:
            sel.close()
            with self._lock:
                self._pairs.discard(pair)
            for s in pair:
                _reset(s)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the link break, not an orderly end. SHUT_RD first wakes
    a pump thread blocked on this socket (it reads the end) without sending a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
