"""Interleaved per-message timings of our codec and the tools around it.

pytest-benchmark times one function after another; on a noisy machine the
ratios between them then drift with the load. Here every round times each
contender once (a batch of calls), in turn, and the medians over rounds are
compared, so ratios come from the same moments.

Run: ``.venv/bin/python benchmarks/codec_ratios.py [--rounds 31]``.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cavro  # noqa: E402
import fastavro  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from benchmarks.test_bench_codec import TOPICS, record_of, topic_of  # noqa: E402
from sal_kafka import Codec, msgspec_class  # noqa: E402
from sal_kafka.options import VALIDATION_MODES  # noqa: E402


def per_call_us(fn: Callable[[], Any], target_s: float = 0.01) -> int:
    """Calls per batch so that one batch lasts about ``target_s``."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < target_s:
        fn()
        n += 1
    return max(n, 1)


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, target_s: float = 0.01) -> dict[str, float]:
    """Median µs per call of each contender over ``rounds`` interleaved rounds of
    batches of about ``target_s`` each."""
    batches = {name: per_call_us(fn, target_s) for name, fn in contenders.items()}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            n = batches[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def contenders_for(key: str) -> dict[str, dict[str, Callable[[], Any]]]:
    topic, record = topic_of(key), record_of(key)
    codec = Codec(topic)
    python = Codec(topic, engine="python")
    cavro_schema = cavro.Schema(topic.avro_schema)
    parsed = fastavro.parse_schema(topic.avro_schema)
    body = codec.encode(record)
    client = SchemaRegistryClient.new_client({"url": "mock://ratios"})
    serializer = AvroSerializer(client, json.dumps(topic.avro_schema), conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(client)
    ctx = SerializationContext(topic.kafka_name, MessageField.VALUE)
    framed = serializer(record, ctx)
    cls = msgspec_class(topic)
    numpy_codec = Codec(topic, arrays="numpy")

    def fastavro_encode() -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    encode = {
        "sal-kafka compiled": lambda: codec.encode(record),
        "sal-kafka python engine": lambda: python.encode(record),
        "fastavro schemaless_writer": fastavro_encode,
        "cavro binary_encode": lambda: cavro_schema.binary_encode(record),
        "confluent AvroSerializer": lambda: serializer(record, ctx),
    }
    decode = {
        "sal-kafka compiled": lambda: codec.decode(body),
        "sal-kafka compiled, into msgspec class": lambda: codec.decode(body, cls),
        "sal-kafka compiled, arrays=numpy": lambda: numpy_codec.decode(body),
        "sal-kafka python engine": lambda: python.decode(body),
        "fastavro schemaless_reader": lambda: fastavro.schemaless_reader(io.BytesIO(body), parsed, None),
        "cavro binary_decode": lambda: cavro_schema.binary_decode(body),
        "confluent AvroDeserializer": lambda: deserializer(framed, ctx),
    }
    modes = {f"encode, validation={m}": (lambda m=m: codec.encode(record, m)) for m in VALIDATION_MODES}
    return {"encode": encode, "decode": decode, "validation": modes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, fastavro {fastavro.__version__}; medians of {args.rounds} interleaved rounds\n"
    )
    for key in TOPICS:
        size = len(Codec(topic_of(key)).encode(record_of(key)))
        for op, contenders in contenders_for(key).items():
            result = interleaved(contenders, args.rounds)
            base = next(iter(result.values()))
            print(f"| {key} ({size} B): {op} | µs | × first row |\n|---|---:|---:|")
            for name, us in result.items():
                print(f"| {name} | {us:.2f} | {us / base:.2f} |")
            print()


if __name__ == "__main__":
    main()
