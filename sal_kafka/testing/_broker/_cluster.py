"""Apache Kafka in KRaft mode on loopback: one combined broker+controller node, or three.

Each node is a ``kafka.Kafka`` JVM with ``process.roles=broker,controller``,
its storage formatted by ``kafka.tools.StorageTool`` in a folder of its own,
on free loopback ports. Three nodes form one static controller quorum
(``controller.quorum.voters``): any two of them keep the cluster running, so
killing one node (broker and voter) is the fault users meet in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..._util import keep_temporary, sigint_deferred
from ...errors import BrokerError
from ._jars import KafkaJars, find_java, kafka_jars

__all__ = ["KafkaCluster", "KafkaNode", "free_port"]

_LOG4J = Path(__file__).with_name("log4j2.properties")
#: A broker sized for a 2-core, 24 GiB machine that also runs the clients: the
#: heap grows to 1 GiB (what Kafka's own start script gives), G1 as Kafka tunes it.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

#: A short-lived tool starts faster with the first JIT tier only.
_TOOL = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class KafkaNode:
    """One KRaft node: its id, ports, folder and process."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    sasl_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_address(self) -> str:
        """The SASL_PLAINTEXT (SCRAM-SHA-512) listener, when the cluster has SCRAM users."""
        if self.sasl_port is None:
            raise BrokerError(f"Kafka node {self.node_id} has no SASL listener (give the cluster scram_users)")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def log(self) -> Path:
        """The broker's own log (log4j2), kept in the node's folder."""
        return self.folder / "server.log"

    @property
    def pid(self) -> int:
        """The node's process id (it must have been started)."""
        if self.process is None:
            raise BrokerError(f"Kafka node {self.node_id} is not started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The last lines of the node's log and of its standard output."""
        parts = []
        for path in (self.log, self.folder / "stdout.log"):
            if path.is_file():
                text = path.read_text(errors="replace").strip().splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts) or "(the node wrote no log)"


class KafkaCluster:
    """Apache Kafka nodes on free loopback ports; `stop` ends them and removes a temporary folder.

    Parameters
    ----------
    nodes : int
        1 (the embedded default) or more; with 3, new topics get replication
        factor 3 and ``min.insync.replicas=2`` by default, as in production.
    workdir : path, optional
        Where each node's storage and log go (``node-<id>/``); a temporary folder by default.
    version : str, optional
        The Apache Kafka release (see `sal_kafka._broker.kafka_jars`).
    settings : mapping, optional
        Broker settings over the defaults (``server.properties`` keys).
    scram_users : mapping, optional
        ``{user: password}``: each node also listens with SASL_PLAINTEXT and
        SCRAM-SHA-512 (as ts_salobj deployments connect), these users'
        credentials stored when the storage is formatted.
    """

    def __init__(
        self,
        nodes: int = 1,
        workdir: str | os.PathLike[str] | None = None,
        *,
        version: str | None = None,
        settings: Mapping[str, Any] | None = None,
        scram_users: Mapping[str, str] | None = None,
    ) -> None:
        if nodes < 1:
            raise BrokerError(f"a cluster needs at least one node, got {nodes}")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sal-kafka-broker-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self._version = version
        self._jars: KafkaJars | None = None
        self.settings = dict(settings or {})
        self.scram_users = dict(scram_users or {})
        self.cluster_id = _cluster_id()
        self.nodes = [
            KafkaNode(
                i, free_port(), free_port(), self.workdir / f"node-{i}", sasl_port=free_port() if scram_users else None
            )
            for i in range(1, nodes + 1)
        ]
        #: seconds from `start` to every node's metadata answering (set by `start`)
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ what clients need

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.address for n in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The SASL_PLAINTEXT listeners (a cluster made with ``scram_users``)."""
        return ",".join(n.sasl_address for n in self.nodes)

    @property
    def replication_factor(self) -> int:
        """What new topics get: 3 on a cluster of three nodes or more, else one per node."""
        return min(3, len(self.nodes))

    @property
    def version(self) -> str:
        """The Apache Kafka release running (known once the jars are found)."""
        return self.jars.version

    @property
    def jars(self) -> KafkaJars:
        if self._jars is None:
            self._jars = kafka_jars(self._version)
        return self._jars

    def node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise BrokerError(f"no node {node_id}; the nodes are {[n.node_id for n in self.nodes]}")

    # ------------------------------------------------------------------ configuration

    def server_properties(self, node: KafkaNode) -> dict[str, str]:
        """The settings of one node: 4.x's shipped defaults moved to loopback, and tuned for tests."""
        replicas = self.replication_factor
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        props: dict[str, Any] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": node.folder / "data",
            # production clusters create topics explicitly (Strimzi: no auto-creation); so do we
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "default.replication.factor": replicas,
            "min.insync.replicas": 2 if replicas >= 3 else 1,
            "offsets.topic.replication.factor": replicas,
            # one partition of group offsets is enough here and makes the first group join quick
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": 2 if replicas >= 3 else 1,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": 2 if replicas >= 3 else 1,
            "group.initial.rebalance.delay.ms": 0,
            # a client on a 2-core machine shares it with the broker: fewer threads
            "num.network.threads": 2,
            "num.io.threads": 4,
            # compaction is checked by tests: the cleaner looks every second
            "log.cleaner.backoff.ms": 1000,
        }
        if len(self.nodes) > 1:
            # an embedded cluster is stopped whole (`kill` of every node, as `dev --keep`
            # prints): a node's controlled shutdown asks controllers that are stopping
            # too, and the last one waited for them for minutes; acks=all messages are on
            # two replicas already, so nothing acknowledged depends on the hand-over
            props["controlled.shutdown.enable"] = "false"
        if node.sasl_port is not None:
            props["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{node.sasl_port}"
            props["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{node.sasl_port}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
            props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        props.update(self.settings)
        return {k: str(v) for k, v in props.items()}

    # ------------------------------------------------------------------ starting and stopping

    def start(self, timeout: float = 90.0, detach: bool = False) -> KafkaCluster:
        """Format every node's storage (first start only), start them, and wait until the
        metadata lists every broker. ``detach`` lets them outlive this process.

        Raises
        ------
        BrokerError
            When Java or the jars are missing, or a node exits or is not ready in
            time (with the last lines of its log).
        """
        began = time.monotonic()
        try:
            self._format([n for n in self.nodes if not (n.folder / "data" / "meta.properties").is_file()])
            for node in self.nodes:
                self._launch(node, detach)
            self.wait_ready(timeout - (time.monotonic() - began))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _java(self, main: str, *args: str, node: KafkaNode, options: tuple[str, ...] = JVM_OPTIONS) -> list[str]:
        # $SAL_KAFKA_JVM_OPTIONS come last: of two -Xmx (or two collectors) the last wins
        extra = tuple(os.environ.get("SAL_KAFKA_JVM_OPTIONS", "").split()) if options is JVM_OPTIONS else ()
        return [
            find_java(),
            *options,
            *extra,
            f"-Dlog4j2.configurationFile={_LOG4J}",
            f"-Dkafka.logs.dir={node.folder}",
            "-cp",
            self.jars.classpath,
            main,
            *args,
        ]

    def _write_properties(self, node: KafkaNode) -> Path:
        node.folder.mkdir(parents=True, exist_ok=True)
        path = node.folder / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.server_properties(node).items()))
        return path

    def _format(self, nodes: list[KafkaNode]) -> None:
        """Format the storage of ``nodes``, all at once (a JVM each: ~2 s, in parallel)."""
        running = []
        for node in nodes:
            path = self._write_properties(node)
            command = self._java(
                # "=": a cluster id may begin with "-", which argparse would take for an option
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={self.cluster_id}",
                f"--config={path}",
                *(f"--add-scram=SCRAM-SHA-512=[name={u},password={p}]" for u, p in self.scram_users.items()),
                node=node,
                options=_TOOL,
            )
            running.append((node, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        for node, proc in running:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise BrokerError(
                    f"formatting the storage of Kafka node {node.node_id} in {node.folder} failed "
                    f"(status {proc.returncode}):\n{out.decode(errors='replace').strip()[-2000:]}"
                )

    def _launch(self, node: KafkaNode, detach: bool = False) -> None:
        path = self._write_properties(node)
        log = open(node.folder / "stdout.log", "ab")  # noqa: SIM115 - the process owns it
        with sigint_deferred():  # a Ctrl-C here must not leave an unrecorded broker
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(path), node=node),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every running node answers metadata naming every running node as a broker."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + max(timeout, 1.0)
        live = [n for n in self.nodes if n.process is not None]
        wanted = {n.node_id for n in live}
        for node in live:
            _wait_port(node, deadline)
        admin = AdminClient({"bootstrap.servers": ",".join(n.address for n in live), "log.connection.close": False})
        while True:
            self._check_alive(live)
            try:
                brokers = set(admin.list_topics(timeout=1.0).brokers)
            except Exception:  # noqa: BLE001 - KafkaException while the nodes elect a leader
                brokers = set()
            if wanted <= brokers:
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka nodes {sorted(wanted)} were not all ready within {timeout:.0f} s "
                    f"(metadata lists {sorted(brokers)}):\n" + "\n".join(n.tail() for n in live)
                )
            time.sleep(0.1)

    def _check_alive(self, nodes: list[KafkaNode]) -> None:
        for node in nodes:
            _check_alive(node)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (its broker and its controller), as a crash would."""
        node = self.node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait(30)

    def restart(self, node_id: int, timeout: float = 60.0) -> None:
        """Start a killed or stopped node again on the same ports and storage."""
        node = self.node(node_id)
        if node.running:
            self.kill(node_id)
        self._launch(node)
        self.wait_ready(timeout)

    def leader(self, topic: str, partition: int = 0, timeout: float = 10.0) -> int:
        """The node id that leads ``topic``'s ``partition`` now."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": ",".join(n.address for n in self.nodes if n.running)})
        meta = admin.list_topics(topic, timeout=timeout).topics[topic]
        if meta.error is not None or partition not in meta.partitions:
            raise BrokerError(f"{topic} [{partition}] has no leader: {meta.error}")
        return int(meta.partitions[partition].leader)

    def detach(self) -> None:
        """Let the nodes and their folder outlive this object (``sal-kafka dev --keep``)."""
        for node in self.nodes:
            node.process = None
        keep_temporary(self._tmp)  # dropping it would delete the folder
        self._tmp = None

    def stop(self, graceful: bool | None = None) -> None:
        """Stop every node and remove a temporary folder.

        ``graceful`` (default: when the storage is kept, i.e. a ``workdir`` was
        given) is a controlled shutdown (SIGTERM, then SIGKILL after 20 s);
        otherwise the nodes are killed at once: their storage is deleted, and
        three nodes shutting down together take some 20 s to hand over.
        """
        graceful = self._tmp is None if graceful is None else graceful
        running = [n.process for n in self.nodes if n.process is not None and n.process.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        for proc in running:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for node in self.nodes:
            node.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (as StorageTool's random-uuid)."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _check_alive(node: KafkaNode) -> None:
    if node.process is not None and node.process.poll() is not None:
        raise BrokerError(
            f"Kafka node {node.node_id} exited with status {node.process.returncode} while starting:\n" + node.tail()
        )


def _wait_port(node: KafkaNode, deadline: float) -> None:
    while True:
        _check_alive(node)
        try:
            with socket.create_connection(("127.0.0.1", node.port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"Kafka node {node.node_id} did not listen on {node.address} in time:\n" + node.tail()
                ) from None
            time.sleep(0.05)
