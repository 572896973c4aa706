"""Metrics scraped over HTTP and parsed with prometheus_client's parser; dashboards and alerts."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sal_kafka import ComponentInfo, KafkaConfig, Reader, Session, Writer
from sal_kafka.observe import (
    METRIC_NAMES,
    LatencyHistogram,
    Metrics,
    alert_rules,
    connect_dashboard,
    pipeline_dashboard,
    prometheus_config,
    serve_metrics,
    write_provisioning,
)
from sal_kafka.observe._grafana import DEFAULT_TARGETS
from sal_kafka.testing import Stack, free_port
from sal_kafka.testing._prometheus import prometheus_binaries
from tests.conftest import BUNDLED
from tests.registry_server import RegistryProcess

MIRROR = ComponentInfo.load("KMirror", BUNDLED)


def scrape(url: str) -> dict[str, list[Any]]:
    """``{sample name: [(labels, value), ...]}`` of a /metrics page."""
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    found = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return float(found[0])


def _series(samples: dict[str, list[Any]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (name, tuple(sorted(labels.items())))
        for name, found in samples.items()
        if "librdkafka" not in name
        for labels, _ in found
    }


def _names_in(expr: str) -> set[str]:
    return set(re.findall(r"sal_kafka_[a-z0-9_]+", expr))


def _known(name: str) -> bool:
    if name in METRIC_NAMES:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base in METRIC_NAMES and METRIC_NAMES[base][0] == "histogram"


def test_latency_histogram_buckets() -> None:
    histogram = LatencyHistogram()
    for v in (0.0001, 0.0004, 0.0015, 0.003, 0.2, 3.0):
        histogram.add(v)
    assert histogram.counts_at_most([0.0005, 0.002, 0.005, 0.5, 2.0, 5.0]) == [2, 3, 4, 5, 5, 6]


@pytest.mark.broker
def test_writer_and_reader_metrics_match_what_was_written_and_read(stack: Stack, kafka_config: KafkaConfig) -> None:
    metrics = Metrics()
    host, port = serve_metrics(0, metrics)
    url = f"http://{host}:{port}/metrics"
    with Session(kafka_config, metrics=metrics) as session:
        mirror = ComponentInfo.load("KMirror", BUNDLED, kafka_config.topic_subname)
        writer = Writer(mirror, "tel_inclinometer", session=session)
        reader = Reader(mirror, ["tel_inclinometer"], session=session)
        for i in range(300):
            writer.write(inclinometerAngle=float(i))
        writer.flush()
        got = 0
        deadline = time.monotonic() + 20
        while got < 300 and time.monotonic() < deadline:
            got += reader.next(1.0) is not None
        first = scrape(url)
        for i in range(300):
            writer.write(inclinometerAngle=float(i))
        writer.flush()
        while got < 600 and time.monotonic() < deadline:
            got += reader.next(1.0) is not None
        # the reading thread notes lags every LAGS_INTERVAL s: read on (nothing comes)
        # until it has noted them after the last message
        second = scrape(url)
        while value(second, "sal_kafka_consumer_lag_messages", component="KMirror", partition="0") != 0:
            assert time.monotonic() < deadline + 5, "the lag never came back to 0"
            assert reader.next(0.3) is None
            second = scrape(url)
        reader.close()
    labels = {"component": "KMirror", "topic": "tel_inclinometer"}
    assert value(second, "sal_kafka_writer_messages_total", **labels, index="0") == 600
    assert value(second, "sal_kafka_writer_delivered_total", **labels, index="0") == 600
    assert value(second, "sal_kafka_writer_failed_total", **labels, index="0") == 0
    assert value(second, "sal_kafka_writer_bytes_total", **labels, index="0") == writer.stats.bytes_written
    assert value(second, "sal_kafka_writer_ack_latency_seconds_count", **labels, index="0") == 600
    assert value(second, "sal_kafka_producer_queue_messages", client="producer-1") == 0  # flushed
    assert value(second, "sal_kafka_reader_messages_total", **labels) == got == 600
    assert value(second, "sal_kafka_reader_latency_seconds_count", **labels) == 600
    assert value(second, "sal_kafka_reader_latency_seconds_bucket", **labels, le="+Inf") == 600
    assert value(second, "sal_kafka_reader_broker_down", component="KMirror") == 0
    assert value(second, "sal_kafka_consumer_lag_messages", component="KMirror", partition="0") == 0
    # bounded labels: twice the messages, the same series (librdkafka's statistics, every 5 s, aside)
    assert _series(first) == _series(second)
    for name, series in second.items():
        assert _known(name) or name.startswith(("python_", "process_")), name
        for labels_, _ in series:
            assert "offset" not in labels_ and "seq" not in labels_


@pytest.mark.broker
def test_the_write_command_serves_metrics(stack: Stack, kafka_config: KafkaConfig) -> None:
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "write", "KMirror", "tel_inclinometer", "-n", "400", "--rate", "100"]
        + ["--metrics-port", str(port), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        written = 0.0
        while written < 50 and time.monotonic() < deadline:
            try:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
                written = sum(v for _, v in samples.get("sal_kafka_writer_messages_total", []))
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert written >= 50
    finally:
        out, _ = proc.communicate(timeout=60)
    assert json.loads(out)["messages"] == 400


@pytest.mark.server
def test_registry_server_metrics(tmp_path: Path) -> None:
    port = free_port()
    server = RegistryProcess(tmp_path / "m.db", extra=["--metrics-port", str(port)]).start()
    try:
        schema = json.dumps({"type": "record", "name": "r", "fields": [{"name": "a", "type": "int"}]})
        for _ in range(3):
            httpx.post(f"{server.url}/subjects/s-value/versions", json={"schema": schema})
        httpx.get(f"{server.url}/subjects/nosuch/versions")
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.stop()
    versions = "/subjects/{subject}/versions"
    assert value(samples, "sal_kafka_registry_requests_total", endpoint=versions, method="POST", status="200") == 3
    assert value(samples, "sal_kafka_registry_requests_total", endpoint=versions, method="GET", status="404") == 1
    assert value(samples, "sal_kafka_registry_request_seconds_count", endpoint=versions) == 4
    endpoints = {labels["endpoint"] for labels, _ in samples["sal_kafka_registry_requests_total"]}
    assert endpoints <= {"/subjects", versions}  # route patterns: a bounded set, not the subjects


def test_the_dashboard_and_the_alerts_name_only_metrics_that_exist(tmp_path: Path) -> None:
    dashboard = pipeline_dashboard()
    json.loads(json.dumps(dashboard))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs and {p["title"] for p in dashboard["panels"]} >= {
        "Messages written / s",
        "Consumer lag (messages) and brokers down",
    }
    rules = alert_rules()["groups"][0]["rules"]
    for expr in exprs + [r["expr"] for r in rules]:
        names = _names_in(expr)
        # the rest are up (Prometheus's own) and the Kafka Connect exporter's, which
        # tests/testing/test_connect.py queries from a real Prometheus
        others = set(re.findall(r"\b(up|kafka_connect_[a-z_]+|debezium_[a-z_]+)\b", expr))
        assert (names or others) and all(_known(n) for n in names), expr
    assert {r["alert"] for r in rules} >= {
        "SalKafkaTargetDown",
        "SalKafkaTargetAbsent",
        "SalKafkaWriterFailures",
        "SalKafkaReaderBrokerDown",
        "SalKafkaConsumerLag",
        "SalKafkaSinkStalled",
        "SalKafkaSinkGone",
        "KafkaConnectTaskNotRunning",
        "DebeziumSourceBehind",
    }
    absent = {r["labels"].get("job") for r in rules if r["alert"] == "SalKafkaTargetAbsent"}
    assert absent == set(DEFAULT_TARGETS)  # every job: a target down 40 minutes did not alert before
    files = write_provisioning(tmp_path)
    assert {f.name for f in files} == {
        "sal-kafka-prometheus.yaml",
        "sal-kafka.yaml",
        "sal-kafka-pipeline.json",
        "kafka-connect.json",
        "prometheus.yml",
        "alerts.yml",
    }
    config = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    assert config == prometheus_config()
    promtool = str(prometheus_binaries().promtool)  # Debian's package, fetched once if not installed
    exprs += [t["expr"] for p in connect_dashboard()["panels"] for t in p["targets"] if "expr" in t]
    for args in (
        ["check", "config", str(tmp_path / "prometheus" / "prometheus.yml")],
        ["check", "rules", str(tmp_path / "prometheus" / "alerts.yml")],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    # the dashboard's PromQL, checked by promtool as recording rules
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"sal_kafka_dashboard_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(recording))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_scrape_never_waits_for_a_reader_s_poll(stack: Stack, kafka_config: KafkaConfig) -> None:
    """Before: the collector called the consumer (``lags()`` -> ``assignment()``), which
    librdkafka serializes behind a running ``poll()``: a reader's endpoint did not answer
    in 20 s. Now lags are noted by the reading thread; a scrape answers in milliseconds."""
    import threading

    metrics = Metrics()
    host, port = serve_metrics(0, metrics)
    url = f"http://{host}:{port}/metrics"
    with Session(kafka_config, metrics=metrics) as session:
        mirror = ComponentInfo.load("KMirror", BUNDLED, kafka_config.topic_subname)
        with Writer(mirror, "tel_inclinometer", session=session) as writer:
            for i in range(20):
                writer.write(inclinometerAngle=float(i))
        reader = Reader(mirror, ["tel_inclinometer"], session=session, start="beginning")
        while reader.next(0.5) is not None:
            pass
        reader.next(1.5)  # idle: the reading thread notes its lags (every second)
        blocked = threading.Thread(target=reader.next, args=(4.0,))  # an idle poll of 4 s
        blocked.start()
        time.sleep(0.3)
        took = []
        for _ in range(5):
            start = time.monotonic()
            families = scrape(url)
            took.append(time.monotonic() - start)
        blocked.join()
        reader.close()
    assert max(took) < 1.0, took  # not behind the 4 s poll
    assert value(families, "sal_kafka_consumer_lag_messages", component="KMirror", partition="0") == 0


@pytest.mark.broker
async def test_the_pipeline_dashboard_in_a_real_prometheus(stack: Stack, kafka_config: KafkaConfig) -> None:
    """Debian's Prometheus scrapes a process that writes, reads and commands: every query
    of the pipeline dashboard is valid PromQL there, and those of the parts that ran
    (writers, readers, lag, commands, librdkafka) return series."""
    from sal_kafka import BaseCsc, Remote
    from sal_kafka.testing._prometheus import PrometheusServer

    metrics = Metrics()
    host, port = serve_metrics(0, metrics)
    targets = {"sal-kafka-components": [f"{host}:{port}"]}
    config = prometheus_config(targets)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    session = Session(kafka_config, metrics=metrics)  # librdkafka statistics every 5 s
    ktest = ComponentInfo.load("KTest", BUNDLED, kafka_config.topic_subname)
    csc = BaseCsc(ktest, 1, session=session, allow_missing_callbacks=True)
    try:
        await csc.start_task
        async with Remote(ktest, 1, session=session) as remote:
            with PrometheusServer(config, {"alerts.yml": alert_rules(jobs=targets)}) as prometheus:
                deadline = time.monotonic() + 90
                while True:  # commands, each a write, a read and an ack, until the rates have points
                    await remote.cmd_start.set_start(timeout=10)
                    await remote.cmd_standby.set_start(timeout=10)
                    acks = prometheus.query("count_over_time(sal_kafka_command_acks_total[1m]) >= 5")
                    if acks and prometheus.query("sal_kafka_librdkafka_queue_messages"):
                        break
                    assert time.monotonic() < deadline, prometheus.tail()
                    await asyncio.sleep(0.3)
                exprs = [t["expr"] for p in pipeline_dashboard()["panels"] for t in p["targets"]]
                results = {e: prometheus.query(e) for e in exprs}  # a bad query raises here
                ran = ("writer_messages", "reader_messages", "consumer_lag", "command_", "librdkafka", "producer_q")
                empty = [e for e, r in results.items() if not r and any(f"sal_kafka_{k}" in e for k in ran)]
                assert not empty, empty
                groups = prometheus.api("rules")["groups"]
                assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    finally:
        await csc.close()
        session.close()
