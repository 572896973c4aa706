"""A three-node Apache Kafka cluster on loopback: what users outgrow one machine into.

Topics get 3 replicas and ``min.insync.replicas=2``; the leader of a partition
is killed (SIGKILL) under a writer with ``acks=all`` and a live reader, and
under a Remote commanding a Controller, then brought back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
