"""A three-node Apache Kafka cluster on loopback: what users outgrow one machine into.

Topics get 3 replicas and ``min.insync.replicas=2``; the leader of a partition
is killed (SIGKILL) under a writer with ``acks=all`` and a live reader, and
under a Remote commanding a Controller, then brought back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from sal_kafka import ComponentInfo, Session
from sal_kafka.testing import Stack, command_through, kill_leader_schedule, write_through

pytestmark = [pytest.mark.broker, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Stack]:
    with Stack(brokers=3) as stack:
        yield stack


def _subname() -> str:
    return f"cluster{uuid.uuid4().hex[:8]}"


def test_new_topics_have_three_replicas_and_two_in_sync(cluster: Stack) -> None:
    config = cluster.config(topic_subname=_subname())
    mirror = ComponentInfo.load("KMirror", topic_subname=config.topic_subname)
    topic = mirror["evt_detailedState"]
    with Session(config) as session:
        session.ensure_topics([topic])
        meta = session.admin.list_topics(topic.kafka_name, timeout=10).topics[topic.kafka_name]
    assert [sorted(p.replicas) for p in meta.partitions.values()] == [[1, 2, 3]]
    admin = AdminClient(config.admin_conf())
    resource = ConfigResource("topic", topic.kafka_name)
    (future,) = admin.describe_configs([resource]).values()
    entries = future.result(10)
    assert entries["min.insync.replicas"].value == "2"
    assert entries["cleanup.policy"].value == "compact"


def test_killing_the_leader_under_acks_all_loses_no_acknowledged_message(cluster: Stack) -> None:
    """With Kafka's defaults the new leader is elected about 9 s after the kill (the
    controller fences a broker once broker.session.timeout.ms, 9 s, passes without its
    heartbeat): a message timeout above that lets every message through."""
    election: dict[str, float] = {}
    tally = write_through(
        cluster,
        lambda topic: kill_leader_schedule(cluster, topic, at=2.0, down=6.0, election=election),
        acks="all",
        rate=200,
        seconds=16.0,
        subname=_subname(),
        timeout=30.0,
    )
    assert "elected" in election, tally.events
    assert tally.acknowledged == tally.written and tally.failed_reported == 0, tally
    assert tally.acked_missing == 0 and tally.unreported == 0, tally
    # the reader went on through the election without a restart
    assert tally.live_acked_missing == 0, tally
    assert tally.duplicates == 0, tally  # acks=all writers are idempotent
    assert all(n.running for n in cluster.kafka.nodes)


async def test_commands_succeed_again_within_10_s_of_the_election(cluster: Stack) -> None:
    election: dict[str, float] = {}
    tally = await command_through(
        cluster,
        lambda topic: kill_leader_schedule(cluster, topic, at=2.0, down=8.0, election=election),
        seconds=24.0,
        subname=_subname(),
        election=election,
    )
    assert tally.election_seconds is not None, tally.events
    assert tally.recovered_after_election is not None and tally.recovered_after_election < 10.0, tally
    assert tally.completed > 0.5 * tally.sent, tally
    assert all(n.running for n in cluster.kafka.nodes)


def test_dev_keep_with_three_brokers_leaves_a_cluster_running(tmp_path: Path) -> None:
    """``sal-kafka dev --brokers 3 --keep``: three nodes and the registry keep running, the
    printed exports point at all three, and the bundled topics have three replicas."""
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "dev", "--brokers", "3", "--keep", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    pids = [int(p) for p in lines[-1].rsplit("kill ", 1)[1].split()]
    try:
        assert len(pids) == 4 and exports["SAL_KAFKA_REPLICATION_FACTOR"] == "3"
        assert any(line.startswith("Apache Kafka 4.") and "ready in" in line for line in lines)
        servers = exports["SAL_KAFKA_BOOTSTRAP_SERVERS"]
        assert len(servers.split(",")) == 3
        admin = AdminClient({"bootstrap.servers": servers})
        meta = admin.list_topics(timeout=10)
        assert sorted(meta.brokers) == [1, 2, 3]
        state = meta.topics["lsst.sal.KTest.logevent_summaryState"]
        assert [len(p.replicas) for p in state.partitions.values()] == [3]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        # before controlled.shutdown.enable=false, the last node waited for a quorum that
        # was going away, minutes here (docs/kafka.md); now a few seconds
        deadline = time.monotonic() + 150
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child of this process is a zombie until reaped; it is not running
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False
