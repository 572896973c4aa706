"""Our codec against the best Avro codec in Python on every topic of ts_xml v28.

For each of the corpus's 3348 topics: one record with a random non-default
value in every field (seeded by the topic's name), encoded by every
contender, whose bodies must be byte-identical; then each contender's
encode and decode timed in interleaved rounds (every round times each
contender once, a batch of calls, in turn) and the medians compared. The
ratio of a topic is the best peer's median over ours: above 1 we are faster.

Contenders: sal-kafka's `Codec` (engine "compiled": the native core), fastavro
``schemaless_writer``/``schemaless_reader`` (parsed schema), cavro
``binary_encode``/``binary_decode`` (records as cavro Records, and as dicts),
and confluent-kafka's ``AvroSerializer``/``AvroDeserializer`` (mock registry;
their bodies after the 5-byte header). ``--engine python`` times our
generated-Python engine instead, the fallback where no compiler is present.

Run: ``.venv/bin/python benchmarks/codec_corpus.py [--rounds 5] [--sample N] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cavro  # noqa: E402
import fastavro  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from benchmarks.codec_ratios import interleaved  # noqa: E402
from sal_kafka import Codec, ComponentInfo, TopicInfo  # noqa: E402
from sal_kafka.codec import NATIVE  # noqa: E402
from sal_kafka.schemas import INT_RANGES  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "ts_xml" / "sal_interfaces"
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 _-"
_F32 = struct.Struct("<f")


def random_value(topic: TopicInfo, name: str, rng: random.Random) -> Any:
    f = topic.fields[name]

    def one() -> Any:
        if f.nullable and rng.random() < 0.25:
            return None
        avro = f.type_info.avro
        if avro == "boolean":
            return rng.random() < 0.5
        if f.sal_type in INT_RANGES:
            lo, hi = INT_RANGES[f.sal_type]
            # mostly small (the usual SAL values), sometimes anywhere in the range
            return rng.randint(max(lo, -100), min(hi, 1000)) if rng.random() < 0.8 else rng.randint(lo, hi)
        if avro == "float":
            return _F32.unpack(_F32.pack(rng.uniform(-1e4, 1e4)))[0]
        if avro == "double":
            return rng.uniform(-1e9, 1e9)
        size = f.max_length or 40
        return "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, min(size, 40))))

    return [one() for _ in range(f.count)] if f.count > 1 else one()


def record_of(topic: TopicInfo) -> dict[str, Any]:
    rng = random.Random(topic.full_name)
    return {name: random_value(topic, name, rng) for name in topic.fields}


class MismatchError(Exception):
    pass


def measure(topic: TopicInfo, engine: Any, client: Any, rounds: int, target_s: float) -> dict[str, Any]:
    record = record_of(topic)
    ours = Codec(topic, engine=engine)
    parsed = fastavro.parse_schema(topic.avro_schema)
    schema = cavro.Schema(topic.avro_schema)
    schema_dict = cavro.Schema(topic.avro_schema, record_decodes_to_dict=True)
    serializer = AvroSerializer(client, json.dumps(topic.avro_schema), conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(client)
    ctx = SerializationContext(topic.kafka_name, MessageField.VALUE)

    def fastavro_encode() -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    body = ours.encode(record)
    framed = serializer(record, ctx)
    bodies = {"fastavro": fastavro_encode(), "cavro": schema.binary_encode(record), "confluent": framed[5:]}
    for name, other in bodies.items():
        if other != body:
            raise MismatchError(f"{topic.full_name}: {name}'s bytes differ from ours")
    if ours.decode(body) != fastavro.schemaless_reader(io.BytesIO(body), parsed, None):
        raise MismatchError(f"{topic.full_name}: our decode differs from fastavro's")

    encode = {
        "ours": lambda: ours.encode(record),
        "ours strict": lambda: ours.encode(record, "strict"),
        "fastavro": fastavro_encode,
        "cavro": lambda: schema.binary_encode(record),
        "confluent": lambda: serializer(record, ctx),
    }
    decode = {
        "ours": lambda: ours.decode(body),
        "fastavro": lambda: fastavro.schemaless_reader(io.BytesIO(body), parsed, None),
        "cavro": lambda: schema.binary_decode(body),
        "cavro dict": lambda: schema_dict.binary_decode(body),
        "confluent": lambda: deserializer(framed, ctx),
    }
    enc = interleaved(encode, rounds, target_s)
    dec = interleaved(decode, rounds, target_s)
    best_enc = min((v, k) for k, v in enc.items() if not k.startswith("ours"))
    best_dec = min((v, k) for k, v in dec.items() if k != "ours")
    return {
        "topic": topic.full_name,
        "bytes": len(body),
        "encode": enc,
        "decode": dec,
        "encode_ratio": best_enc[0] / enc["ours"],
        "encode_peer": best_enc[1],
        "strict_ratio": best_enc[0] / enc["ours strict"],
        "decode_ratio": best_dec[0] / dec["ours"],
        "decode_peer": best_dec[1],
    }


def topics(sample: int | None) -> list[TopicInfo]:
    names = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    found = [t for name in names for t in ComponentInfo.load(name, CORPUS)]
    if sample:
        found = random.Random(20).sample(found, sample)
    return found


def distribution(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20, method="inclusive")  # within min..max on a small sample
    return (
        f"min {min(values):.2f}x, p5 {q[0]:.2f}x, p25 {q[4]:.2f}x, median {statistics.median(values):.2f}x, "
        f"p75 {q[14]:.2f}x, max {max(values):.2f}x; below 1.0x: {sum(v < 1 for v in values)} of {len(values)}"
    )


def slowest(rows: list[dict[str, Any]], op: str, n: int = 20) -> str:
    key, peer = f"{op}_ratio", f"{op}_peer"
    lines = [
        f"| topic ({op}, our 20 lowest ratios) | bytes | ours µs | best peer | peer µs | ratio |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: r[key])[:n]:
        times = r["encode" if op == "encode" else "decode"]
        lines.append(
            f"| {r['topic']} | {r['bytes']} | {times['ours']:.2f} | {r[peer]} | {times[r[peer]]:.2f} | {r[key]:.2f} |"
        )
    return "\n".join(lines)


def named(rows: list[dict[str, Any]], full_name: str) -> str:
    (r,) = [r for r in rows if r["topic"] == full_name]
    cells = [f"{k} {v:.2f}" for k, v in r["encode"].items()] + [f"{k} {v:.2f}" for k, v in r["decode"].items()]
    return (
        f"- {full_name} ({r['bytes']} B): encode {r['encode_ratio']:.2f}x {r['encode_peer']}, "
        f"strict encode {r['strict_ratio']:.2f}x, decode {r['decode_ratio']:.2f}x {r['decode_peer']}\n"
        f"  (µs: encode {', '.join(cells[: len(r['encode'])])}; decode {', '.join(cells[len(r['encode']) :])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per topic (medians)")
    parser.add_argument("--batch-ms", type=float, default=0.5, help="length of one contender's batch")
    parser.add_argument("--sample", type=int, default=None, help="a seeded sample of N topics, not all")
    parser.add_argument("--engine", choices=["compiled", "python"], default="compiled")
    parser.add_argument("--json", type=Path, default=None, help="write every topic's timings here")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"no ts_xml corpus at {CORPUS}")
    if args.engine == "compiled" and not NATIVE:
        print("warning: the native core is not built: 'compiled' is the generated Python engine", file=sys.stderr)
    client = SchemaRegistryClient.new_client({"url": "mock://corpus"})
    started = time.monotonic()
    rows, mismatches = [], []
    chosen = topics(args.sample)
    for i, topic in enumerate(chosen):
        try:
            rows.append(measure(topic, args.engine, client, args.rounds, args.batch_ms / 1000))
        except MismatchError as exc:
            mismatches.append(str(exc))
        if (i + 1) % 250 == 0:
            print(f"  {i + 1}/{len(chosen)} topics, {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
        f"sal-kafka engine {args.engine} (native core: {NATIVE}), fastavro {fastavro.__version__}, "
        f"cavro {cavro.__version__ if hasattr(cavro, '__version__') else '?'}; {len(rows)} topics, "
        f"medians of {args.rounds} interleaved rounds, {time.monotonic() - started:.0f} s\n"
    )
    print(f"byte-identical on {len(rows)} of {len(chosen)} topics" + (f"; differ: {mismatches}" if mismatches else ""))
    print(f"- encode, best peer / ours: {distribution([r['encode_ratio'] for r in rows])}")
    print(f"- strict encode, best peer (no validation) / ours: {distribution([r['strict_ratio'] for r in rows])}")
    print(f"- decode, best peer / ours: {distribution([r['decode_ratio'] for r in rows])}\n")
    for full_name in ("MTM1M3.evt_summaryState", "MTM1M3.tel_forceActuatorData", "ATMCS.tel_mount_AzEl_Encoders"):
        if any(r["topic"] == full_name for r in rows):
            print(named(rows, full_name))
    print()
    print(slowest(rows, "encode"))
    print()
    print(slowest(rows, "decode"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
