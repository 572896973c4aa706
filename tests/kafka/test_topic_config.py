"""Topics on Apache Kafka as ts_salobj makes them, and compaction across both kinds of writer.

ts_salobj 8 creates event topics with ``cleanup.policy=compact`` and one
partition, the others with the broker's defaults; what a late joiner reads as
an event's history is what compaction keeps: the newest message per byte key.
The "ts_salobj" messages here are written by a plain producer with the key
ts_salobj builds (its f-string, written out literally), beside sal-kafka's
own writers on the same topic.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from sal_kafka import Codec, KafkaConfig, Reader, Session, Writer
from tests.kafka.test_kafka import load, read_all

pytestmark = pytest.mark.broker


def _configs(config: KafkaConfig, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AdminClient(config.admin_conf())
    futures = admin.describe_configs([ConfigResource("topic", n) for n in names])
    return {r.name: {k: e.value for k, e in f.result(10).items()} for r, f in futures.items()}


def test_topics_are_made_as_ts_salobj_makes_them(kafka_config: KafkaConfig) -> None:
    ktest = load("KTest", kafka_config)
    topics = [ktest["evt_scalars"], ktest["tel_scalars"], ktest["cmd_setScalars"], ktest["ack_ackcmd"]]
    with Session(kafka_config) as session:
        session.ensure_topics(topics)
        meta = session.admin.list_topics(timeout=10).topics
    configs = _configs(kafka_config, [t.kafka_name for t in topics])
    policies = {t.kind: configs[t.kafka_name]["cleanup.policy"] for t in topics}
    assert policies == {"event": "compact", "telemetry": "delete", "command": "delete", "ackcmd": "delete"}
    for topic in topics:
        partitions = meta[topic.kafka_name].partitions
        assert len(partitions) == 1 and [len(p.replicas) for p in partitions.values()] == [1]


def test_compaction_keeps_the_newest_event_per_key_of_either_writer(kafka_config: KafkaConfig) -> None:
    ktest = load("KTest", kafka_config)
    topic = ktest["evt_scalars"]
    name = topic.kafka_name
    admin = AdminClient(kafka_config.admin_conf())
    # as ts_salobj makes it, with segments that roll at once and a cleaner that cleans anything dirty
    settings = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001"}
    for future in admin.create_topics([NewTopic(name, 1, 1, config=settings)]).values():
        future.result(10)
    one = Writer(ktest, "evt_scalars", index=1, config=kafka_config)
    two = Writer(ktest, "evt_scalars", index=2, config=kafka_config)
    salobj = Producer(kafka_config.producer_conf())
    keys = {i: f'{{ "name": "KTest", "index": {i}, "topic": "logevent_scalars" }}'.encode() for i in (1, 3)}
    assert keys[1] == one.key  # the same byte key: both writers' messages of KTest:1 compact together
    for value in range(1, 6):
        one.write(int0=value)
        two.write(int0=10 + value)
        record = {**one.data, "salIndex": 3, "int0": 30 + value}
        salobj.produce(name, one.codec.encode_message(record, "strict"), keys[3])
    one.flush()
    two.flush()
    salobj.produce(name, one.codec.encode_message({**one.data, "int0": 100}, "strict"), keys[1])  # the newest of 1
    salobj.flush(10)
    time.sleep(0.3)
    two.write(int0=99, wait=True)  # rolls the segment: all above is in a closed one, for the cleaner
    deadline = time.monotonic() + 60
    while (left := _read_back(kafka_config, name)) and len(left) > 4:
        assert time.monotonic() < deadline, f"not compacted within 60 s: {len(left)} messages"
        time.sleep(0.5)
    # the newest of each key, written by either side; the last message (in the active
    # segment, which the cleaner leaves alone) may still have an older twin before it
    assert {k: v for k, v, _ in left} == {keys[1]: 100, two.key: 99, keys[3]: 35}
    assert left[-1][:2] == (two.key, 99)
    cleaned = [k for k, _, _ in left[:-1]]
    assert len(cleaned) == len(set(cleaned))
    with Reader(ktest, ["evt_scalars"], config=kafka_config) as reader:  # a late joiner's history
        history = read_all(reader, 3, timeout=10)
    assert sorted((r.data["salIndex"], r.data["int0"]) for r in history) == [(1, 100), (2, 99), (3, 35)]
    one.close()
    two.close()


def _read_back(config: KafkaConfig, name: str) -> list[tuple[bytes, int, int]]:
    """(key, int0, offset) of every message the topic holds now."""
    codec = Codec(load("KTest", config)["evt_scalars"])
    consumer = Consumer(config.consumer_conf(**{"group.id": "compaction", "enable.partition.eof": True}))
    consumer.assign([TopicPartition(name, 0, 0)])
    found = []
    try:
        while (message := consumer.poll(5.0)) is not None and message.error() is None:
            record = codec.decode(message.value()[5:])
            found.append((message.key(), record["int0"], message.offset()))
    finally:
        consumer.close()
    return found
