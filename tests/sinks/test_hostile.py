"""The sink under hostile input, on the real broker, registry and PostgreSQL 18.

No message stops it or is lost: one that cannot be a row, or that the database
refuses, is set aside whole in ``sal_kafka_set_aside`` in the same transaction,
counted and logged; a registry that cannot answer holds the partition, never
skips; a table changed by hand is one `SinkError`; two topic sub-namespaces
never share a table; a newer writer's field becomes a column.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import attrs
import psycopg
import pytest
from confluent_kafka import Producer

from sal_kafka import Codec, ComponentInfo, KafkaConfig, Session, TopicInfo, Writer
from sal_kafka.codec._framing import frame
from sal_kafka.codec._keys import message_key
from sal_kafka.registry import RegistryConfig
from sal_kafka.sinks import PostgresSink, SinkError
from sal_kafka.sinks.postgres._tables import schema_of
from sal_kafka.testing import Stack, TcpProxy, sample_record
from tests.conftest import BUNDLED

pytestmark = [pytest.mark.broker, pytest.mark.server]


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query).fetchall()


def count(url: str, table: str) -> int:
    try:
        return int(rows(url, f"SELECT count(*) FROM {table}")[0][0])
    except psycopg.errors.UndefinedTable:
        return 0


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def full_record(topic: TopicInfo, **values: Any) -> dict[str, Any]:
    """Every field (private ones too), as a writer would send it, with ``values``."""
    record = {f.name: ([f.default] * f.count if f.count > 1 else f.default) for f in topic.fields.values()}
    record.update(sample_record(topic))
    now = time.time()
    record.update(private_sndStamp=now + 37, private_efdStamp=now, private_kafkaStamp=now + 37)
    record.update(values)
    return record


def produce(config: KafkaConfig, topic: TopicInfo, values: list[bytes]) -> None:
    """Raw messages, with the key ts_salobj gives the topic (events are compacted: keyed)."""
    producer = Producer({"bootstrap.servers": config.bootstrap_servers})
    for value in values:
        producer.produce(topic.kafka_name, value, key=message_key(topic, 0))
    assert producer.flush(10) == 0


class Running:
    """A sink in a thread: ``error`` is what it raised, if anything."""

    def __init__(self, sink: PostgresSink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sink.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.sink.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_poison_messages_are_set_aside_and_the_batch_goes_on(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    topic = ktest["evt_scalars"]
    with Session(kafka_config) as session:
        sid = session.schema_id(topic)
        session.ensure_topics([topic])
    assert sid is not None
    codec = Codec(topic, schema_id=sid)
    values = [
        codec.encode_message(full_record(topic, int0=1)),
        codec.encode_message(full_record(topic, private_efdStamp=math.nan)),  # ValueError before: the sink exited
        codec.encode_message(full_record(topic, private_efdStamp=1e20)),  # OverflowError before
        codec.encode_message(full_record(topic, string0="a\x00b")),  # CharacterNotInRepertoire in COPY before
        b"\x07garbage",  # not the wire format
        frame(sid, b"\xff\xff\xff"),  # a corrupt body
        codec.encode_message(full_record(topic, int0=2)),
        codec.encode_message(full_record(topic, int0=13)),  # refused by a CHECK added below
        codec.encode_message(full_record(topic, int0=3)),
    ]
    produce(kafka_config, topic, values)
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.2)
    sink.connect()
    with psycopg.connect(database, autocommit=True) as db:  # a refusal the sink cannot foresee
        db.execute("ALTER TABLE ktest_evt_scalars ADD CONSTRAINT no_13 CHECK (int0 <> 13)")
    running = Running(sink)
    try:
        assert wait_for(lambda: count(database, "public.sal_kafka_set_aside") == 6)
        assert wait_for(lambda: count(database, "ktest_evt_scalars") == 3)
    finally:
        running.stop()
    assert running.error is None
    assert sorted(r[0] for r in rows(database, "SELECT int0 FROM ktest_evt_scalars")) == [1, 2, 3]
    aside = rows(
        database,
        "SELECT kafka_topic, kafka_offset, kind, reason, value FROM public.sal_kafka_set_aside ORDER BY kafka_offset",
    )
    assert [(r[0], r[1], r[2]) for r in aside] == [
        (topic.kafka_name, 1, "row"),
        (topic.kafka_name, 2, "row"),
        (topic.kafka_name, 3, "row"),
        (topic.kafka_name, 4, "undecodable"),
        (topic.kafka_name, 5, "undecodable"),
        (topic.kafka_name, 7, "refused"),
    ]
    assert [bytes(r[4]) for r in aside] == [values[i] for i in (1, 2, 3, 4, 5, 7)]  # kept whole
    reasons = [r[3] for r in aside]
    assert "private_efdStamp nan is not a time" in reasons[0] and "private_efdStamp 1e+20" in reasons[1]
    assert "field 'string0' holds a NUL character" in reasons[2]
    assert "no_13" in reasons[5]  # the database's own words
    assert sink.stats.set_aside == {
        (topic.kafka_name, "row"): 3,
        (topic.kafka_name, "undecodable"): 2,
        (topic.kafka_name, "refused"): 1,
    }
    next_offset = rows(database, "SELECT next_offset FROM public.sal_kafka_offsets")[0][0]
    assert next_offset == len(values)  # every message accounted for: stored or set aside
    # started again: nothing read twice, nothing set aside twice
    again = Running(PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1))
    time.sleep(2.0)
    again.stop()
    assert again.error is None
    assert count(database, "ktest_evt_scalars") == 3 and count(database, "public.sal_kafka_set_aside") == 6


def test_a_column_changed_by_hand_under_a_running_sink_is_one_sink_error(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1)
    running = Running(sink)
    with Writer(ktest, "evt_scalars", config=kafka_config) as writer:
        writer.write(int0=1)
        assert wait_for(lambda: count(database, "ktest_evt_scalars") == 1)
        with psycopg.connect(database, autocommit=True) as db:
            db.execute("ALTER TABLE ktest_evt_scalars ALTER COLUMN int0 TYPE text")
        writer.write(int0=2)
        running.thread.join(30)
    assert isinstance(running.error, SinkError), running.error
    message = str(running.error)
    assert "\n" not in message and "field 'int0' is integer in the schema" in message and "is text" in message
    assert count(database, "public.sal_kafka_set_aside") == 0  # not every row set aside: the table is at fault


def test_two_topic_sub_namespaces_never_share_a_table(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    other_subname = kafka_config.topic_subname + "_b"
    other = attrs.evolve(kafka_config, topic_subname=other_subname)
    ours = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    theirs = ComponentInfo.load("KTest", BUNDLED, other_subname)
    for component, config, n in ((ours, kafka_config, 3), (theirs, other, 5)):
        with Writer(component, "evt_scalars", config=config) as writer:
            for i in range(n):
                writer.write(int0=i)
    sinks = [
        Running(PostgresSink(database, [c], config=k, topics=["evt_scalars"], max_delay=0.1))
        for c, k in ((ours, kafka_config), (theirs, other))
    ]
    ours_table = f"{schema_of(kafka_config.topic_subname)}.ktest_evt_scalars"
    theirs_table = f"{schema_of(other_subname)}.ktest_evt_scalars"
    try:
        assert wait_for(lambda: count(database, ours_table) == 3 and count(database, theirs_table) == 5)
    finally:
        for running in sinks:
            running.stop()
    # the same (partition, offset) in both, in tables of their own
    assert rows(database, f"SELECT kafka_offset FROM {ours_table} ORDER BY 1") == [(0,), (1,), (2,)]
    assert len(rows(database, f"SELECT kafka_offset FROM {theirs_table}")) == 5


def _register_v2(stack: Stack, topic: TopicInfo) -> tuple[int, dict[str, Any]]:
    """A compatible newer version of ``topic``'s schema: a double and a map field added."""
    schema = json.loads(json.dumps(topic.avro_schema))
    schema["fields"] += [
        {"name": "newDouble", "type": "double", "default": 0.0},
        {"name": "newMap", "type": {"type": "map", "values": "long"}, "default": {}},
    ]
    with Session(KafkaConfig(bootstrap_servers="", registry=RegistryConfig(url=stack.registry_url))) as session:
        from confluent_kafka.schema_registry import Schema

        sid = session.registry.client.register_schema(topic.subject, Schema(json.dumps(schema), "AVRO"))
    return sid, schema


def _encode_v2(schema: dict[str, Any], sid: int, record: dict[str, Any]) -> bytes:
    import io

    import fastavro

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return frame(sid, buffer.getvalue())


def test_a_registry_outage_holds_a_new_version_and_its_fields_become_columns(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    """Before: the new version's message was counted undecodable ("registry unreachable")
    and the offset committed past it; and its new field was dropped, uncounted."""
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    topic = ktest["evt_scalars"]
    with TcpProxy(stack.registry_port) as proxy:
        config = attrs.evolve(kafka_config, registry=RegistryConfig(url=proxy.url, timeout=1.0))
        with Writer(ktest, "evt_scalars", config=kafka_config) as writer:
            writer.write(int0=1)
            sink = PostgresSink(database, [ktest], config=config, topics=["evt_scalars"], max_delay=0.1)
            running = Running(sink)
            try:
                assert wait_for(lambda: count(database, "ktest_evt_scalars") == 1)
                sid, schema = _register_v2(stack, topic)
                proxy.hang()  # as a SIGSTOPped registry
                produce(
                    kafka_config,
                    topic,
                    [_encode_v2(schema, sid, full_record(topic, int0=2, newDouble=2.5, newMap={"a": 1}))],
                )
                writer.write(int0=3)
                writer.write(int0=4)
                time.sleep(3.0)  # the lookup times out (1 s) and is retried: nothing skipped meanwhile
                assert count(database, "ktest_evt_scalars") == 1
                committed = rows(database, "SELECT next_offset FROM public.sal_kafka_offsets")
                assert committed == [(1,)]
                proxy.resume()
                assert wait_for(lambda: count(database, "ktest_evt_scalars") == 4)
            finally:
                proxy.resume()
                running.stop()
    assert running.error is None
    stored = rows(database, "SELECT int0, newdouble FROM ktest_evt_scalars ORDER BY kafka_offset")
    assert stored == [(1, None), (2, 2.5), (3, None), (4, None)]
    assert sink.stats.dropped_fields == {(topic.kafka_name, "newMap"): 1}
    assert sink.stats.set_aside == {}
