"""The sink on a TimescaleDB server: hypertables on ``time``.

The embedded PostgreSQL has no TimescaleDB and neither PyPI nor Debian ship the
extension, so these tests run where a PostgreSQL installation with the extension is
on the machine (``pg_config`` finds ``timescaledb.so``): they start a server of their
own from it, with ``shared_preload_libraries = timescaledb``. Elsewhere they are
skipped, saying why. docs/sink.md says how they were run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sal_kafka import ComponentInfo, KafkaConfig, Writer
from sal_kafka.sinks import PostgresSink
from sal_kafka.testing import Stack, sample_record
from tests.conftest import BUNDLED
from tests.sinks import running, with_search_path
from tests.sinks.test_sink import rows, wait_rows

pytestmark = [pytest.mark.broker, pytest.mark.server]


def _pg_config(option: str) -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    return Path(subprocess.run([pg_config, option], capture_output=True, text=True, check=True).stdout.strip())


def _runuser() -> str | None:
    return shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    return [str(_runuser()), "-u", "postgres", "--", *command] if os.getuid() == 0 else command


@pytest.fixture(scope="module")
def timescaledb() -> Iterator[str]:
    """A PostgreSQL server with TimescaleDB preloaded, on a Unix socket in a folder of its own."""
    libdir, bindir = _pg_config("--pkglibdir"), _pg_config("--bindir")
    if libdir is None or bindir is None or not (libdir / "timescaledb.so").is_file():
        pytest.skip("no PostgreSQL with the TimescaleDB extension on this machine (pg_config finds no timescaledb.so)")
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        if _runuser() is None:
            pytest.skip("running as root and there is no runuser to run the server as 'postgres'")
    with tempfile.TemporaryDirectory(prefix="sal-kafka-timescaledb-") as name:
        folder = Path(name)  # not under pytest's folder, which the server's user cannot reach
        if os.getuid() == 0:
            shutil.chown(folder, "postgres")
        yield from _server(bindir, folder)


def _server(bindir: Path, folder: Path) -> Iterator[str]:
    data = folder / "data"
    made = subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    settings = (
        f"-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off "
        f"-c listen_addresses='' -c unix_socket_directories={folder} -c port=5432"
    )
    pg_ctl = str(bindir / "pg_ctl")
    started = subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-o", settings, "-l", str(folder / "server.log"), "-w", "start"]),
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, (started.stderr, (folder / "server.log").read_text())
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&port=5432"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)


@pytest.fixture
def database(timescaledb: str, kafka_config: KafkaConfig) -> str:
    name = kafka_config.topic_subname.lower()
    with psycopg.connect(timescaledb, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return with_search_path(timescaledb.replace("/postgres?", f"/{name}?"), kafka_config.topic_subname)


def store(url: str, component: ComponentInfo, config: KafkaConfig, topics: list[str], expected: dict[str, int]) -> bool:
    """Run a sink until each table holds its expected rows; its ``timescale`` choice."""
    sink = PostgresSink(url, [component], config=config, topics=topics, max_delay=0.05)
    with running(sink):
        for table, number in expected.items():
            assert wait_rows(url, table, number) == number, table
    return sink.timescale


def test_tables_become_hypertables_on_time(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    tables = {"evt_scalars": "ktest_evt_scalars", "tel_arrays": "ktest_tel_arrays"}
    writers = {topic: Writer(ktest, topic, index=3, config=kafka_config) for topic in tables}
    try:
        for writer in writers.values():
            for _ in range(20):
                writer.write(sample_record(writer.topic))
            writer.flush()
        assert store(database, ktest, kafka_config, list(tables), {t: 20 for t in tables.values()})
        dimensions = rows(
            database,
            "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions ORDER BY hypertable_name",
        )
        assert dimensions == [("ktest_evt_scalars", "time"), ("ktest_tel_arrays", "time")]
        # a restart finds its hypertables made, resumes from the stored offsets, stores the rest once
        for writer in writers.values():
            for _ in range(10):
                writer.write(sample_record(writer.topic))
            writer.flush()
        assert store(database, ktest, kafka_config, list(tables), {t: 30 for t in tables.values()})
    finally:
        for writer in writers.values():
            writer.close()
    for table in tables.values():
        (count, distinct), *_ = rows(database, f"SELECT count(*), count(DISTINCT private_seqnum) FROM {table}")
        assert (count, distinct) == (30, 30)
    chunks = rows(
        database, "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'ktest_tel_arrays'"
    )
    assert chunks[0][0] >= 1  # the rows live in the hypertable's chunks
    # what a Grafana panel on TimescaleDB asks: time_bucket over the time column
    (bucketed,) = rows(
        database,
        "SELECT sum(n) FROM (SELECT time_bucket('1 minute', time) AS t, count(*) AS n "
        "FROM ktest_evt_scalars WHERE salindex = 3 GROUP BY t) AS b",
    )
    assert bucketed[0] == 30


def test_a_new_field_on_a_hypertable_adds_a_column(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    sink = PostgresSink(database, [ktest], config=kafka_config, topics=["evt_scalars"])
    sink.connect().close()
    assert sink.timescale
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("ALTER TABLE ktest_evt_scalars DROP COLUMN double0")  # as if double0 were new
    sink.connect().close()
    names = rows(database, "SELECT attname FROM pg_attribute WHERE attrelid = 'ktest_evt_scalars'::regclass")
    assert ("double0",) in names
    (hypertable,) = rows(database, "SELECT count(*) FROM timescaledb_information.hypertables")
    assert hypertable[0] == 1


def test_retention_policy_and_one_minute_aggregates(stack: Stack, kafka_config: KafkaConfig, database: str) -> None:
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    with Writer(ktest, "tel_scalars", index=2, config=kafka_config) as writer:
        for _ in range(10):
            writer.write(sample_record(writer.topic))
    sink = PostgresSink(
        database, [ktest], config=kafka_config, topics=["tel_scalars"], retention="30 days", aggregates=True
    )
    sink.connect().close()
    jobs = rows(database, "SELECT proc_name FROM timescaledb_information.jobs WHERE proc_name LIKE 'policy_%'")
    assert {j[0] for j in jobs} >= {"policy_retention", "policy_refresh_continuous_aggregate"}
    with running(sink):
        assert wait_rows(database, "ktest_tel_scalars", 10) == 10
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("CALL refresh_continuous_aggregate('ktest_tel_scalars_1m', NULL, NULL)")
    (total,) = rows(database, "SELECT sum(messages) FROM ktest_tel_scalars_1m WHERE salindex = 2")
    assert total[0] == 10
