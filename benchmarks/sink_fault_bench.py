"""Faults under the PostgreSQL sink: is every message stored or set aside, once?

On the embedded stack (Apache Kafka, our registry, PostgreSQL 18), a producer
writes KTest ``tel_scalars`` at ``--rate`` messages/s for ``--seconds`` while
a `PostgresSink` stores it, and one fault happens:

1. **poison**: every ``--poison-every``-th message cannot be a row or a
   message (in turn: ``private_efdStamp`` NaN, ``private_efdStamp`` 1e20, a
   string with ``"\\x00"``, not the wire format, a corrupt Avro body);
2. **registry**: a third of the way in, a newer version of the topic's schema
   (a field added) is registered and the registry stops answering the sink
   (a hung TCP proxy: what a SIGSTOPped registry looks like) for
   ``--registry-down`` seconds, while half the messages are written with the
   new version;
3. **database**: PostgreSQL is stopped a third of the way in and started
   again ``--db-down`` seconds later.

Every message's offset comes from its delivery report; afterwards each offset
must be a row of the table or a row of ``sal_kafka_set_aside``: ``lost`` is
what is neither (target 0), ``duplicates`` rows stored twice (target 0),
``set_aside`` must equal the poison sent.

Run: ``.venv/bin/python benchmarks/sink_fault_bench.py [--rate 2000] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs  # noqa: E402
import fastavro  # noqa: E402
import psycopg  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.schema_registry import Schema  # noqa: E402

from sal_kafka import Codec, ComponentInfo, Session  # noqa: E402
from sal_kafka.codec._framing import frame  # noqa: E402
from sal_kafka.codec._keys import message_key  # noqa: E402
from sal_kafka.registry import RegistryConfig  # noqa: E402
from sal_kafka.sinks import PostgresSink  # noqa: E402
from sal_kafka.sinks.postgres._tables import schema_of  # noqa: E402
from sal_kafka.testing import EmbeddedPostgres, Stack, TcpProxy, sample_record  # noqa: E402

XML = Path(__file__).resolve().parent.parent / "xml_schemas"


def record(topic: Any, i: int, **values: Any) -> dict[str, Any]:
    data = {f.name: ([f.default] * f.count if f.count > 1 else f.default) for f in topic.fields.values()}
    data.update(sample_record(topic, seed=i % 7))
    now = time.time()
    data.update(private_sndStamp=now + 37, private_efdStamp=now, private_kafkaStamp=now + 37, int0=i)
    data.update(values)
    return data


class Run:
    """One fault run: its own topic sub-namespace and database."""

    def __init__(self, stack: Stack, postgres: EmbeddedPostgres, fault: str, args: argparse.Namespace) -> None:
        self.stack, self.postgres, self.fault, self.args = stack, postgres, fault, args
        self.subname = f"sinkfault{uuid.uuid4().hex[:8]}"
        self.config = attrs.evolve(stack.config(), topic_subname=self.subname)
        self.component = ComponentInfo.load("KTest", XML, self.subname)
        self.topic = self.component["tel_scalars"]
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {self.subname}")
        self.url = postgres.url.replace("/postgres?", f"/{self.subname}?")
        self.offsets: list[int] = []
        self.failed = 0
        self.poison = 0
        self.events: list[str] = []

    def delivered(self, error: Any, message: Any) -> None:
        if error is None:
            self.offsets.append(message.offset())
        else:
            self.failed += 1

    def run(self) -> dict[str, Any]:
        args = self.args
        with Session(self.config) as session:
            sid = session.schema_id(self.topic)
            session.ensure_topics(list(self.component))
        assert sid is not None
        codec = Codec(self.topic, schema_id=sid)
        proxy = TcpProxy(self.stack.registry_port)
        sink_config = attrs.evolve(self.config, registry=RegistryConfig(url=proxy.url, timeout=2.0))
        sink = PostgresSink(self.url, [self.component], config=sink_config, topics=["tel_scalars"], max_delay=0.2)
        error: list[BaseException] = []

        def store() -> None:
            try:
                sink.run()
            except BaseException as exc:  # reported in the result
                error.append(exc)

        thread = threading.Thread(target=store, daemon=True)
        thread.start()
        producer = Producer({"bootstrap.servers": self.config.bootstrap_servers, "linger.ms": 5})
        key = message_key(self.topic, 0)
        total = int(args.rate * args.seconds)
        fault_at, v2 = total // 3, None
        start = time.monotonic()
        for i in range(total):
            if i == fault_at:
                v2 = self._fault_begins(proxy)
            if self.fault == "registry" and v2 is not None and proxy.hung and i % 2:
                value = self._encode_v2(v2, i)
            else:
                value = self._value(codec, sid, i)
            producer.produce(self.topic.kafka_name, value, key=key, on_delivery=self.delivered)
            producer.poll(0)
            self._fault_ends(proxy, time.monotonic() - start)
            delay = start + (i + 1) / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while self._fault_ends(proxy, time.monotonic() - start):
            time.sleep(0.1)
        producer.flush(30)
        sent_done = time.monotonic()
        drained = self._wait_all(sink, 120)
        drain_s = time.monotonic() - sent_done
        sink.stop()
        thread.join(60)
        proxy.close()
        return self._account(sink, drained, drain_s, error)

    def _value(self, codec: Codec, sid: int, i: int) -> bytes:
        every = self.args.poison_every
        if self.fault != "poison" or i % every != every - 1:
            return codec.encode_message(record(self.topic, i))
        self.poison += 1
        kind = (i // every) % 5
        if kind == 0:
            return codec.encode_message(record(self.topic, i, private_efdStamp=math.nan))
        if kind == 1:
            return codec.encode_message(record(self.topic, i, private_efdStamp=1e20))
        if kind == 2:
            return codec.encode_message(record(self.topic, i, string0="bad\x00text"))
        if kind == 3:
            return b"\x07not the wire format"
        return frame(sid, b"\xff\xff\xff\xff")

    def _fault_begins(self, proxy: TcpProxy) -> dict[str, Any] | None:
        self.fault_start = time.monotonic()
        if self.fault == "registry":
            schema = json.loads(json.dumps(self.topic.avro_schema))
            schema["fields"].append({"name": "addedLater", "type": "double", "default": 0.0})
            with Session(self.config) as session:
                new_id = session.registry.client.register_schema(self.topic.subject, Schema(json.dumps(schema), "AVRO"))
            proxy.hang()
            self.events.append(f"v2 registered (id {new_id}), registry hung")
            return {"schema": fastavro.parse_schema(schema), "id": new_id}
        if self.fault == "database":
            self.postgres.stop(remove=False)
            self.events.append("PostgreSQL stopped")
        return None

    def _fault_ends(self, proxy: TcpProxy, elapsed: float) -> bool:
        """End the fault when its time is up; True while it lasts."""
        if not hasattr(self, "fault_start"):
            return False
        down = time.monotonic() - self.fault_start
        if self.fault == "registry" and proxy.hung:
            if down >= self.args.registry_down:
                proxy.resume()
                self.events.append(f"registry answers again after {down:.1f} s")
            return proxy.hung
        if self.fault == "database" and not getattr(self, "db_back", False):
            if down >= self.args.db_down:
                self.postgres.start()
                self.db_back = True
                self.events.append(f"PostgreSQL started again after {down:.1f} s")
            return not getattr(self, "db_back", False)
        return False

    def _encode_v2(self, v2: dict[str, Any], i: int) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, v2["schema"], {**record(self.topic, i), "addedLater": float(i)})
        return frame(v2["id"], buffer.getvalue())

    def _table(self) -> str:
        return f"{schema_of(self.subname)}.ktest_tel_scalars"

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as db:
            return db.execute(sql).fetchall()

    def _wait_all(self, sink: PostgresSink, timeout: float) -> bool:
        expected = len(self.offsets)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                rows = self._query(f"SELECT count(*) FROM {self._table()}")[0][0]
                aside = self._query("SELECT count(*) FROM sal_kafka_set_aside")[0][0]
            except psycopg.Error:
                rows = aside = 0
            if rows + aside >= expected:
                return True
            time.sleep(0.2)
        return False

    def _account(self, sink: PostgresSink, drained: bool, drain_s: float, error: list[BaseException]) -> dict[str, Any]:
        stored = [r[0] for r in self._query(f"SELECT kafka_offset FROM {self._table()}")]
        aside = [r[0] for r in self._query("SELECT kafka_offset FROM sal_kafka_set_aside")]
        accounted = set(stored) | set(aside)
        columns = {
            r[0]
            for r in self._query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'ktest_tel_scalars'"
            )
        }
        return {
            "fault": self.fault,
            "sent": len(self.offsets),
            "send_failed": self.failed,
            "stored": len(stored),
            "set_aside": len(aside),
            "poison_sent": self.poison,
            "lost": sum(o not in accounted for o in self.offsets),
            "duplicates": len(stored) - len(set(stored)),
            "drained_s": round(drain_s, 1) if drained else None,
            "retries": sink.stats.retries,
            "new_column": "addedlater" in columns,
            "error": repr(error[0]) if error else None,
            "events": self.events,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poison-every", type=int, default=50)
    parser.add_argument("--registry-down", type=float, default=15.0)
    parser.add_argument("--db-down", type=float, default=10.0)
    parser.add_argument("--faults", default="poison,registry,database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    results = []
    with Stack() as stack:
        print(f"# Apache Kafka {stack.kafka.version}, {args.rate:.0f} msg/s for {args.seconds:.0f} s", flush=True)
        postgres = EmbeddedPostgres().start()
        try:
            for fault in args.faults.split(","):
                result = Run(stack, postgres, fault, args).run()
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            postgres.stop()
    if not args.json:
        keys = ["fault", "sent", "stored", "set_aside", "poison_sent", "lost", "duplicates", "drained_s", "retries"]
        print("\n| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in results:
            print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
