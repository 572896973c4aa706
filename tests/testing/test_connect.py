"""The seed pipeline on real parts: PostgreSQL rows -> Debezium's PostgreSQL
connector in Kafka Connect -> Apache Kafka -> ``sal-kafka read --kafka-topics``
as JSON lines, with the connector's metrics from the Prometheus JMX exporter."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sal_kafka.observe import alert_rules, connect_dashboard, prometheus_config
from sal_kafka.testing import Stack
from sal_kafka.testing._broker._cluster import free_port
from sal_kafka.testing._broker._connect import KafkaConnect, debezium_postgres
from sal_kafka.testing._prometheus import PrometheusServer
from sal_kafka.testing._stack import EmbeddedPostgres

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def cdc_database() -> Iterator[EmbeddedPostgres]:
    """PostgreSQL on a loopback port (JDBC speaks TCP only) with logical decoding on."""
    with EmbeddedPostgres(port=free_port(), settings={"wal_level": "logical"}) as pg:
        yield pg


def _read(stack: Stack, *args: str, timeout: float = 90) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    env = {**os.environ, **stack.env()}
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "read", "--kafka-topics", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    return lines, summary, done.returncode


def test_debezium_change_events_arrive_as_json_lines(stack: Stack, cdc_database: EmbeddedPostgres) -> None:
    prefix = f"cdc{uuid.uuid4().hex[:8]}"
    table = f"readings_{prefix}"
    with psycopg.connect(cdc_database.url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, sensor text, value double precision)")
        conn.execute(f"INSERT INTO {table} (sensor, value) VALUES ('before', 1.5)")  # the snapshot's row
    connector = debezium_postgres(
        f"{prefix}-source",
        host="127.0.0.1",
        port=cdc_database.port or 0,
        database="postgres",
        user="postgres",
        tables=[f"public.{table}"],
        topic_prefix=prefix,
    )
    with KafkaConnect(stack.bootstrap_servers, [connector]) as connect:
        with psycopg.connect(cdc_database.url, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {table} (sensor, value) VALUES ('after', 2.5)")
            conn.execute(f"UPDATE {table} SET value = 3.0 WHERE sensor = 'before'")
            conn.execute(f"DELETE FROM {table} WHERE sensor = 'after'")
        topic = f"{prefix}.public.{table}"
        # 4 changes and the delete's tombstone (a null value, so that compaction can drop the key)
        lines, summary, status = _read(stack, topic, "-n", "5", "-t", "60", "--headers")
        assert status == 0, summary
        assert summary["messages"] == 5 and summary["undecodable"] == 0 and summary["ended"] == "count"
        assert [line["offset"] for line in lines] == [0, 1, 2, 3, 4]
        assert all(line["topic"] == topic and line["partition"] == 0 for line in lines)
        ops = [(line["message"] or {}).get("op") for line in lines]
        assert ops == ["r", "c", "u", "d", None]  # snapshot read, create, update, delete, tombstone
        assert lines[0]["key"] == {"id": 1}
        assert lines[0]["message"]["after"] == {"id": 1, "sensor": "before", "value": 1.5}
        assert lines[2]["message"]["after"]["value"] == 3.0
        assert lines[3]["message"]["before"]["id"] == 2 and lines[3]["message"]["after"] is None
        assert lines[4]["key"] == {"id": 2} and lines[4]["message"] is None
        assert all(isinstance(line["timestamp"], int) and "headers" in line for line in lines)

        # the start positions: an offset, and the end (nothing new: ends idle, status 1 for the count)
        lines, summary, _ = _read(stack, topic, "--offset", "3", "-n", "2", "-t", "20")
        assert [line["offset"] for line in lines] == [3, 4]
        lines, summary, status = _read(stack, topic, "--from-end", "-n", "1", "-t", "2")
        assert lines == [] and summary["ended"] == "idle" and status == 1

        with urllib.request.urlopen(connect.metrics_url, timeout=10) as answer:
            metrics = answer.read().decode()
        assert f'kafka_connect_connector_status{{connector="{prefix}-source",status="running"}} 1.0' in metrics
        assert f'debezium_streaming_connected{{plugin="postgres",server="{prefix}"' in metrics
        events = [m for m in metrics.splitlines() if m.startswith("debezium_streaming_totalnumberofeventsseen")]
        assert events and float(events[0].split()[-1]) == 3.0  # the create, the update and the delete
        status_ = connect.status(f"{prefix}-source")
        assert status_["connector"]["state"] == "RUNNING" and status_["tasks"][0]["state"] == "RUNNING"
        _check_in_prometheus(connect)
        # the dashboard's PostgreSQL panel: the connector's slot, and how far behind it is
        (slot_sql,) = [t["rawSql"] for p in connect_dashboard()["panels"] for t in p["targets"] if "rawSql" in t]
        with psycopg.connect(cdc_database.url) as conn:
            slots = conn.execute(slot_sql).fetchall()
        assert [s[1] for s in slots if s[1] == connector["slot.name"]] == [connector["slot.name"]]
        assert all(s[2] >= 0 for s in slots)


def _check_in_prometheus(connect: KafkaConnect) -> None:
    """Debian's Prometheus scrapes the worker's exporter with the generated configuration:
    every query of the Kafka Connect dashboard returns series, and the alert rules load."""
    targets = {"kafka-connect": [connect.metrics_url.split("/")[2]], "sal-kafka-read": [f"127.0.0.1:{free_port()}"]}
    config = prometheus_config(targets)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    with PrometheusServer(config, {"alerts.yml": alert_rules(jobs=targets)}) as prometheus:
        deadline = time.monotonic() + 60
        while not prometheus.query('count_over_time(up{job="kafka-connect"}[1m]) >= 4'):
            assert time.monotonic() < deadline, prometheus.tail()
            time.sleep(0.5)
        exprs = [t["expr"] for p in connect_dashboard()["panels"] for t in p["targets"] if "expr" in t]
        empty = [e for e in exprs if not prometheus.query(e)]
        assert not empty, empty
        groups = prometheus.api("rules")["groups"]
        assert groups and all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
        down = prometheus.query('up{job=~"kafka-connect|sal-kafka-read"} == 0')
        assert [d["metric"]["job"] for d in down] == ["sal-kafka-read"]  # the target with nothing behind it
        assert not prometheus.query('kafka_connect_task_status{status!="running"} == 1')


def test_read_any_topic_decodes_avro_json_and_text_and_counts_what_it_cannot(stack: Stack) -> None:
    import io

    import fastavro
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry import Schema

    from sal_kafka import SchemaRegistry
    from sal_kafka.wire import frame

    topic = f"plain-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    schema = {"type": "record", "name": "reading", "fields": [{"name": "value", "type": "double"}]}
    with SchemaRegistry(stack.registry_url) as registry:
        schema_id = registry.client.register_schema(f"{topic}-value", Schema(json.dumps(schema), "AVRO"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), {"value": 2.5})
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(topic, key=b'{"id": 1}', value=frame(schema_id, body.getvalue()))
    producer.produce(topic, key=b"plain key", value=b'{"json": [1, 2]}')
    producer.produce(topic, value="some text é".encode())
    producer.produce(topic, value=b"\xff\xfe\x00binary")
    producer.produce(topic, value=frame(999_999, b"\x01\x02"))  # an id the registry does not know
    producer.flush(30)
    lines, summary, status = _read(stack, topic, "-n", "5", "-t", "30")
    assert status == 0
    assert [line["message"] for line in lines[:4]] == [
        {"value": 2.5},
        {"json": [1, 2]},
        "some text é",
        {"base64": "//4AYmluYXJ5"},
    ]
    assert lines[0]["key"] == {"id": 1} and lines[1]["key"] == "plain key" and lines[2]["key"] is None
    assert lines[4]["message"]["schema_id"] == 999_999
    assert summary["undecodable"] == 1 and summary["messages"] == 5


def test_read_any_topic_says_what_is_wrong(stack: Stack) -> None:
    env = {**os.environ, **stack.env()}
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "read", "--kafka-topics", "no-such-topic", "-t", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0 and "topic 'no-such-topic' does not exist" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "read", "KTest", "evt_scalars", "--headers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0 and "--headers goes with --kafka-topics" in done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone too: it only waits for its parent
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_dev_starts_the_whole_pipeline_with_one_command_and_stops_it_all() -> None:
    """``sal-kafka dev --sink --prometheus --connect``: the broker, the registry, PostgreSQL,
    the sink, Kafka Connect with Debezium and Prometheus scraping them; SIGTERM stops
    every process it started."""
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "dev", "--sink", "--prometheus", "--connect"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while not (lines and "running until" in lines[-1]):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        addresses = dict(line.strip().split(": ", 1) for line in lines if ": " in line and line.startswith(" "))
        pids = [int(p) for p in lines[-1].split("pids ")[1].split(";")[0].split()]
        assert len(pids) == 6, text  # broker, registry, PostgreSQL, sink, Connect, Prometheus
        prometheus = addresses["Prometheus"]
        deadline = time.monotonic() + 60
        while True:  # every scrape job answers (Prometheus scrapes every 10 s)
            with urllib.request.urlopen(f"{prometheus}/api/v1/query?query=up", timeout=10) as answer:
                up = {r["metric"]["job"]: r["value"][1] for r in json.load(answer)["data"]["result"]}
            if up == {"sal-kafka-registry": "1", "sal-kafka-sink": "1", "kafka-connect": "1"}:
                break
            assert time.monotonic() < deadline, up
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    deadline = time.monotonic() + 30
    while [p for p in pids if _alive(p)]:
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.5)


def test_dev_keep_leaves_the_pipeline_running_and_says_how_to_stop_it(tmp_path: Path) -> None:
    """``sal-kafka dev --sink --keep``: everything outlives the command; its kill line stops it all.
    (Before: a kept stack's temporary folder was deleted as the command ended, and the sink
    died with its log.)"""
    import signal

    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "dev", "--sink", "--keep", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (kill,) = [line for line in done.stdout.splitlines() if "stop it with: kill" in line]
    pids = [int(p) for p in kill.split("kill ", 1)[1].split()]
    try:
        assert len(pids) == 4 and all(_alive(p) for p in pids), done.stdout  # broker, registry, PostgreSQL, sink
        (sink_metrics,) = [
            line.split(": ", 1)[1].split()[0] for line in done.stdout.splitlines() if "sink metrics" in line
        ]
        deadline = time.monotonic() + 60
        while True:  # the sink serves its metrics once it has started
            try:
                with urllib.request.urlopen(sink_metrics, timeout=10) as answer:
                    assert b"sal_kafka_sink_batches_total" in answer.read()
                break
            except OSError:  # not listening yet (refused), or reset while it starts
                assert time.monotonic() < deadline and _alive(pids[3]), "the kept sink never served its metrics"
                time.sleep(0.5)
    finally:
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while [p for p in pids if _alive(p)]:
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.5)
