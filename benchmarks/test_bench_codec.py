"""Per-message cost of encoding, decoding and each validation mode.

Topics: MTM1M3 ``tel_forceActuatorData`` (ts_xml v28: 812 float values, about
3.3 kB encoded), KTest ``tel_arrays`` (every type as an array of 5) and KTest
``evt_summaryState`` (a small event). Beside our compiled codec, in the same
run: fastavro ``schemaless_writer``/``schemaless_reader`` (parsed schema) and
confluent-kafka's ``AvroSerializer``/``AvroDeserializer`` (mock registry).

Run: ``make bench`` or
``.venv/bin/python -m pytest benchmarks/test_bench_codec.py --benchmark-enable``;
``benchmarks/report.py`` turns a ``--benchmark-json`` file into the tables of
docs/benchmarks.md.
"""

from __future__ import annotations

import io
import random
import struct
from functools import cache
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sal_kafka import Codec, ComponentInfo, TopicInfo, msgspec_class
from sal_kafka.options import VALIDATION_MODES
from tests.conftest import BUNDLED, SAL_INTERFACES

TOPICS = {
    "forceActuatorData": ("MTM1M3", "tel_forceActuatorData", SAL_INTERFACES),
    "arrays": ("KTest", "tel_arrays", BUNDLED),
    "summaryState": ("KTest", "evt_summaryState", BUNDLED),
}


@cache
def topic_of(key: str) -> TopicInfo:
    component, attr, folder = TOPICS[key]
    if not (folder / "SALSubsystems.xml").is_file():
        pytest.skip(f"{folder} is not there")
    return ComponentInfo.load(component, folder)[attr]


@cache
def record_of(key: str) -> dict[str, Any]:
    """A full record with non-default values in every field."""
    topic = topic_of(key)
    rnd = random.Random(42)
    record: dict[str, Any] = {}
    for f in topic.fields.values():

        def value(f: Any = f) -> Any:
            if f.sal_type == "boolean":
                return rnd.random() < 0.5
            if f.sal_type == "float":  # float32-exact, so that decoding gives it back
                return struct.unpack("<f", struct.pack("<f", rnd.uniform(-1000, 1000)))[0]
            if f.sal_type == "double":
                return rnd.uniform(-1000, 1000)
            if f.sal_type == "string":
                return "sal-kafka benchmark"[: f.max_length or 100]
            return rnd.randint(0, 100)

        record[f.name] = [value() for _ in range(f.count)] if f.count > 1 else value()
    return record


def _mode_topics() -> list[tuple[str, str]]:
    return [(k, m) for k in TOPICS for m in VALIDATION_MODES]


@pytest.mark.parametrize("key", list(TOPICS))
def test_encode_compiled(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: encode"
    codec, record = Codec(topic_of(key)), record_of(key)
    assert benchmark(codec.encode, record)


@pytest.mark.parametrize("key", list(TOPICS))
def test_encode_fastavro(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: encode"
    parsed, record = fastavro.parse_schema(topic_of(key).avro_schema), record_of(key)

    def encode() -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    assert benchmark(encode) == Codec(topic_of(key)).encode(record)


def _confluent(key: str) -> tuple[AvroSerializer, AvroDeserializer, SerializationContext]:
    import json

    client = SchemaRegistryClient.new_client({"url": "mock://bench"})
    topic = topic_of(key)
    serializer = AvroSerializer(client, json.dumps(topic.avro_schema), conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(client)
    return serializer, deserializer, SerializationContext(topic.kafka_name, MessageField.VALUE)


@pytest.mark.parametrize("key", list(TOPICS))
def test_encode_confluent(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: encode"
    serializer, _, ctx = _confluent(key)
    record = record_of(key)
    framed = benchmark(serializer, record, ctx)
    assert framed[5:] == Codec(topic_of(key)).encode(record)


@pytest.mark.parametrize("key", list(TOPICS))
def test_decode_compiled(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: decode"
    codec = Codec(topic_of(key))
    body = codec.encode(record_of(key))
    assert benchmark(codec.decode, body) == record_of(key)


@pytest.mark.parametrize("key", list(TOPICS))
def test_decode_compiled_to_msgspec(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: decode"
    codec = Codec(topic_of(key))
    cls = msgspec_class(topic_of(key))
    body = codec.encode(record_of(key))
    assert type(benchmark(codec.decode, body, cls)) is cls


@pytest.mark.parametrize("key", list(TOPICS))
def test_decode_compiled_to_numpy_arrays(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: decode"
    codec = Codec(topic_of(key), arrays="numpy")
    body = codec.encode(record_of(key))
    decoded = benchmark(codec.decode, body)
    assert {k: v.tolist() if hasattr(v, "tolist") else v for k, v in decoded.items()} == record_of(key)


@pytest.mark.parametrize("key", list(TOPICS))
def test_decode_fastavro(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: decode"
    parsed = fastavro.parse_schema(topic_of(key).avro_schema)
    body = Codec(topic_of(key)).encode(record_of(key))
    assert benchmark(lambda: fastavro.schemaless_reader(io.BytesIO(body), parsed, None)) == record_of(key)


@pytest.mark.parametrize("key", list(TOPICS))
def test_decode_confluent(benchmark: Any, key: str) -> None:
    benchmark.group = f"{key}: decode"
    serializer, deserializer, ctx = _confluent(key)
    framed = serializer(record_of(key), ctx)
    assert benchmark(deserializer, framed, ctx) == record_of(key)


@pytest.mark.parametrize(("key", "mode"), _mode_topics())
def test_encode_validated(benchmark: Any, key: str, mode: str) -> None:
    benchmark.group = f"{key}: encode with validation"
    codec, record = Codec(topic_of(key)), record_of(key)
    assert benchmark(codec.encode, record, mode) == codec.encode(record)


@pytest.mark.parametrize("key", ["forceActuatorData"])
def test_encode_numpy_float32(benchmark: Any, key: str) -> None:
    import numpy as np

    benchmark.group = f"{key}: encode"
    codec = Codec(topic_of(key))
    record = {
        n: (
            np.asarray(v, dtype=np.float32)
            if topic_of(key).fields[n].sal_type == "float" and isinstance(v, list)
            else v
        )
        for n, v in record_of(key).items()
    }
    assert benchmark(codec.encode, record, "strict") == codec.encode(record_of(key))
