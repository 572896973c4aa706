"""Kafka Connect on loopback: a standalone worker with Debezium's PostgreSQL
connector, its metrics served by the Prometheus JMX exporter.

The worker is Apache Kafka's own (``org.apache.kafka.connect.cli.ConnectStandalone``,
``connect-runtime`` of the broker's Kafka version), run with the machine's Java
17 like the broker; its jars come from Maven Central once (``connect.xml``),
into the same cache as the broker's. Its REST API and the exporter listen on
free loopback ports; offsets are kept in a file of its folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._util import sigint_deferred
from ...errors import BrokerError
from .._process import Supervised
from ._cluster import JVM_OPTIONS, free_port
from ._jars import KAFKA_VERSION, find_java, maven_jars

__all__ = ["KafkaConnect", "debezium_postgres", "connect_jars", "DEBEZIUM_VERSION", "JMX_EXPORTER_VERSION"]

#: Debezium's release (3.6.1.Final: the newest one Maven Central serves whole).
DEBEZIUM_VERSION = "3.6.1.Final"
#: The Prometheus JMX exporter's Java agent (1.0.1: the newest one Maven Central serves).
JMX_EXPORTER_VERSION = "1.0.1"
_POM = Path(__file__).with_name("connect.xml")
_LOG4J = Path(__file__).with_name("log4j2.properties")

# What the exporter reports: Kafka Connect's worker, connector and task metrics
# and Debezium's streaming metrics, named after their MBean (lower-cased), with
# the connector and task as labels; JVM metrics come with the agent.
_EXPORTER_RULES = """\
lowercaseOutputName: true
lowercaseOutputLabelNames: true
rules:
  - pattern: 'kafka.connect<type=connector-task-metrics, connector=(.+), task=(.+)><>status: ([a-z-]+)'
    name: kafka_connect_task_status
    value: 1
    labels: {connector: "$1", task: "$2", status: "$3"}
    type: GAUGE
  - pattern: 'kafka.connect<type=connector-metrics, connector=(.+)><>status: ([a-z-]+)'
    name: kafka_connect_connector_status
    value: 1
    labels: {connector: "$1", status: "$2"}
    type: GAUGE
  - pattern: 'kafka.connect<type=(source|sink)-task-metrics, connector=(.+), task=(.+)><>(.+): (.+)'
    name: kafka_connect_$1_task_$4
    labels: {connector: "$2", task: "$3"}
    type: GAUGE
  - pattern: 'kafka.connect<type=connector-task-metrics, connector=(.+), task=(.+)><>([a-z-]+): (.+)'
    name: kafka_connect_task_$3
    labels: {connector: "$1", task: "$2"}
    type: GAUGE
  - pattern: 'kafka.connect<type=connect-worker-metrics><>([a-z-]+): (.+)'
    name: kafka_connect_worker_$1
    type: GAUGE
  - pattern: >-
      debezium.([^:]+)<type=connector-metrics, context=([^,]+), server=([^,>]+)(?:, task=([^,>]+))?.*><>(\\w+): (.+)
    name: debezium_$2_$5
    labels: {plugin: "$1", server: "$3", task: "$4"}
    type: GAUGE
"""


def connect_jars() -> Path:
    """The folder of the Connect worker's jars (fetched once; see `maven_jars`)."""
    properties = {
        "kafka.version": os.environ.get("SAL_KAFKA_KAFKA_VERSION") or KAFKA_VERSION,
        "debezium.version": DEBEZIUM_VERSION,
        "jmx.exporter.version": JMX_EXPORTER_VERSION,
    }
    name = f"connect-{properties['kafka.version']}-debezium-{DEBEZIUM_VERSION}"
    return maven_jars(_POM, properties, name, what="Kafka Connect with Debezium", marker="connect-runtime-")


def debezium_postgres(
    name: str,
    *,
    host: str,
    port: int,
    database: str,
    user: str,
    topic_prefix: str,
    tables: list[str] | None = None,
    schemas: list[str] | None = None,
    password: str = "",
    slot: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The configuration of a Debezium PostgreSQL source connector: change events of
    ``tables`` (``schema.table``), or of every table of ``schemas`` (then tables made
    later too), to ``<topic_prefix>.<schema>.<table>``, by PostgreSQL's own
    ``pgoutput`` logical decoding, as JSON without schemas."""
    if (tables is None) == (schemas is None):
        raise ValueError("give the tables or the schemas to capture, one of them")
    chosen = {"table.include.list": ",".join(tables)} if tables is not None else {}
    if schemas is not None:
        chosen["schema.include.list"] = ",".join(schemas)
    return {
        "name": name,
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": host,
        "database.port": str(port),
        "database.user": user,
        "database.password": password,
        "database.dbname": database,
        "topic.prefix": topic_prefix,
        **chosen,
        "slot.name": slot or f"{name}_slot".replace("-", "_"),
        "publication.autocreate.mode": "filtered",
        # the worker creates the topics (our brokers never auto-create them)
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.partitions": "1",
        **extra,
    }


class KafkaConnect(Supervised):
    """A standalone Kafka Connect worker with ``connectors``, on loopback.

    Parameters
    ----------
    bootstrap_servers : str
        The Kafka cluster.
    connectors : list of dict
        Connector configurations (each with a ``name``), e.g. `debezium_postgres`.
    workdir : path, optional
        Its folder (offsets, configuration, log); a temporary one by default.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        connectors: list[Mapping[str, str]],
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.connectors = [dict(c) for c in connectors]
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-connect-")
        self.folder = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rest_port = free_port()
        self.metrics_port = free_port()
        self.process = None
        self.stop_timeout = 30.0

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def metrics_url(self) -> str:
        """The JMX exporter's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log(self) -> Path:
        return self.folder / "connect.log"

    def worker_properties(self) -> dict[str, str]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "offset.storage.file.filename": str(self.folder / "offsets.dat"),
            "offset.flush.interval.ms": "1000",
            "listeners": self.rest_url,
            "plugin.discovery": "only_scan",  # the connector is on the class path
        }

    def start(self, timeout: float = 120.0, detach: bool = False) -> KafkaConnect:
        """Start the worker (``detach``: in a session of its own, to outlive this
        process); return once every connector and task is RUNNING.

        Raises
        ------
        BrokerError
            The worker exited, or a connector or task is not RUNNING within
            ``timeout`` (with its trace, or the log's last lines).
        """
        libs = connect_jars()
        agent = libs / f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
        if not agent.is_file():
            raise BrokerError(f"{agent} is missing: remove {libs.parent} to fetch the jars again")
        worker = self.folder / "worker.properties"
        worker.write_text("".join(f"{k}={v}\n" for k, v in self.worker_properties().items()))
        files = []
        for connector in self.connectors:
            path = self.folder / f"{connector['name']}.properties"
            path.write_text("".join(f"{k}={v}\n" for k, v in connector.items()))
            files.append(str(path))
        rules = self.folder / "jmx-exporter.yaml"
        rules.write_text(_EXPORTER_RULES)
        command = [
            find_java(),
            *JVM_OPTIONS,
            f"-javaagent:{agent}=127.0.0.1:{self.metrics_port}:{rules}",
            f"-Dlog4j2.configurationFile={_LOG4J}",
            f"-Dkafka.logs.dir={self.folder}",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(worker),
            *files,
        ]
        out = open(self.log, "ab")  # noqa: SIM115 - the process owns it
        with sigint_deferred():
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=detach)
        out.close()
        try:
            self._wait_running(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def status(self, name: str) -> dict[str, Any]:
        """The REST API's ``/connectors/<name>/status``."""
        with urllib.request.urlopen(f"{self.rest_url}/connectors/{name}/status", timeout=5) as answer:
            return dict(json.load(answer))

    def _wait_running(self, deadline: float) -> None:
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"Kafka Connect exited with status {self.process.returncode}:\n{self.tail()}")
            try:
                states = [self.status(c["name"]) for c in self.connectors]
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
                time.sleep(0.5)
                continue
            last = states
            failed = [t for s in states for t in [s["connector"], *s["tasks"]] if t.get("state") == "FAILED"]
            if failed:
                raise BrokerError(f"a Kafka Connect connector failed: {failed[0].get('trace', '')[:3000]}")
            if all(s["connector"]["state"] == "RUNNING" and s["tasks"] for s in states) and all(
                t["state"] == "RUNNING" for s in states for t in s["tasks"]
            ):
                return
            time.sleep(0.5)
        raise BrokerError(f"Kafka Connect's connectors are not RUNNING ({last}):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last lines of the worker's log."""
        for path in (self.folder / "server.log", self.log):
            if path.is_file() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def __enter__(self) -> KafkaConnect:
        return self.start()
