"""Writer schemas by id: found, a definite miss, or an unreachable registry (held, never skipped)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from sal_kafka import ComponentInfo, KafkaConfig, Reader, SchemaRegistry, Session, Writer
from sal_kafka.codec._framing import frame
from sal_kafka.errors import RegistryError
from sal_kafka.kafka._lookups import SchemaPending, WriterSchemas
from sal_kafka.testing import MemoryTransport
from tests.conftest import BUNDLED


class FlakyRegistry:
    """``writer_schema`` as a registry answers it: ``down`` raises as an unreachable one,
    ``slow`` seconds of delay; ``schemas`` known; every request counted."""

    def __init__(self, schemas: dict[int, dict[str, Any]] | None = None) -> None:
        self.schemas = schemas or {}
        self.down = False
        self.slow = 0.0
        self.requests = 0
        self.cache: dict[int, dict[str, Any]] = {}  # what was found, as the real client keeps it

    def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        self.requests += 1
        time.sleep(self.slow)
        if self.down:
            raise RegistryError("fetching schema id: registry unreachable or failing: ReadTimeout", url="http://x")
        found = self.schemas.get(schema_id)
        if found is not None:
            self.cache[schema_id] = found
        return found

    def cached_schema(self, schema_id: int) -> dict[str, Any] | None:
        return self.cache.get(schema_id)


def test_a_definite_miss_is_remembered_one_request_for_many_frames() -> None:
    registry = FlakyRegistry()
    schemas = WriterSchemas(registry, wait=1.0)  # type: ignore[arg-type]
    assert all(schemas(99) is None for _ in range(2000))
    assert registry.requests == 1  # before: one request (and one warning) per frame


def test_an_unreachable_registry_is_pending_then_retried_with_back_off() -> None:
    registry = FlakyRegistry({7: {"type": "record", "name": "x", "fields": []}})
    registry.down = True
    schemas = WriterSchemas(registry, wait=1.0)  # type: ignore[arg-type]
    with pytest.raises(SchemaPending, match="unreachable"):
        schemas(7)
    assert not schemas.ready(7)  # back-off: 0.5 s before it is asked again
    with pytest.raises(SchemaPending):
        schemas(7)
    assert registry.requests == 1
    registry.down = False
    deadline = time.monotonic() + 3
    while not schemas.ready(7) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert schemas(7) == registry.schemas[7] and registry.requests == 2


def test_a_hung_registry_never_blocks_the_caller_longer_than_the_wait() -> None:
    registry = FlakyRegistry({7: {"type": "record", "name": "x", "fields": []}})
    registry.slow = 1.0
    schemas = WriterSchemas(registry, wait=0.05)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(SchemaPending, match="waiting"):
        schemas(7)
    assert time.monotonic() - start < 0.5
    time.sleep(1.2)
    assert schemas.ready(7) and schemas(7) is not None


@pytest.fixture
def session() -> Any:
    with Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://lookups")) as s:
        yield s


def test_a_held_partition_delivers_nothing_after_the_message_and_others_go_on(session: Session) -> None:
    """A message of an unknown id while the registry cannot answer: that partition stops
    there (nothing after it delivered, nothing counted undecodable); another topic goes on;
    when the registry answers, the message and those after it come, in order."""
    ktest = ComponentInfo.load("KTest", BUNDLED)
    scalars = ktest["evt_scalars"]
    with Writer(ktest, "evt_scalars", session=session) as w, Writer(ktest, "tel_arrays", session=session) as a:
        w.write(int0=1)
        reader = Reader(ktest, ["evt_scalars", "tel_arrays"], session=session, start="beginning")
        registry = FlakyRegistry()
        registry.down = True
        session.writer_schemas.registry = registry  # type: ignore[assignment]
        producer = session.producer()
        v2 = json.loads(json.dumps(scalars.avro_schema))
        registry.schemas[4242] = v2  # the same layout: decoded as ours once known
        body = w.codec.encode(_record(w))
        producer.produce(scalars.kafka_name, frame(4242, body), key=b"k")
        producer.flush()
        w.write(int0=3)
        a.write()
        got = _read(reader, 2.0)
        assert [(r.topic, r.data["int0"] if r.topic == "evt_scalars" else None) for r in got] == [
            ("evt_scalars", 1),
            ("tel_arrays", None),
        ]
        assert reader.held == {(scalars.kafka_name, 0): 4242} and reader.stats.undecodable == 0
        registry.down = False
        got = _read(reader, 3.0)
        assert [(r.topic, r.data["int0"]) for r in got] == [("evt_scalars", 1), ("evt_scalars", 3)]
        assert reader.held == {} and reader.stats.undecodable == 0
        reader.close()


def _record(writer: Writer) -> dict[str, Any]:
    topic = writer.topic
    record = {f.name: ([f.default] * f.count if f.count > 1 else f.default) for f in topic.fields.values()}
    record["int0"] = 1
    return record


def _read(reader: Reader, seconds: float) -> list[Any]:
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        received = reader.next(0.1)
        if received is not None:
            got.append(received)
    return got


def test_lookups_run_in_threads_not_the_readers() -> None:
    registry = FlakyRegistry({1: {"type": "record", "name": "x", "fields": []}})
    schemas = WriterSchemas(registry, wait=1.0)  # type: ignore[arg-type]
    names: list[str] = []
    original = registry.writer_schema

    def spy(schema_id: int) -> Any:
        names.append(threading.current_thread().name)
        return original(schema_id)

    registry.writer_schema = spy  # type: ignore[method-assign]
    assert schemas(1) is not None
    assert names and names[0].startswith("sal-kafka-schemas")
