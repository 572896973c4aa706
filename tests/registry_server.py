"""Start the local registry server as a real process on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryProcess:
    """``sal-kafka registry serve`` in a subprocess; ``url`` once started."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> RegistryProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sal_kafka", "registry", "serve", "--port", str(self.port), "--db", str(self.db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                httpx.get(self.url + "/subjects", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(f"registry did not start on {self.url}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
