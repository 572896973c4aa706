"""Sessions, writers and readers on the in-memory broker: no server, no sleep."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from sal_kafka import (
    ComponentInfo,
    ConfigError,
    KafkaConfig,
    KafkaIOError,
    Reader,
    SchemaRegistry,
    Session,
    ValidationError,
    Writer,
)
from sal_kafka.testing import MemoryTransport, sample_record
from tests.conftest import BUNDLED

KTEST = ComponentInfo.load("KTest", BUNDLED)
KMIRROR = ComponentInfo.load("KMirror", BUNDLED)


@pytest.fixture
def session() -> Session:
    with Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://tests")) as s:
        yield s


def test_writers_with_the_same_settings_share_one_producer(session: Session) -> None:
    forces = Writer(KMIRROR, "tel_forceActuatorData", session=session)
    state = Writer(KMIRROR, "evt_detailedState", session=session)
    other = Writer(KMIRROR, "tel_inclinometer", session=session, acks="all")
    assert forces.producer is state.producer
    assert other.producer is not forces.producer
    assert session.producer(**forces._producer_settings(None, None)) is forces.producer


def test_topics_are_created_with_the_settings_of_their_kind(session: Session) -> None:
    Writer(KMIRROR, "evt_detailedState", session=session)
    Writer(KMIRROR, "tel_inclinometer", session=session)
    broker = session.transport
    assert isinstance(broker, MemoryTransport)
    assert broker.configs[KMIRROR["evt_detailedState"].kafka_name] == {"cleanup.policy": "compact"}
    assert broker.configs[KMIRROR["tel_inclinometer"].kafka_name] == {}
    assert session.ensure_topics([KMIRROR["tel_inclinometer"]]) == []  # known: no request


def test_write_then_read_in_order_with_history(session: Session) -> None:
    with Writer(KTest := KTEST, "evt_testState", index=1, session=session) as writer:
        for state in (1, 2, 3):
            writer.write(state=state)
    with Reader(KTest, ["evt_testState"], session=session) as reader:
        first = reader.next(1.0)
        assert first is not None and first.history and first.data["state"] == 3
        with Writer(KTest, "evt_testState", index=1, session=session) as writer:
            writer.write(state=4)
        live = reader.next(1.0)
        assert live is not None and not live.history and live.data["state"] == 4


def test_failed_deliveries_are_counted_and_raised(session: Session) -> None:
    writer = Writer(KMIRROR, "tel_inclinometer", session=session)
    assert isinstance(session.transport, MemoryTransport)
    session.transport.fail_deliveries(KafkaError.MSG_SIZE_TOO_LARGE)  # refused: failed
    writer.write(inclinometerAngle=1.0)
    with pytest.raises(KafkaIOError, match=r"1 messages failed, 0 timed out .*inclinometer: not delivered: Broker"):
        writer.flush()
    assert writer.stats.failed == 1 and writer.stats.delivered == 0


def test_failures_go_to_the_callback_when_there_is_one(session: Session) -> None:
    errors: list[str] = []
    writer = Writer(KMIRROR, "tel_inclinometer", session=session, on_delivery_error=errors.append)
    assert isinstance(session.transport, MemoryTransport)
    session.transport.fail_deliveries()  # timed out: unknown, and reported the same way
    writer.write(inclinometerAngle=1.0)
    writer.write(inclinometerAngle=2.0)
    writer.flush()
    assert writer.stats.unknown == 2 and writer.stats.failed == 0 and len(errors) == 2


def test_bad_arguments_are_config_errors(session: Session) -> None:
    with pytest.raises(ConfigError, match="KMirror is not indexed: index must be 0, got 3"):
        Writer(KMIRROR, "tel_inclinometer", index=3, session=session)
    with pytest.raises(ConfigError, match="acks must be one of 0, 1, all, got 'two'"):
        Writer(KMIRROR, "tel_inclinometer", acks="two", session=session)
    with pytest.raises(ConfigError, match="unknown validation mode 'lax'"):
        Writer(KMIRROR, "tel_inclinometer", validation="lax", session=session)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown postprocess"):
        Reader(KMIRROR, ["tel_inclinometer"], postprocess="json", session=session)  # type: ignore[arg-type]


def test_an_invalid_librdkafka_setting_is_a_config_error() -> None:
    session = Session(KafkaConfig(producer={"compression.type": "bogus"}), registry=SchemaRegistry("mock://x"))
    with pytest.raises(ConfigError, match=r"invalid producer settings: .*compression"):
        session.producer()
    session.close()


def test_a_closed_session_refuses_work_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    session = Session(KafkaConfig(), transport=MemoryTransport(), registry=SchemaRegistry("mock://q"))
    with Writer(KMIRROR, "tel_forceActuatorData", session=session) as w:
        w.write(sample_record(w.topic))
    session.close()
    assert session.closed
    with pytest.raises(KafkaIOError, match="is closed"):
        session.producer()
    assert set(threading.enumerate()) <= before


def test_writes_after_close_are_refused(session: Session) -> None:
    writer = Writer(KMIRROR, "tel_inclinometer", session=session)
    writer.close()
    with pytest.raises(KafkaIOError, match="the writer is closed"):
        writer.write(inclinometerAngle=1.0)


# ----------------------------------------------------------------------------- validation across writes


def test_unknown_fields_are_refused_in_every_mode_and_poison_nothing(session: Session) -> None:
    for mode in ("none", "custom", "dataclass", "msgspec", "attrs", "strict"):
        writer = Writer(KTEST, "evt_scalars", index=1, session=session, validation=mode)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="Unknown field 'bogus' - at \\$"):
            writer.write(bogus=1)
        assert writer.write(int0=5)["int0"] == 5, mode  # the refused write left nothing behind


def test_the_error_names_the_field_of_this_write(session: Session) -> None:
    writer = Writer(KTEST, "evt_scalars", index=1, session=session, validation="attrs")
    with pytest.raises(ValidationError, match=r"Expected int, got bool - at \$.int0"):
        writer.write(int0=True)
    with pytest.raises(ValidationError, match=r"\(long\), got 1099511627776 - at \$.long0$"):
        writer.write(long0=2**40)


@pytest.mark.parametrize("mode", ["none", "custom", "dataclass"])
def test_lax_modes_never_write_what_the_schema_cannot_hold(session: Session, mode: str) -> None:
    """Avro int is 32 bits and a SAL array has Count items, whatever the mode;
    a byte of 300 is an Avro int (SAL ranges are the strict modes' job: docs/codec.md)."""
    scalars = Writer(KTEST, "evt_scalars", index=1, session=session, validation=mode)  # type: ignore[arg-type]
    with pytest.raises(
        ValidationError, match=r"Expected int in \[-2147483648, 2147483647\] \(int\), got 1099511627776 - at \$.int0"
    ):
        scalars.write(int0=2**40)
    arrays = Writer(KTEST, "evt_arrays", index=1, session=session, validation=mode)  # type: ignore[arg-type]
    count = arrays.topic.fields["int0"].count
    with pytest.raises(ValidationError, match=rf"Expected {count} items, got {count - 1} - at \$.int0"):
        arrays.write(int0=[1] * (count - 1))
    with pytest.raises(
        ValidationError, match=r"Expected int in \[-2147483648, 2147483647\] \(int\), got 4294967296 - at \$.int0\[0\]"
    ):
        arrays.write(int0=[2**32] * count)
    assert scalars.write(byte0=300)["byte0"] == 300


def test_attrs_mode_checks_integer_array_items(session: Session) -> None:
    arrays = Writer(KTEST, "evt_arrays", index=1, session=session, validation="attrs")
    count = arrays.topic.fields["byte0"].count
    with pytest.raises(ValidationError, match=r"Expected int in \[0, 255\] \(byte\), got 300 - at \$.byte0\[0\]"):
        arrays.write(byte0=[300] * count)


def test_librdkafka_lines_are_rate_limited() -> None:
    import logging

    from sal_kafka.kafka._session import RateLimit

    limit = RateLimit(period=30.0)
    line = "FAIL [rdkafka#producer-1] [thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed"

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("sal_kafka.librdkafka", logging.ERROR, __file__, 1, text, (), None)

    assert limit.filter(record(line))
    assert [limit.filter(record(line)) for _ in range(192)] == [False] * 192  # 193 lines: one shown
    assert limit.filter(record("another kind of line"))
    limit.period = 0.0  # the period is over: shown again, with the count of those held back
    again = record(line)
    assert limit.filter(again) and again.getMessage().endswith("(192 more like it in the last 0 s)")


def test_undecodable_messages_are_logged_once_per_topic_and_kind_a_minute() -> None:
    """Each undecodable message has its own offset in its text: the kind is the record's
    ``rate_key`` (topic and error type), so a stream of them is one line and a count."""
    import logging

    from sal_kafka.kafka._session import RateLimit

    limit = RateLimit(period=60.0)

    def record(offset: int, key: str) -> logging.LogRecord:
        r = logging.LogRecord("x", logging.WARNING, __file__, 1, f"undecodable at offset {offset}", (), None)
        r.rate_key = key
        return r

    assert limit.filter(record(0, "t WireFormatError"))
    assert not any(limit.filter(record(i, "t WireFormatError")) for i in range(1, 2000))
    assert limit.filter(record(5, "t CodecError"))  # another kind


class _RacingAdmin:
    """An admin whose topics another client creates between our listing and our
    CreateTopics: their leaders are known two listings later."""

    def __init__(self) -> None:
        self.listings = 0
        self.names: list[str] = []

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        self.listings += 1
        if self.listings == 1:
            return SimpleNamespace(topics={})  # not there yet
        leader = 0 if self.listings >= 4 else -1
        partition = SimpleNamespace(error=None, leader=leader)
        return SimpleNamespace(topics={n: SimpleNamespace(error=None, partitions={0: partition}) for n in self.names})

    def create_topics(self, new_topics: list[Any], **kwargs: Any) -> dict[str, Future[Any]]:
        result: dict[str, Future[Any]] = {}
        for new in new_topics:
            self.names.append(new.topic)
            future: Future[Any] = Future()
            future.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
            result[new.topic] = future
        return result


def test_a_topic_created_meanwhile_by_another_client_is_waited_for_like_ours() -> None:
    """Before: TOPIC_ALREADY_EXISTS returned at once, and a reader right after found
    no such topic (a ported CSC's command reader and its test's Remote raced so)."""
    session = Session(KafkaConfig(timeout=5.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://race"))
    admin = _RacingAdmin()
    session._admin = admin  # type: ignore[assignment]
    try:
        assert session.ensure_topics([KTEST["evt_scalars"], KTEST["cmd_start"]]) == []
        assert admin.listings == 4  # listed again until both had a leader
    finally:
        session.close()


def test_a_timed_out_message_is_an_unknown_outcome_not_a_failure(session: Session) -> None:
    """Before: ``write --rate 1000 -n 90000`` reported 3,519 failed ("Message timed out")
    while 602 of them were in the topic: a message sent before it timed out may be
    stored. Refused is failed; timed out is unknown, and flush says both."""
    writer = Writer(KTEST, "evt_scalars", session=session)
    message = SimpleNamespace(latency=lambda: None)
    writer._delivered(KafkaError(KafkaError._MSG_TIMED_OUT), message)  # type: ignore[arg-type]
    writer._delivered(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), message)  # type: ignore[arg-type]
    assert (writer.stats.failed, writer.stats.unknown) == (1, 1)
    assert "outcome unknown (the broker may have stored it)" in writer.stats.errors[0]
    assert "not delivered" in writer.stats.errors[1]
    with pytest.raises(KafkaIOError, match=r"1 messages failed, 1 timed out \(outcome unknown\)"):
        writer.flush()
