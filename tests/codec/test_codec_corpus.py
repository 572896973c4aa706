"""Property tests over every topic of the real corpus (3348 topics).

For each component, each Hypothesis example draws one random valid record
for *every* topic, so every topic is covered in every example:

- the compiled encoder's bytes equal fastavro's ``schemaless_writer``, for
  both engines (the native core and the generated Python alone), with and
  without strict validation, from a dict and from the msgspec class;
- decode(encode(x)) == x (NaN-aware), through both engines' decoders, into
  a dict and into the msgspec class;
- the official ``avro`` library decodes the bytes to the same values;
- the decoder with ``arrays="numpy"`` gives the same values in arrays of the
  SAL type's dtype.
"""

from __future__ import annotations

import io
import json
from functools import cache
from typing import Any

import avro.io
import avro.schema
import fastavro
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sal_kafka import Codec, ComponentInfo, TopicInfo, msgspec_class
from tests.conftest import SAL_INTERFACES, corpus_components, needs_corpus
from tests.strategies import compact_record_strategy, same, same_with_numpy

pytestmark = needs_corpus


@cache
def _component(name: str) -> ComponentInfo:
    return ComponentInfo.load(name, SAL_INTERFACES)


@cache
def _tools(topic: TopicInfo) -> tuple[Codec, Codec, Codec, Any, avro.io.DatumReader, Any]:
    """Per topic: our codecs (compiled, python, numpy), fastavro's parsed schema, the avro reader, the strategy."""
    return (
        Codec(topic),
        Codec(topic, engine="python"),
        Codec(topic, arrays="numpy"),
        fastavro.parse_schema(topic.avro_schema),
        avro.io.DatumReader(avro.schema.parse(json.dumps(topic.avro_schema))),
        compact_record_strategy(topic),
    )


def _fastavro_bytes(parsed: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


# Hypothesis caps what one example may draw: big components are split into
# chunks of topics, each chunk one test, every topic in exactly one chunk.
CHUNK = 20


def _chunks() -> list[tuple[str, int]]:
    if not SAL_INTERFACES.is_dir():
        return []
    return [(name, start) for name in corpus_components() for start in range(0, len(_component(name).topics), CHUNK)]


def test_chunks_cover_every_topic() -> None:
    covered = sum(len(list(_component(n).topics)[s : s + CHUNK]) for n, s in _chunks())
    assert covered == 3348


@pytest.mark.parametrize(("name", "start"), _chunks())
@settings(
    max_examples=2,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(data=st.data())
def test_every_topic_round_trips(name: str, start: int, data: st.DataObject) -> None:
    for topic in list(_component(name))[start : start + CHUNK]:
        codec, python, numpy_codec, parsed, reader, strategy = _tools(topic)
        record = data.draw(strategy, label=topic.attr_name)
        body = codec.encode(record, validation="strict")
        assert body == _fastavro_bytes(parsed, record), topic.full_name
        assert python.encode(record, validation="strict") == body, topic.full_name
        assert codec.encode(record) == python.encode(record) == body, topic.full_name
        assert same(codec.decode(body), record), topic.full_name
        assert same(python.decode(body), record), topic.full_name
        cls = msgspec_class(topic)
        instance = codec.decode(body, cls=cls)
        assert same(msgspec.structs.asdict(instance), record), topic.full_name
        assert same(msgspec.structs.asdict(python.decode(body, cls=cls)), record), topic.full_name
        assert codec.encode(instance, validation="strict") == body, topic.full_name
        assert same_with_numpy(numpy_codec.decode(body), record, topic), topic.full_name
        official = reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))
        assert same(official, record), topic.full_name
