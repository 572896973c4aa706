"""Start the local registry server as a real process on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from sal_kafka.testing import free_port

__all__ = ["RegistryProcess", "free_port"]


class RegistryProcess:
    """``sal-kafka registry serve`` in a subprocess; ``url`` once started."""

    def __init__(
        self, db: Path, port: int | None = None, host: str = "127.0.0.1", extra: list[str] | None = None
    ) -> None:
        self.db = db
        self.host = host
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0, check: bool = True) -> RegistryProcess:
        """Start, and wait until it answers (any HTTP status: ``check=False`` for one that needs credentials)."""
        command = [sys.executable, "-m", "sal_kafka", "registry", "serve", "--host", self.host]
        command += ["--port", str(self.port), "--db", str(self.db), *self.extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                answer = httpx.get(self.url + "/subjects", timeout=1.0)
                if not check or answer.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
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
