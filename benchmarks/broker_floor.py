"""The floor of a command round trip on the embedded broker, with librdkafka alone.

A requester process and a responder process talk through the embedded Apache
Kafka broker with plain confluent-kafka clients and no sal-kafka code: the
requester produces a request (``linger.ms`` 0) and polls for the reply; the
responder polls for the request and produces the reply. Both consumers use the
library readers' ``fetch.wait.max.ms`` (100: Apache Kafka answers a fetch as
soon as data arrives, so it only bounds an idle fetch). Each layout runs on new
topics:

- ``1 -> 1``: the responder reads one topic and replies with one message;
- ``as a command``: what the command benchmark's processes do. The responder
  (the CSC) reads 11 topics (KTest's command topics) and replies with 3
  messages (event, telemetry, ack) produced together; the requester (the
  Remote) reads 2 topics (summaryState and ackcmd).

It reports the round trip p50/p99 and the requester's CPU per round trip:
what any client built on librdkafka gets on this broker before it decodes or
dispatches anything. Compare with ``benchmarks/command_bench.py``.

Run: ``.venv/bin/python benchmarks/broker_floor.py [--round-trips 1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def consumer(bootstrap: str, topics: list[str]) -> Consumer:
    """A consumer at the end of ``topics`` (assigned, never joined)."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"floor-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        }
    )
    reader.assign([TopicPartition(t, 0, -1) for t in topics])  # -1: the end
    return reader


def producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1", "enable.idempotence": False})


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


def layout_topics(extra: int, before: int, requester_extra: int) -> dict[str, list[str]]:
    def names(k: int) -> list[str]:
        return [f"floor-{uuid.uuid4().hex[:8]}" for _ in range(k)]

    return {
        "request": names(1),
        "reply": names(1),
        "responder_idle": names(extra),
        "before_reply": names(before),
        "requester_idle": names(requester_extra),
    }


def run_layout(stack: Stack, layout: str, n: int) -> dict[str, float]:
    topics = layout_topics(*LAYOUTS[layout])
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, 1, 1) for names in topics.values() for t in names]).values():
        future.result(30)
    responder = subprocess.Popen(
        [sys.executable, __file__, "--respond", stack.bootstrap_servers, json.dumps(topics)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
        return request(stack.bootstrap_servers, topics, n)
    finally:
        responder.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--respond", nargs=2, metavar=("BOOTSTRAP", "TOPICS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.respond:
        respond(args.respond[0], json.loads(args.respond[1]))
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
                result = run_layout(stack, layout, args.round_trips)
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


if __name__ == "__main__":
    main()
