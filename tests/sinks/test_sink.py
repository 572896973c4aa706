"""The PostgreSQL sink against the embedded PostgreSQL 18 and the real broker."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from sal_kafka import ComponentInfo, KafkaConfig, Writer
from sal_kafka.sinks import AsyncPostgresSink, PostgresSink, SinkError, identifier, table_of
from sal_kafka.sinks.postgres._tables import schema_of
from sal_kafka.testing import EmbeddedPostgres, Stack, sample_record
from tests.conftest import BUNDLED
from tests.sinks import running, with_search_path

pytestmark = [pytest.mark.broker, pytest.mark.server]

KTEST = ComponentInfo.load("KTest", BUNDLED)


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


def column_types(url: str, table: str) -> dict[str, str]:
    found = rows(
        url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped",
    )
    return {str(name): str(kind) for name, kind in found}


def wait_rows(url: str, table: str, number: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        try:
            count = int(rows(url, f"SELECT count(*) FROM {table}")[0][0])
        except psycopg.errors.UndefinedTable:
            count = 0
        if count >= number:
            return count
        time.sleep(0.1)
    return count


def test_the_naming_rule() -> None:
    table = table_of(ComponentInfo.load("KMirror", BUNDLED)["tel_forceActuatorData"])
    assert table.name == "kmirror_tel_forceactuatordata"
    names = [c.name for c in table.columns]
    assert names[0] == "time" and names[-2:] == ["kafka_partition", "kafka_offset"]
    assert "private_sndstamp" in names and "zforce" in names
    assert identifier("user") == "user_" and identifier("Order") == "order_" and len(identifier("x" * 80)) == 63


def test_tables_columns_and_values(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "evt_scalars", index=3, config=kafka_config) as writer:
        sent = writer.write(sample_record(writer.topic), wait=True)
    with Writer(ktest, "tel_arrays", index=3, config=kafka_config) as arrays:
        sent_arrays = arrays.write(sample_record(arrays.topic), wait=True)
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars", "tel_arrays"], max_delay=0.1)
    with running(sink):
        assert wait_rows(database, "ktest_evt_scalars", 1) == 1 and wait_rows(database, "ktest_tel_arrays", 1) == 1
    types = column_types(database, "ktest_evt_scalars")
    assert types["time"] == "timestamp with time zone" and types["salindex"] == "integer"
    assert types["boolean0"] == "boolean" and types["byte0"] == "smallint" and types["short0"] == "smallint"
    assert types["int0"] == "integer" and types["longlong0"] == "bigint" and types["unsignedint0"] == "bigint"
    assert types["float0"] == "real" and types["double0"] == "double precision" and types["string0"] == "text"
    array_types = column_types(database, "ktest_tel_arrays")
    assert array_types["double0"] == "double precision[]" and array_types["byte0"] == "smallint[]"
    (row,) = rows(database, "SELECT salindex, int0, string0, private_seqnum, kafka_offset, time FROM ktest_evt_scalars")
    assert row[:5] == (3, sent["int0"], sent["string0"], 1, 0)
    assert abs(row[5].timestamp() - sent["private_efdStamp"]) < 1e-3  # type: ignore[attr-defined]
    (arrays_row,) = rows(database, "SELECT double0, byte0 FROM ktest_tel_arrays")
    assert list(arrays_row[0]) == sent_arrays["double0"] and list(arrays_row[1]) == sent_arrays["byte0"]
    indexes = rows(database, "SELECT indexdef FROM pg_indexes WHERE tablename = 'ktest_evt_scalars'")
    assert any('(salindex, "time")' in i[0] or "(salindex, time)" in i[0] for i in indexes)


def test_a_new_field_adds_a_column_a_changed_type_is_refused(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"])
    sink.connect().close()
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("ALTER TABLE ktest_evt_scalars DROP COLUMN double0")  # as if double0 were new
    sink.connect().close()
    assert ("double0",) in rows(
        database, "SELECT attname FROM pg_attribute WHERE attrelid = 'ktest_evt_scalars'::regclass"
    )
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("ALTER TABLE ktest_evt_scalars ALTER COLUMN int0 TYPE text")
    with pytest.raises(
        SinkError,
        match=r"KTest.evt_scalars: field 'int0' is integer in the schema but column \S*ktest_evt_scalars.int0 is text",
    ):
        sink.connect()


def test_kill_9_of_the_sink_loses_and_duplicates_nothing(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    """Messages written while the sink is killed (SIGKILL) and restarted, five times: every one
    stored once (each batch and its offsets are committed in one transaction)."""
    mirror = ComponentInfo.load("KMirror", BUNDLED, kafka_config.topic_subname)
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    command = [
        sys.executable,
        "-m",
        "sal_kafka",
        "sink",
        "postgres",
        "--url",
        database,
        "KMirror",
        "--topic",
        "tel_inclinometer",
    ]
    command += ["--batch-size", "200", "--max-delay", "0.05", "--xml-dir", str(BUNDLED)]
    total = 0
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        for cycle in range(5):
            sink = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
            stored_before = wait_rows(database, "kmirror_tel_inclinometer", total // 2 + 1 if total else 0, timeout=30)
            assert stored_before >= 0
            for i in range(800):
                writer.write(inclinometerAngle=float(total + i))
                if i % 100 == 0:
                    writer.flush()
                    time.sleep(0.02)
            writer.flush()
            total += 800
            time.sleep(0.05 * cycle)  # kill at a different moment each time
            os.kill(sink.pid, signal.SIGKILL)
            sink.wait(10)
    sink = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        assert wait_rows(database, "kmirror_tel_inclinometer", total, timeout=60) == total
        time.sleep(0.5)  # nothing more may come
        (count, distinct, low, high) = rows(
            database,
            "SELECT count(*), count(DISTINCT private_seqnum), min(private_seqnum), max(private_seqnum) "
            "FROM kmirror_tel_inclinometer",
        )[0]
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
    assert (count, distinct, low, high) == (total, total, 1, total)


def expand_grafana_macros(
    sql: str, start: str, end: str, interval_seconds: int = 60, variables: dict[str, str] | None = None
) -> str:
    """Grafana's PostgreSQL macros, as its datasource expands them for a time range, and
    the dashboard's variables (a multi-value one as its values joined by commas)."""
    for name, value in (variables or {}).items():
        sql = sql.replace(f"${name}", value)
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+), \$__interval\)",
        rf'floor(extract(epoch from \1)/{interval_seconds})*{interval_seconds} AS "time"',
        sql,
    )
    assert "$" not in sql, sql
    return sql


def test_every_dashboard_query_returns_the_rows_written(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    from sal_kafka.sinks import component_dashboard

    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    for topic in ("evt_summaryState", "evt_scalars", "tel_scalars"):
        with Writer(ktest, topic, index=1, config=kafka_config) as writer:
            for _ in range(3):
                writer.write(sample_record(writer.topic), wait=True)
    sink = PostgresSink(database, [ktest], config=kafka_config, max_delay=0.1)
    with running(sink):
        for table in ("ktest_evt_summarystate", "ktest_evt_scalars", "ktest_tel_scalars"):
            assert wait_rows(database, table, 3) == 3
    from sal_kafka.sinks.postgres._grafana import database_facts, postgres_datasource

    # only the tables that exist: a topic the sink does not store broke the whole Events panel
    dashboard = component_dashboard(ktest, existing=database_facts(database).tables)
    json.loads(json.dumps(dashboard))
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(hours=1)).isoformat(), (now + datetime.timedelta(minutes=1)).isoformat()
    titles = {p["title"]: p for p in dashboard["panels"]}
    assert {"summaryState", "Events", "tel_scalars"} <= set(titles) and "tel_arrays" not in titles
    assert titles["summaryState"]["type"] == "state-timeline" and titles["Events"]["type"] == "table"
    states = titles["summaryState"]["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert states["2"]["text"] == "ENABLED" and states["5"]["text"] == "STANDBY"
    (variable,) = dashboard["templating"]["list"]  # KTest is indexed: one series per salIndex
    assert variable["name"] == "salIndex" and rows(database, variable["query"]) == [(1,)]
    for panel in dashboard["panels"]:
        sql = expand_grafana_macros(panel["targets"][0]["rawSql"], start, end, variables={"salIndex": "1"})
        found = rows(database, sql)
        if panel["title"] in ("summaryState", "tel_scalars"):
            assert len(found) >= 1 and all(r[1] == "1" for r in found), panel["title"]  # the series: salIndex
        if panel["title"] == "Events":
            assert sorted({r[1] for r in found}) == ["evt_scalars", "evt_summaryState"] and len(found) == 6
            fields = [json.loads(r[3]) for r in found if r[1] == "evt_scalars"]
            assert all("int0" in f and "private_seqnum" in f and "private_sndstamp" not in f for f in fields)
        expand_grafana_macros(panel["targets"][0]["rawSql"], start, end, variables={"salIndex": "2"})
    (source,) = postgres_datasource(database)["datasources"]  # asked of the database, not written in
    assert source["jsonData"]["timescaledb"] is False and source["jsonData"]["postgresVersion"] == 1500
    assert not source["url"].endswith(":5432") or not source["url"].startswith("/")


def test_host_metrics_end_to_end(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    """The publisher writes the host's metrics for a few seconds; the topics read back from the
    beginning (a seek) and the sink's rows in PostgreSQL match them one for one."""
    from sal_kafka import Reader, Session
    from sal_kafka.apps.hostmetrics import HostMetricsPublisher

    hosts = ComponentInfo.load("HostMetrics", BUNDLED, kafka_config.topic_subname)
    with Session(kafka_config) as session:
        publisher = HostMetricsPublisher(session, hosts, thresholds={"memory.percent": 0.0}, hold=0.0, index=7)
        samples = publisher.run(interval=0.2, duration=2.0)
    assert samples >= 5
    topics = ["tel_cpu", "tel_memory", "tel_disk", "tel_network", "evt_thresholdCrossed"]
    with Reader(hosts, topics, config=kafka_config, start="beginning") as reader:
        read: dict[str, list[int]] = {}
        while (received := reader.next(2.0)) is not None:
            read.setdefault(received.topic, []).append(received.data["private_seqNum"])
    assert {t: len(v) for t, v in read.items()} == {**{t: samples for t in topics[:4]}, "evt_thresholdCrossed": 1}
    sink = PostgresSink(database, [hosts], config=kafka_config, topics=topics, max_delay=0.1)
    with running(sink):
        for topic in topics:
            assert wait_rows(database, f"hostmetrics_{topic.lower()}", len(read[topic])) == len(read[topic])
    for topic in topics:
        stored = [
            r[0]
            for r in rows(database, f"SELECT private_seqnum FROM hostmetrics_{topic.lower()} ORDER BY kafka_offset")
        ]
        assert stored == read[topic], topic
    (cpu,) = rows(database, "SELECT numcores, array_length(percent, 1), load1 FROM hostmetrics_tel_cpu LIMIT 1")
    assert cpu[0] == min(os.cpu_count() or 1, 64) and cpu[1] == 64 and cpu[2] >= 0
    # the host is in the data: its index and its name, in every topic
    for topic in topics:
        assert rows(database, f"SELECT DISTINCT salindex, hostname FROM hostmetrics_{topic.lower()}") == [
            (7, publisher.hostname)
        ], topic
    (crossed,) = rows(database, "SELECT metric, above FROM hostmetrics_evt_thresholdcrossed")
    assert crossed == ("memory.percent", True)


async def test_the_asyncio_face_and_every_registered_component(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    import asyncio

    mirror = ComponentInfo.load("KMirror", BUNDLED, kafka_config.topic_subname)
    with Writer(mirror, "evt_detailedState", config=kafka_config) as writer:
        for state in range(5):
            writer.write(detailedState=state)
    async with AsyncPostgresSink(
        database, [mirror], config=kafka_config, topics=["evt_detailedState"], max_delay=0.1
    ) as sink:
        assert await asyncio.to_thread(wait_rows, database, "kmirror_evt_detailedstate", 5) == 5
    # counted under the table's schema-qualified name: the test's sub-namespace has its own schema
    assert sink.stats.rows == {f"{schema_of(kafka_config.topic_subname)}.kmirror_evt_detailedstate": 5}
    # the command with no component: the registered ones (KMirror here)
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sal_kafka",
            "sink",
            "postgres",
            "--url",
            database,
            "--seconds",
            "3",
            "--xml-dir",
            str(BUNDLED),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "storing the registered components: KMirror" in done.stderr


def test_a_database_that_goes_down_and_comes_back(stack: Stack, kafka_config: KafkaConfig, tmp_path: object) -> None:
    """PostgreSQL stops under a running sink: the batch waits and is retried with back-off
    (logged, counted); when the database is back, every message is stored, once."""
    server = EmbeddedPostgres().start()
    try:
        url = with_search_path(server.url, kafka_config.topic_subname)
        mirror = ComponentInfo.load("KMirror", BUNDLED, kafka_config.topic_subname)
        sink = PostgresSink(url, [mirror], config=kafka_config, topics=["tel_inclinometer"], max_delay=0.05)
        thread = threading.Thread(target=sink.run, daemon=True)  # a failed assert must not hang the run
        thread.start()
        with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
            for i in range(100):
                writer.write(inclinometerAngle=float(i))
            writer.flush()
            assert wait_rows(url, "kmirror_tel_inclinometer", 100) == 100
            server.stop(remove=False)  # down
            for i in range(100, 300):
                writer.write(inclinometerAngle=float(i))
            writer.flush()
            deadline = time.monotonic() + 20
            while sink.stats.retries < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sink.stats.retries >= 2  # it tried, and waited
            server.start()  # back
            url = with_search_path(server.url, kafka_config.topic_subname)
            assert wait_rows(url, "kmirror_tel_inclinometer", 300, timeout=60) == 300
        sink.stop()
        thread.join(60)
        (count, distinct) = rows(url, "SELECT count(*), count(DISTINCT private_seqnum) FROM kmirror_tel_inclinometer")[
            0
        ]
        assert (count, distinct) == (300, 300)
    finally:
        sink.stop()
        server.stop()


def test_offsets_go_to_a_consumer_group_and_a_row_is_one_message(
    stack: Stack, kafka_config: KafkaConfig, database: str
) -> None:
    """Before: the offsets were in the database only (Kafka's lag tools saw no sink),
    and nothing in a table said a message is one row."""
    from confluent_kafka import Consumer, TopicPartition

    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "evt_scalars", index=1, config=kafka_config) as writer:
        for _ in range(7):
            writer.write(sample_record(writer.topic))
    group = f"sink-{kafka_config.topic_subname}"
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1, group_id=group)
    with running(sink):
        assert wait_rows(database, "ktest_evt_scalars", 7) == 7
        topic = writer.topic.kafka_name
        probe = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": group})
        deadline = time.monotonic() + 20
        while (committed := probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset) != 7:
            assert time.monotonic() < deadline, committed  # committed after the database, asynchronously
            time.sleep(0.2)
        probe.close()
    indexes = rows(database, "SELECT indexdef FROM pg_indexes WHERE tablename = 'ktest_evt_scalars'")
    assert any("UNIQUE" in i[0] and "(kafka_partition, kafka_offset)" in i[0] for i in indexes), indexes
    with pytest.raises(psycopg.errors.UniqueViolation), psycopg.connect(database) as db:
        db.execute("INSERT INTO ktest_evt_scalars SELECT * FROM ktest_evt_scalars LIMIT 1")


def test_the_sink_says_where_it_starts_and_how_it_goes(
    stack: Stack,
    kafka_config: KafkaConfig,
    database: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At INFO (``sal-kafka -v sink ...``): the start line, then progress lines."""
    import logging

    from sal_kafka.sinks import _runner

    monkeypatch.setattr(_runner, "PROGRESS_INTERVAL", 0.3)
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "evt_scalars", index=1, config=kafka_config) as writer:
        for _ in range(3):
            writer.write(sample_record(writer.topic))
    caplog.set_level(logging.INFO, logger="sal_kafka")
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1)
    with running(sink):
        assert wait_rows(database, "ktest_evt_scalars", 3) == 3
        time.sleep(1.0)
    text = caplog.text
    assert "storing 1 topics of KTest in PostgreSQL at postgresql://" in text and "group sal-kafka-sink" in text
    assert re.search(r"stored 3 rows in 1 tables \(\d+ rows/s over the last 0.3 s\), 0 set aside", text), text


def test_enumerations_have_lookup_tables(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    """A query can show an enumeration's names: every enumeration of the stored topics
    (and SAL's State of summaryState) and the columns that hold them."""
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "evt_testState", index=1, config=kafka_config) as writer:
        writer.write(sample_record(writer.topic) | {"mode": 4, "lamp": 2}, wait=True)
    sink = PostgresSink(
        database, [ktest], config=kafka_config, topics=["evt_testState", "evt_summaryState"], max_delay=0.1
    )
    with running(sink):
        assert wait_rows(database, "ktest_evt_teststate", 1) == 1
    members = set(rows(database, "SELECT component, enumeration, member, value FROM sal_kafka_enumerations"))
    assert {
        ("KTest", "DriveMode", "Auto", 4),
        ("KTest", "Lamp", "blinking", 2),
        ("sal", "State", "ENABLED", 2),
    } <= members
    schema = schema_of(kafka_config.topic_subname)
    named = rows(
        database,
        "SELECT c.column_name, e.member FROM ktest_evt_teststate t "
        "JOIN sal_kafka_enum_columns c ON c.table_schema = %s AND c.table_name = 'ktest_evt_teststate' "
        "JOIN sal_kafka_enumerations e ON e.component = c.component AND e.enumeration = c.enumeration "
        "AND e.value = CASE c.column_name WHEN 'mode' THEN t.mode WHEN 'lamp' THEN t.lamp END "
        "ORDER BY 1".replace("%s", f"'{schema}'"),
    )
    assert named == [("lamp", "blinking"), ("mode", "Auto")]
    state = rows(database, "SELECT enumeration FROM sal_kafka_enum_columns WHERE table_name = 'ktest_evt_summarystate'")
    assert state == [("State",)]


def test_retention_and_aggregates_need_timescaledb(kafka_config: KafkaConfig, database: str) -> None:
    """On plain PostgreSQL (the embedded one) the TimescaleDB options are one clear error,
    not a half-made sink; tests/sinks/test_sink_timescaledb.py makes them where it is."""
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    for options in ({"retention": "30 days"}, {"aggregates": True}):
        sink = PostgresSink(database, [ktest], config=kafka_config, topics=["tel_scalars"], **options)  # type: ignore[arg-type]
        with pytest.raises(SinkError, match="has no TimescaleDB: a retention policy and continuous aggregates need it"):
            sink.connect()


def test_a_backfill_of_a_time_range(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    """``since`` and ``until``: the messages of a time range, stored, and the sink returns
    by itself (a backfill without code: ``sal-kafka sink postgres --since T1 --until T2``)."""
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "evt_scalars", index=1, config=kafka_config) as writer:
        for i in range(4):
            writer.write(sample_record(writer.topic) | {"int0": i}, wait=True)
        time.sleep(0.05)
        since = datetime.datetime.now(datetime.UTC)
        time.sleep(0.05)
        for i in range(4, 9):
            writer.write(sample_record(writer.topic) | {"int0": i}, wait=True)
        time.sleep(0.05)
        until = datetime.datetime.now(datetime.UTC)
        time.sleep(0.05)
        for i in range(9, 12):
            writer.write(sample_record(writer.topic) | {"int0": i}, wait=True)
    sink = PostgresSink(
        database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1, since=since, until=until
    )
    thread = threading.Thread(target=sink.run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the backfill did not end by itself"
    assert [r[0] for r in rows(database, "SELECT int0 FROM ktest_evt_scalars ORDER BY kafka_offset")] == [4, 5, 6, 7, 8]
    # the sink resumes after the range: the rest, and only the rest
    rest = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"], max_delay=0.1)
    with running(rest):
        assert wait_rows(database, "ktest_evt_scalars", 8) == 8
    assert [r[0] for r in rows(database, "SELECT int0 FROM ktest_evt_scalars ORDER BY kafka_offset")] == [
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
    ]
