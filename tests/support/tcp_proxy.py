"""A small threaded TCP proxy on loopback that injects connection faults on command.

It sits between a client and a redis-server we started ourselves and can:

* forward traffic both ways (the normal state);
* **cut** every open connection at once (``cut_all``);
* **refuse** new connections by closing its listening socket (``refuse``; nothing is ever sent,
  so the client fails while connecting) and listen again on the same port (``accept_again``);
* **stall connects**: keep the listening socket open but never accept, with a backlog that is
  already full, so a client's connect times out (``stall_connects``);
* **black-hole** traffic: accept and read, but forward nothing and answer nothing, so the
  client's read times out (``blackhole``);
* **drop the next reply**: forward a request, then throw away the server's reply and close that
  connection, so the write lands but the client never learns it (``drop_next_reply``).

What actually hit the traffic is counted: ``cuts`` (connections cut), ``swallowed`` (requests
black-holed), ``dropped_replies``, ``refusals`` and ``stalls``; ``faults`` is their sum.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass, field

FORWARD = "forward"
BLACKHOLE = "blackhole"

_CHUNK = 65536


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket | None
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Listens on ``127.0.0.1:<port>`` and forwards to ``127.0.0.1:<upstream_port>``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = FORWARD
        self.accepted = 0
        self.cuts = 0
        self.swallowed = 0
        self.dropped_replies = 0
        self.refusals = 0
        self.stalls = 0
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._drop_replies = 0
        self._refuse_after_drop = False
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stalled: list[socket.socket] = []
        self._stopping = False
        self.port = 0
        self._listen()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def faults(self) -> int:
        return self.cuts + self.swallowed + self.dropped_replies + self.refusals + self.stalls

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _listen(self, backlog: int = 64, accept: bool = True) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(backlog)
        self.port = listener.getsockname()[1]
        self._listener = listener
        if accept:
            thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
            self._accept_thread = thread
            thread.start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        thread, self._accept_thread = self._accept_thread, None
        if thread is not None:
            thread.join(timeout=5)
        for sock in self._stalled:
            sock.close()
        self._stalled.clear()

    def stop(self) -> None:
        self._stopping = True
        self._close_listener()
        self.cut_all(count=False)

    # -- faults ----------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        if mode not in (FORWARD, BLACKHOLE):
            raise ValueError(mode)
        self.mode = mode

    def forward(self) -> None:
        self.set_mode(FORWARD)

    def heal(self) -> None:
        """Back to normal: forward, listen, and forget any reply drop not yet used."""
        self.set_mode(FORWARD)
        with self._lock:
            self._drop_replies = 0
            self._refuse_after_drop = False
        self.accept_again()

    def blackhole(self) -> None:
        """From now on accept connections and read requests, but forward nothing."""
        self.set_mode(BLACKHOLE)

    def drop_next_reply(self, then_refuse: bool = False) -> None:
        """The next reply the server sends (on any connection) is dropped, that link closed;
        ``then_refuse``: and before the client sees the link close, :meth:`refuse` (so that
        its reconnects, a slot-map refresh's included, are refused)."""
        with self._lock:
            self._drop_replies += 1
            self._refuse_after_drop = self._refuse_after_drop or then_refuse

    @property
    def pending_reply_drops(self) -> int:
        with self._lock:
            return self._drop_replies

    def cut_all(self, count: bool = True) -> int:
        """Close every open connection (both sides); returns how many were cut."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            pair.close()
        if count:
            self.cuts += len(pairs)
        return len(pairs)

    def refuse(self) -> None:
        """Cut every connection and close the listening socket: reconnects are refused."""
        self._close_listener()
        self.cut_all(count=False)
        self.refusals += 1

    def stall_connects(self) -> None:
        """Cut every connection; listen without ever accepting, backlog full: connects hang."""
        self._close_listener()
        self.cut_all(count=False)
        self._listen(backlog=0, accept=False)
        # Fill the accept queue so that further SYNs are dropped and connects hang.
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                filler.connect(("127.0.0.1", self.port))
            self._stalled.append(filler)
        self.stalls += 1

    def accept_again(self) -> None:
        """Listen (again) on the same port and forward."""
        if self._listener is not None and self._accept_thread is not None:
            return
        self._close_listener()
        self._listen()

    # -- plumbing --------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream: socket.socket | None = None
            if self.mode != BLACKHOLE:
                try:
                    upstream = socket.create_connection(self.upstream, timeout=2)
                    upstream.settimeout(None)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    client.close()  # the server is down: the client sees the link close
                    continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: _Pair) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(pair.client, selectors.EVENT_READ, "client")
            if pair.upstream is not None:
                selector.register(pair.upstream, selectors.EVENT_READ, "upstream")
            while not pair.closed:
                for key, _ in selector.select(timeout=0.2):
                    if not self._move(pair, str(key.data)):
                        return
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            with self._lock:
                self._pairs.discard(pair)
            pair.close()

    def _move(self, pair: _Pair, side: str) -> bool:
        """Move one chunk; False when the pair is finished."""
        source = pair.client if side == "client" else pair.upstream
        assert source is not None
        data = source.recv(_CHUNK)
        if not data:
            return False
        if side == "client":
            if self.mode == BLACKHOLE or pair.upstream is None:
                with self._lock:
                    self.swallowed += 1
                return True  # swallowed: the client waits for a reply that never comes
            pair.upstream.sendall(data)
            return True
        with self._lock:
            drop = self._drop_replies > 0
            refuse = False
            if drop:
                self._drop_replies -= 1
                self.dropped_replies += 1
                refuse, self._refuse_after_drop = self._refuse_after_drop, False
        if refuse:
            self.refuse()  # (cuts this link too)
        if drop:
            return False  # the request ran on the server; its reply is lost with the link
        pair.client.sendall(data)
        return True
