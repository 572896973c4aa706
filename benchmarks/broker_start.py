"""Start-up of the embedded Apache Kafka: from `KafkaCluster.start` to ready, and to a first
produce and consume answered.

Each run formats a new node (or three) in a temporary folder and starts it
from the cached jars (no network), then: ready (every node listed as a broker
in the metadata: what `start` waits for), then a topic created with its
leader, one message produced with acks=all and acknowledged, and read back by
a consumer. Reported per run and as medians; also the broker's resident
memory once ready.

Run: ``.venv/bin/python benchmarks/broker_start.py [--runs 5] [--nodes 1 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka.testing import KafkaCluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstat import rss_mb  # noqa: E402


def first_round_trip(cluster: KafkaCluster) -> None:
    """A topic with its leader, one message acknowledged (acks=all), and read back."""
    bootstrap = cluster.bootstrap_servers
    name = f"ready-{uuid.uuid4().hex[:8]}"
    replicas = min(3, len(cluster.nodes))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, replicas)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    acked: list[object] = []
    while True:  # until the new partition's leader is known everywhere
        producer.produce(name, b"ready", on_delivery=lambda err, msg: acked.append(err))
        producer.flush(30)
        if acked[-1] is None:
            break
        time.sleep(0.01)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": name, "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(name, 0, 0)])
    while (message := consumer.poll(10.0)) is None or message.error() is not None:
        pass
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    version = KafkaCluster(1).version
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka {version} "
        "from the cached jars; each run a new folder (storage formatted)\n"
    )
    print("| nodes | run | ready s | first produce+consume answered s | broker RSS once ready MB |")
    print("|---:|---:|---:|---:|---:|")
    for nodes in args.nodes:
        ready, answered, memory = [], [], []
        for run in range(args.runs):
            began = time.monotonic()
            with KafkaCluster(nodes) as cluster:
                ready.append(time.monotonic() - began)
                first_round_trip(cluster)
                answered.append(time.monotonic() - began)
                memory.append(rss_mb(cluster.nodes[0].pid))
            print(f"| {nodes} | {run + 1} | {ready[-1]:.2f} | {answered[-1]:.2f} | {memory[-1]:.0f} |", flush=True)
        print(
            f"| {nodes} | median | {statistics.median(ready):.2f} | {statistics.median(answered):.2f} | "
            f"{statistics.median(memory):.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
