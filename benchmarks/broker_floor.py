"""What librdkafka alone gets on the embedded Apache Kafka broker: the floors our figures sit on.

Plain confluent-kafka clients, no sal-kafka code, in two processes as our
writers, readers, CSCs and Remotes are. Consumers use the library readers'
``fetch.wait.max.ms`` (100: Apache Kafka answers a fetch as soon as data
arrives, so it only bounds an idle fetch). Three floors, each on new topics:

- **round trip** (`round_trip_floor`): a requester produces a request
  (``linger.ms`` 0) and polls for the reply; a responder polls for the
  request and produces the reply. ``1 -> 1``: one topic each way;
  ``as a command``: what the command benchmark's processes do (the responder,
  the CSC, reads 11 topics and replies with 3 messages produced together; the
  requester, the Remote, reads 2 topics). Reported: p50/p99 and the
  requester's CPU per round trip.
- **throughput** (`throughput_floor`): a producer process writes ``n``
  messages of ``size`` bytes as fast as it can (acks=1, linger 1 ms, as our
  writer) while this process reads them: each side's messages/s.
- **latency** (`latency_floor`): a producer process writes ``size``-byte
  messages at ``rate`` Hz (linger 0) stamped with the wall clock; this process
  reads them: receive time - stamp, p50/p99.
- **read** (`read_floor`): a consumer reads an existing topic from its start
  (what the sink's throughput sits on).

The other benchmarks import these and run them on their own stack, so each
figure has its floor from the same run. Alone:
``.venv/bin/python benchmarks/broker_floor.py [--round-trips 1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka.testing import Stack  # noqa: E402

FETCH_WAIT_MS = 100
LAYOUTS = {"1 -> 1": (0, 0, 0), "as a command": (10, 2, 1)}  # responder's extra topics, replies before, requester's


def consumer(bootstrap: str, topics: list[str], offset: int = -1) -> Consumer:
    """A consumer of ``topics`` from ``offset`` (-1: the end; assigned, never joined)."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"floor-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": 10485760,
            "queued.min.messages": 200000,
        }
    )
    reader.assign([TopicPartition(t, 0, offset) for t in topics])
    return reader


def producer(bootstrap: str, linger_ms: float = 0) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms, "acks": "1", "enable.idempotence": False})


def new_topics(stack: Stack, *counts: int) -> list[list[str]]:
    """Fresh topics (one partition), ``counts[i]`` of them in group i, with leaders."""
    groups = [[f"floor-{uuid.uuid4().hex[:8]}" for _ in range(k)] for k in counts]
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    names = [t for g in groups for t in g]
    for future in admin.create_topics([NewTopic(t, 1, stack.replication_factor) for t in names]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # Apache Kafka answers CreateTopics before the leaders are known
        meta = admin.list_topics(timeout=10).topics
        if all(t in meta and all(p.leader >= 0 for p in meta[t].partitions.values()) for t in names):
            break
        time.sleep(0.05)
    return groups


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


# --------------------------------------------------------------------------- round trips


def respond(bootstrap: str, topics: dict[str, list[str]]) -> None:
    """The responder: each request gets the extra replies, then the reply."""
    reader, writer = consumer(bootstrap, [topics["request"][0], *topics["responder_idle"]]), producer(bootstrap)
    print("ready", flush=True)
    while True:
        message = reader.poll(1.0)
        if message is None or message.error() is not None:
            continue
        if message.value() == b"stop":
            break
        for topic in topics["before_reply"]:
            writer.produce(topic, b"x" * 200)
        writer.produce(topics["reply"][0], message.value())
        writer.poll(0)
    writer.flush(10)
    reader.close()


def request(bootstrap: str, topics: dict[str, list[str]], n: int) -> dict[str, float]:
    """The requester: ``n`` round trips one at a time (after 50 to warm up)."""
    reader, writer = consumer(bootstrap, [topics["reply"][0], *topics["requester_idle"]]), producer(bootstrap)
    time.sleep(1.0)  # the consumer has its positions

    def round_trip(i: int) -> float:
        start = time.perf_counter()
        writer.produce(topics["request"][0], str(i).encode())
        writer.poll(0)
        while True:
            message = reader.poll(1.0)
            if message is not None and message.error() is None and message.value() == str(i).encode():
                return time.perf_counter() - start

    for i in range(50):
        round_trip(-1 - i)
    cpu = time.process_time()
    trips = sorted(round_trip(i) for i in range(n))
    cpu = time.process_time() - cpu
    writer.produce(topics["request"][0], b"stop")
    writer.flush(10)
    reader.close()
    return {"p50": trips[n // 2], "p99": trips[min(n - 1, int(0.99 * n))], "cpu": cpu / n}


def round_trip_floor(stack: Stack, layout: str, n: int) -> dict[str, float]:
    """Round trips of ``layout`` (see `LAYOUTS`): p50, p99 and the requester's CPU, in seconds."""
    extra, before, requester_extra = LAYOUTS[layout]
    groups = new_topics(stack, 1, 1, extra, before, requester_extra)
    topics = dict(zip(("request", "reply", "responder_idle", "before_reply", "requester_idle"), groups, strict=True))
    responder = _child("--respond", stack.bootstrap_servers, json.dumps(topics))
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
        return request(stack.bootstrap_servers, topics, n)
    finally:
        responder.wait(30)


# --------------------------------------------------------------------------- throughput and latency


def produce(bootstrap: str, topic: str, n: int, size: int, rate: float) -> None:
    """The producer: ``n`` messages of ``size`` bytes (the first 8: the wall clock), at
    ``rate`` Hz (0: as fast as it goes, linger 1 ms); prints its messages/s."""
    writer = producer(bootstrap, linger_ms=0 if rate else 1)
    padding = b"x" * max(0, size - 8)
    print("ready", flush=True)
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                writer.produce(topic, struct.pack("<d", time.time()) + padding)
                break
            except BufferError:
                writer.poll(0.01)
        writer.poll(0)
        if rate:
            target = start + (i + 1) / rate
            while (left := target - time.perf_counter()) > 0:
                writer.poll(min(left, 0.002))
    elapsed = time.perf_counter() - start
    writer.flush(60)
    print(json.dumps({"messages_per_s": n / elapsed}), flush=True)


def _read(stack: Stack, topic: str, n: int, size: int, rate: float) -> tuple[list[float], float, dict[str, float]]:
    reader = consumer(stack.bootstrap_servers, [topic], offset=-1)
    reader.poll(0.5)  # positions known before the producer starts
    writer = _child("--produce", stack.bootstrap_servers, topic, str(n), str(size), str(rate))
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    delays: list[float] = []
    first = last = 0.0
    try:
        while len(delays) < n:
            # paced: each message as it comes (consume(n, t) would wait for n of them); else in batches
            batch = [reader.poll(10.0)] if rate else reader.consume(num_messages=1000, timeout=10.0)
            for message in batch:
                if message is None or message.error() is not None:
                    continue
                now = time.time()
                first = first or time.perf_counter()
                last = time.perf_counter()
                delays.append(now - struct.unpack_from("<d", message.value())[0])
            if not delays and writer.poll() is not None:
                raise RuntimeError("the floor's producer ended before anything was read")
        written = json.loads(writer.communicate(timeout=60)[0].strip().splitlines()[-1])
    finally:
        reader.close()
        if writer.poll() is None:
            writer.kill()
    return delays, n / max(last - first, 1e-9), written


def throughput_floor(stack: Stack, size: int, n: int) -> dict[str, float]:
    """Producer and consumer msg/s of ``n`` messages of ``size`` bytes, as fast as they go."""
    (topic,) = new_topics(stack, 1)[0]
    _, read, written = _read(stack, topic, n, size, 0)
    return {"write": written["messages_per_s"], "read": read}


def latency_floor(stack: Stack, size: int, rate: float, n: int) -> dict[str, float]:
    """Delay p50/p99 (s) of ``size``-byte messages at ``rate`` Hz."""
    (topic,) = new_topics(stack, 1)[0]
    delays, _, _ = _read(stack, topic, n, size, rate)
    ordered = sorted(delays)
    return {"p50": ordered[len(ordered) // 2], "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def read_floor(stack: Stack, topic: str, n: int) -> float:
    """Messages/s a plain consumer reads of the first ``n`` messages of an existing topic."""
    reader = consumer(stack.bootstrap_servers, [topic], offset=0)
    count, start = 0, time.perf_counter()
    try:
        while count < n:
            batch = reader.consume(num_messages=10000, timeout=10.0)
            if not batch:
                raise RuntimeError(f"{topic}: {count} of {n} messages read, then nothing for 10 s")
            count += sum(1 for m in batch if m.error() is None)
    finally:
        reader.close()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--respond", nargs=2, metavar=("BOOTSTRAP", "TOPICS"), help=argparse.SUPPRESS)
    parser.add_argument("--produce", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.respond:
        respond(args.respond[0], json.loads(args.respond[1]))
        return
    if args.produce:
        bootstrap, topic, n, size, rate = args.produce
        produce(bootstrap, topic, int(n), int(size), float(rate))
        return
    with Stack() as stack:
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka "
            f"{stack.kafka.version} (one KRaft node) on loopback; confluent-kafka clients only, fetch.wait.max.ms "
            f"{FETCH_WAIT_MS}; {args.round_trips} round trips a run\n"
        )
        print("| layout | round | p50 ms | p99 ms | requester CPU µs/round trip |")
        print("|---|---|---:|---:|---:|")
        for layout in LAYOUTS:
            results = []
            for r in range(args.rounds):
                result = round_trip_floor(stack, layout, args.round_trips)
                results.append(result)
                print(
                    f"| {layout} | {r + 1} | {result['p50'] * 1e3:.2f} | {result['p99'] * 1e3:.2f} | "
                    f"{result['cpu'] * 1e6:.0f} |",
                    flush=True,
                )
            med = {k: statistics.median(x[k] for x in results) for k in results[0]}
            print(
                f"| {layout} | median | {med['p50'] * 1e3:.2f} | {med['p99'] * 1e3:.2f} | {med['cpu'] * 1e6:.0f} |",
                flush=True,
            )
        lat = latency_floor(stack, 3300, 50, 500)
        print(f"\n50 Hz, 3.3 kB: delay p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms")
        for size in (3300, 150):
            put = throughput_floor(stack, size, 60000)
            print(f"{size} B as fast as it goes: write {put['write']:,.0f} msg/s, read {put['read']:,.0f} msg/s")


if __name__ == "__main__":
    main()
