"""A TCP proxy on a free loopback port that can hang: an outage of what is behind it.

``hang()`` is what a SIGSTOPped server looks like to its clients: connections
are accepted (by the kernel) and requests sent, and nothing is answered until
``resume()``. Used to stop the registry under a reader or a sink without
stopping it for anyone else.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``; `hang` and `resume`.

    Examples
    --------
    >>> with TcpProxy(stack.registry_port) as proxy:
    ...     config = RegistryConfig(url=proxy.url, timeout=1.0)
    ...     proxy.hang()       # the registry stops answering
    ...     proxy.resume()
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._running = threading.Event()  # set: forwarding; clear: hung
        self._running.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="sal-kafka-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (for an HTTP server behind it, e.g. the registry)."""
        return f"http://127.0.0.1:{self.port}"

    def hang(self) -> None:
        """Stop answering (nothing is forwarded either way) until `resume`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def hung(self) -> bool:
        return not self._running.is_set()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._running.wait()
        try:
            upstream = socket.create_connection(self.target, timeout=5.0)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets += [client, upstream]
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._running.wait()  # hung: held here, as a stopped process holds it
                if self._closed:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._running.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
