"""The codec on our own components: wire format, bad bytes, classes, numpy,
schema resolution, and the general decoding paths (blocks, negative counts)."""

from __future__ import annotations

import contextlib
import copy
import io
import struct
from typing import Any

import attrs
import fastavro
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sal_kafka import (
    Codec,
    CodecError,
    ComponentInfo,
    UnknownSchemaError,
    WireFormatError,
    attrs_class,
    msgspec_class,
)
from sal_kafka.options import ENGINES
from sal_kafka.wire import frame, schema_id_of, unframe
from tests.conftest import BUNDLED
from tests.strategies import record_strategy, same, same_with_numpy

KTEST = ComponentInfo.load("KTest", BUNDLED)
KMIRROR = ComponentInfo.load("KMirror", BUNDLED)
FORCES = KMIRROR["tel_forceActuatorData"]


def example(topic: Any) -> dict[str, Any]:
    return {n: (list(f.default) if f.count > 1 else f.default) for n, f in topic.fields.items()}


# ----------------------------------------------------------------------------- wire format


def test_frame_and_unframe() -> None:
    data = frame(0x01020304, b"body")
    assert data == b"\x00\x01\x02\x03\x04body"
    assert unframe(data) == (0x01020304, b"body")
    assert schema_id_of(data) == 0x01020304


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "message too short for the Confluent wire format: 0 bytes, expected at least 5"),
        (b"\x00\x00\x01", "message too short for the Confluent wire format: 3 bytes"),
        (b"\x01\x00\x00\x00\x01rest", "wrong magic byte 0x01, expected 0x00"),
    ],
)
def test_bad_framing(data: bytes, message: str) -> None:
    with pytest.raises(WireFormatError, match=message.replace("(", r"\(")):
        unframe(data)


def test_frame_rejects_a_bad_schema_id() -> None:
    with pytest.raises(WireFormatError, match="not a 32-bit unsigned integer"):
        frame(2**32, b"")


def test_encode_and_decode_message() -> None:
    codec = Codec(KTEST["evt_summaryState"], schema_id=7)
    record = example(KTEST["evt_summaryState"]) | {"summaryState": 2}
    message = codec.encode_message(record)
    assert message[:5] == b"\x00\x00\x00\x00\x07"
    assert codec.decode_message(message) == record


def test_unknown_schema_id() -> None:
    codec = Codec(KTEST["evt_summaryState"], schema_id=7)
    message = frame(8, codec.encode(example(KTEST["evt_summaryState"])))
    with pytest.raises(UnknownSchemaError, match="KTest.evt_summaryState: unknown schema id 8"):
        codec.decode_message(message)
    with pytest.raises(UnknownSchemaError, match="unknown schema id 8"):
        codec.decode_message(message, writer_schema=lambda i: None)
    with pytest.raises(UnknownSchemaError, match="no schema id"):
        Codec(KTEST["evt_summaryState"]).encode_message(example(KTEST["evt_summaryState"]))


# ----------------------------------------------------------------------------- bad bodies


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_truncated_bodies_raise_codec_error(engine: str, data: st.DataObject) -> None:
    topic = KTEST["evt_scalars"]
    codec = Codec(topic, engine=engine)
    body = codec.encode(data.draw(record_strategy(topic)))
    cut = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(CodecError, match="KTest.evt_scalars: corrupt Avro body"):
        codec.decode(body[:cut])


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_garbage_raises_only_codec_error(engine: str, garbage: bytes) -> None:
    codec = Codec(KTEST["tel_arrays"], engine=engine)
    with contextlib.suppress(CodecError):
        codec.decode(garbage)


def test_trailing_bytes_are_corrupt() -> None:
    codec = Codec(KTEST["evt_summaryState"])
    body = codec.encode(example(KTEST["evt_summaryState"]))
    with pytest.raises(CodecError, match="2 bytes after the record"):
        codec.decode(body + b"\x00\x00")


def test_corrupt_string_length() -> None:
    codec = Codec(KTEST["evt_heartbeat"])
    record = example(KTEST["evt_heartbeat"])
    body = bytearray(codec.encode(record))
    # salIndex (1 byte), 4 doubles (32), seqNum (1): then revCode's length
    body[34] = 0x7E  # 63 bytes, far past the end
    with pytest.raises(CodecError, match="string runs past the end"):
        codec.decode(bytes(body))


# ----------------------------------------------------------------------------- general decode paths


def _field_bytes(topic: Any, name: str, value: Any) -> bytes:
    """fastavro's encoding of one field alone."""
    index = list(topic.fields).index(name)
    schema = {"type": "record", "name": "one", "fields": [topic.avro_schema["fields"][index]]}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), {name: value})
    return buffer.getvalue()


def test_multi_block_and_negative_count_arrays() -> None:
    """Other writers may split arrays in blocks, with negative counts and byte sizes."""
    topic = KTEST["tel_arrays"]
    record = example(topic) | {"float0": [1.0, 2.0, 3.0, 4.0, 5.0], "int0": [1, -2, 3, -4, 5]}
    special = {
        # float0: a block of 2 given as count -2 (zig-zag 0x03) with its size in
        # bytes (8, zig-zag 0x10), then a block of 3 (0x06), then the end (0x00)
        "float0": b"\x03\x10" + struct.pack("<2f", 1.0, 2.0) + b"\x06" + struct.pack("<3f", 3.0, 4.0, 5.0) + b"\x00",
        # int0: a block of 2 (1, -2), a block of 3 (3, -4, 5), the end
        "int0": b"\x04\x02\x03" + b"\x06\x06\x07\x0a" + b"\x00",
    }
    blocks = b"".join(special.get(name) or _field_bytes(topic, name, record[name]) for name in topic.fields)
    assert blocks != Codec(topic).encode(record)
    assert Codec(topic).decode(blocks) == record
    assert Codec(topic, engine="fastavro").decode(blocks) == record
    for engine in ENGINES:
        assert same_with_numpy(Codec(topic, engine, arrays="numpy").decode(blocks), record, topic)


# ----------------------------------------------------------------------------- classes


@pytest.mark.parametrize("style", ["msgspec", "attrs"])
def test_encode_data_classes_and_decode_into_them(style: str) -> None:
    cls = msgspec_class(FORCES) if style == "msgspec" else attrs_class(FORCES)
    instance = cls(zForce=[1.5] * 156, fx=2.0, private_seqNum=4)
    codec = Codec(FORCES)
    as_dict = msgspec.structs.asdict(instance) if style == "msgspec" else attrs.asdict(instance)
    body = codec.encode(instance, "strict")
    assert body == Codec(FORCES, engine="fastavro").encode(as_dict)
    decoded = codec.decode(body, cls=cls)
    assert type(decoded) is cls and decoded == instance
    assert Codec(FORCES, engine="fastavro").decode(body, cls=cls) == instance


def test_classes_are_cached_per_topic() -> None:
    again = ComponentInfo.load("KMirror", BUNDLED)["tel_forceActuatorData"]
    assert msgspec_class(again) is msgspec_class(FORCES)
    assert attrs_class(again) is attrs_class(FORCES)


# ----------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("validation", ["none", "strict"])
def test_numpy_arrays(validation: str) -> None:
    codec = Codec(FORCES)
    record = example(FORCES)
    values = np.linspace(-100, 100, 156, dtype=np.float32)
    expected = codec.encode(record | {"zForce": values.tolist()})
    assert codec.encode(record | {"zForce": values}, validation) == expected
    assert codec.encode(record | {"zForce": values.astype(np.float64)}, validation) == expected
    ktest = Codec(KTEST["tel_arrays"])
    arrays = example(KTEST["tel_arrays"])
    np_ints = arrays | {
        "int0": np.arange(5, dtype=np.int32),
        "boolean0": np.array([True, False] * 2 + [True]),
    }
    assert ktest.decode(ktest.encode(np_ints, validation))["int0"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("topic", [*KTEST, *KMIRROR], ids=lambda t: t.full_name)
def test_decoding_into_numpy_arrays(topic: Any, engine: str) -> None:
    record = example(topic)
    codec = Codec(topic, engine, schema_id=5, arrays="numpy")
    decoded = codec.decode(codec.encode(record))
    assert same_with_numpy(decoded, record, topic)
    assert same_with_numpy(codec.decode_message(codec.encode_message(record)), record, topic)
    for name, f in topic.fields.items():
        if f.count > 1 and f.sal_type in ("float", "double") and engine != "fastavro":
            assert not decoded[name].flags.writeable  # a view of the message's bytes


def test_numpy_arrays_into_classes_and_by_resolution() -> None:
    codec = Codec(FORCES, schema_id=1, arrays="numpy")
    record = example(FORCES)
    decoded = codec.decode(codec.encode(record), cls=msgspec_class(FORCES))
    assert isinstance(decoded.zForce, np.ndarray) and decoded.zForce.tolist() == record["zForce"]
    older = copy.deepcopy(FORCES.avro_schema)
    older["fields"].append({"name": "retired", "type": "int", "default": 0})
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(older), record | {"retired": 3})
    resolved = codec.decode_message(frame(2, body.getvalue()), writer_schema={2: older}.get)
    assert same_with_numpy(resolved, record, FORCES)


def test_numpy_decoding_of_a_truncated_body_is_a_codec_error() -> None:
    codec = Codec(FORCES, arrays="numpy")
    body = codec.encode(example(FORCES))
    for cut in (len(body) // 2, len(body) - 1):
        with pytest.raises(CodecError, match="corrupt Avro body"):
            codec.decode(body[:cut])


def test_unknown_arrays_option() -> None:
    with pytest.raises(ValueError, match="unknown arrays 'tuple'; expected one of list, numpy"):
        Codec(FORCES, arrays="tuple")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- schema resolution


def test_reading_another_schema_version() -> None:
    topic = KTEST["evt_summaryState"]
    old = copy.deepcopy(topic.avro_schema)
    old["fields"] = [f for f in old["fields"] if f["name"] != "summaryState"]
    old["fields"].append({"name": "retired", "type": "string", "default": ""})
    buffer = io.BytesIO()
    record = {f["name"]: f["default"] for f in old["fields"]} | {
        "retired": "gone",
        "private_seqNum": 9,
    }
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(old), record)
    codec = Codec(topic, schema_id=2)
    message = frame(1, buffer.getvalue())
    decoded = codec.decode_message(message, writer_schema={1: old}.get)
    assert decoded["summaryState"] == 0  # the reader's default
    assert decoded["private_seqNum"] == 9
    assert "retired" not in decoded


@pytest.mark.parametrize("our_id", [None, 2])
def test_a_writer_id_with_our_layout_takes_the_fast_path(our_id: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that started before the writer registered (no id of its own),
    or a writer whose schema differs only in docs: no Avro resolution."""
    topic = KMIRROR["tel_forceActuatorData"]
    theirs = copy.deepcopy(topic.avro_schema)
    theirs["description"] = "another text"
    theirs["fields"][-1]["units"] = "N"
    record = example(topic)
    codec = Codec(topic, schema_id=our_id)
    lookups: list[int] = []

    def writer_schema(schema_id: int) -> dict[str, object]:
        lookups.append(schema_id)
        return theirs

    monkeypatch.setattr(codec, "decode_with_schema", lambda *a: pytest.fail("resolution was used"))
    for _ in range(3):
        assert same(codec.decode_message(frame(7, codec.encode(record)), writer_schema=writer_schema), record)
    assert lookups == [7]  # then known by its header


def test_a_writer_id_with_another_layout_is_resolved() -> None:
    topic = KTEST["evt_summaryState"]
    theirs = copy.deepcopy(topic.avro_schema)
    theirs["fields"].append({"name": "added", "type": "string", "default": ""})  # other bytes
    record = example(topic)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(theirs), record | {"added": "x" * 40})
    codec = Codec(topic)
    for _ in range(2):
        assert same(codec.decode_message(frame(3, body.getvalue()), writer_schema={3: theirs}.get), record)


def test_engines_agree_on_all_bundled_topics() -> None:
    for component in (KTEST, KMIRROR):
        for topic in component:
            record = example(topic)
            assert Codec(topic).encode(record) == Codec(topic, engine="fastavro").encode(record)
            assert same(Codec(topic).decode(Codec(topic).encode(record)), record)


def test_generated_code_is_in_linecache_for_inspect_pdb_and_tracebacks() -> None:
    """The compiled codec's, the data classes' and the enums' source is registered with
    linecache (as attrs does for the methods it writes)."""
    import inspect
    import linecache

    from sal_kafka.classes import enum_class
    from sal_kafka.codec._compiled import compile_codec

    topic = KTEST["evt_scalars"]
    compiled = compile_codec(topic, native=False)  # the generated Python engine
    assert inspect.getsource(compiled.encode_dict).lstrip().startswith("def encode_dict(")
    msgspec_class(topic)
    classes = [f for f in linecache.cache if f.startswith("<sal_kafka sal_kafka.classes.KTest.evt_scalars")]
    assert classes and "class evt_scalars(" in "".join(linecache.cache[classes[0]][2])
    info = next(iter(KTEST.enums.values()))
    enum_class(info)
    enums = [f for f in linecache.cache if f.startswith(f"<sal_kafka enum {info.name}")]
    assert enums and f"class {info.name}(" in "".join(linecache.cache[enums[0]][2])
