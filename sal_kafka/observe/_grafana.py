"""Grafana provisioning and a Prometheus configuration for sal-kafka's metrics.

`pipeline_dashboard` is the "sal-kafka pipeline" dashboard (Grafana's JSON
model: panels of PromQL on the metrics of `sal_kafka.observe`);
`prometheus_config` and `alert_rules` are the Prometheus side: scrape jobs
for the ``--metrics-port`` of each command, and the alerts an operator wants.
`write_provisioning` writes them all where Grafana and Prometheus read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from .._grafana_uids import POSTGRES_UID, PROMETHEUS_UID
from .._util import write_files

__all__ = [
    "pipeline_dashboard",
    "connect_dashboard",
    "prometheus_datasource",
    "prometheus_config",
    "alert_rules",
    "write_provisioning",
    "DEFAULT_TARGETS",
]

#: scrape job -> targets: the ``--metrics-port`` each command is given in the docs' example
DEFAULT_TARGETS: Final[dict[str, list[str]]] = {
    "sal-kafka-write": ["127.0.0.1:9101"],
    "sal-kafka-read": ["127.0.0.1:9102"],
    "sal-kafka-sink": ["127.0.0.1:9103"],
    "sal-kafka-registry": ["127.0.0.1:9104"],
    "sal-kafka-components": ["127.0.0.1:9105"],
    "kafka-connect": ["127.0.0.1:9106"],
}
#: bytes of WAL each logical replication slot has not confirmed yet: a CDC source's lag
REPLICATION_SLOT_LAG_SQL: Final = (
    "SELECT now() AS time, slot_name AS metric, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag_bytes "
    "FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name"
)


def _panel(
    title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int, kind: str = "timeseries"
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": {"uid": PROMETHEUS_UID}}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _quantiles(metric: str, by: str) -> list[tuple[str, str]]:
    return [
        (f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[5m])))", f"p{int(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.99)
    ]


def pipeline_dashboard() -> dict[str, Any]:
    """The "sal-kafka pipeline" dashboard: rates, latencies, failures, lag, sink, registry."""
    rows: list[tuple[str, list[tuple[str, str]], str]] = [
        (
            "Messages written / s",
            [("sum by (component, topic) (rate(sal_kafka_writer_messages_total[1m]))", "{{component}}.{{topic}}")],
            "ops",
        ),
        (
            "Messages read / s",
            [("sum by (component, topic) (rate(sal_kafka_reader_messages_total[1m]))", "{{component}}.{{topic}}")],
            "ops",
        ),
        ("Ack latency (write to broker ack)", _quantiles("sal_kafka_writer_ack_latency_seconds", "topic"), "s"),
        ("Read latency (rcvStamp - sndStamp)", _quantiles("sal_kafka_reader_latency_seconds", "topic"), "s"),
        (
            "Failed and undecodable messages / s",
            [
                ("sum by (topic) (rate(sal_kafka_writer_failed_total[5m]))", "failed {{topic}}"),
                ("sum by (topic) (rate(sal_kafka_writer_unknown_total[5m]))", "timed out, outcome unknown {{topic}}"),
                ("sum by (topic) (rate(sal_kafka_reader_undecodable_total[5m]))", "undecodable {{topic}}"),
            ],
            "ops",
        ),
        (
            "Consumer lag (messages) and brokers down",
            [
                ("max by (component, kafka_topic) (sal_kafka_consumer_lag_messages)", "{{component}} {{kafka_topic}}"),
                ("max by (component) (sal_kafka_reader_broker_down)", "broker down ({{component}})"),
            ],
            "short",
        ),
        (
            "Sink: rows / s and lag behind Kafka",
            [
                ("sum by (instance, table) (rate(sal_kafka_sink_rows_total[1m]))", "rows/s {{instance}} {{table}}"),
                ("max by (instance, kafka_topic) (sal_kafka_sink_lag_seconds)", "lag (s) {{instance}} {{kafka_topic}}"),
                ("sum by (instance) (sal_kafka_sink_lag_messages)", "messages behind {{instance}}"),
            ],
            "short",
        ),
        (
            "Registry requests / s",
            [
                (
                    "sum by (endpoint, status) (rate(sal_kafka_registry_requests_total[1m]))",
                    "{{endpoint}} {{status}}",
                )
            ],
            "reqps",
        ),
        (
            "Command acknowledgements / s",
            [("sum by (component, ack) (rate(sal_kafka_command_acks_total[1m]))", "{{component}} {{ack}}")],
            "ops",
        ),
        ("Command round trip", _quantiles("sal_kafka_command_round_trip_seconds", "command"), "s"),
        (
            "librdkafka: broker round trip and queues",
            [
                (
                    'max by (instance, client, broker) (sal_kafka_librdkafka_broker_rtt_seconds{stat="p99"})',
                    "rtt p99 {{instance}} {{client}} {{broker}}",
                ),
                ("sum by (instance, client) (sal_kafka_librdkafka_queue_messages)", "queued {{instance}} {{client}}"),
                (
                    "sum by (instance, client) (sal_kafka_producer_queue_messages)",
                    "producer queue {{instance}} {{client}}",
                ),
            ],
            "short",
        ),
    ]
    panels = [_panel(title, exprs, unit, 12 * (i % 2), 8 * (i // 2)) for i, (title, exprs, unit) in enumerate(rows)]
    for i, panel in enumerate(panels):
        panel["id"] = i + 1
    return {
        "uid": "sal-kafka-pipeline",
        "title": "sal-kafka pipeline",
        "tags": ["sal-kafka"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def prometheus_datasource(url: str = "http://127.0.0.1:9090") -> dict[str, Any]:
    """Grafana datasource provisioning of the Prometheus that scrapes sal-kafka."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "sal-kafka Prometheus",
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": url,
                "isDefault": False,
                "jsonData": {"timeInterval": "10s"},
            }
        ],
    }


def prometheus_config(targets: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """A Prometheus configuration: a scrape job per command, the alert rules file."""
    jobs = targets if targets is not None else DEFAULT_TARGETS
    return {
        "global": {"scrape_interval": "10s", "evaluation_interval": "10s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": list(hosts)}]}
            for job, hosts in jobs.items()
        ],
    }


def alert_rules(
    lag_threshold: int = 10_000,
    sink_lag_seconds: float = 60.0,
    jobs: Mapping[str, list[str]] | None = None,
    source_lag_seconds: float = 60.0,
) -> dict[str, Any]:
    """Alerting rules: every scrape target down or gone (``jobs``: the scrape jobs of
    `prometheus_config`), writer failures, a reader's brokers down, lag over a
    threshold, a sink behind Kafka (per instance and topic), Kafka Connect
    connectors and tasks not running, a Debezium source behind its database."""
    names = list(jobs if jobs is not None else DEFAULT_TARGETS)
    rules = [
        _rule(
            "SalKafkaTargetDown",
            f'up{{job=~"{"|".join(names)}"}} == 0',
            "critical",
            "{{ $labels.job }} at {{ $labels.instance }} does not answer its scrapes",
            "2m",
        ),
        *(
            _rule(
                "SalKafkaTargetAbsent",
                f'absent(up{{job="{job}"}})',
                "warning",
                f"no target of the scrape job {job} is known to Prometheus",
                "5m",
                job=job,
            )
            for job in names
        ),
        _rule(
            "SalKafkaWriterFailures",
            "sum by (component, topic) (increase(sal_kafka_writer_failed_total[5m])) > 0",
            "warning",
            "{{ $labels.component }}.{{ $labels.topic }}: messages not delivered",
        ),
        _rule(
            "SalKafkaReaderBrokerDown",
            "max by (component) (sal_kafka_reader_broker_down) == 1",
            "critical",
            "{{ $labels.component }}: a reader's Kafka brokers are all down",
            "1m",
        ),
        _rule(
            "SalKafkaConsumerLag",
            f"max by (component, kafka_topic) (sal_kafka_consumer_lag_messages) > {lag_threshold}",
            "warning",
            "{{ $labels.kafka_topic }}: readers are over " + f"{lag_threshold} messages behind",
            "5m",
        ),
        _rule(
            "SalKafkaUndecodable",
            "sum by (component, topic) (increase(sal_kafka_reader_undecodable_total[5m])) > 0",
            "warning",
            "{{ $labels.component }}.{{ $labels.topic }}: undecodable messages",
        ),
        _rule(
            "SalKafkaSinkStalled",
            f"max by (instance, kafka_topic) (sal_kafka_sink_lag_seconds) > {sink_lag_seconds:g}",
            "critical",
            "{{ $labels.instance }}: the sink is over "
            + f"{sink_lag_seconds:g}"
            + " s behind Kafka on {{ $labels.kafka_topic }}",
            "5m",
        ),
        # a sink that died takes its lag series with it: its target is then down (above)
        _rule(
            "SalKafkaSinkGone",
            'absent(sal_kafka_sink_batches_total{job="sal-kafka-sink"})',
            "critical",
            "no sink reports its batches: is it running?",
            "5m",
        ),
        _rule(
            "KafkaConnectTaskNotRunning",
            'max by (instance, connector, task, status) (kafka_connect_task_status{status!="running"}) == 1',
            "critical",
            "{{ $labels.connector }} task {{ $labels.task }} is {{ $labels.status }}",
            "2m",
        ),
        _rule(
            "KafkaConnectConnectorNotRunning",
            'max by (instance, connector, status) (kafka_connect_connector_status{status!="running"}) == 1',
            "critical",
            "the connector {{ $labels.connector }} is {{ $labels.status }}",
            "2m",
        ),
        _rule(
            "DebeziumSourceBehind",
            "max by (instance, server) (debezium_streaming_millisecondsbehindsource) > "
            + f"{source_lag_seconds * 1000:g}",
            "warning",
            "{{ $labels.server }}: change events over " + f"{source_lag_seconds:g}" + " s behind the database",
            "5m",
        ),
        _rule(
            "DebeziumSourceDisconnected",
            "max by (instance, server) (debezium_streaming_connected) == 0",
            "critical",
            "{{ $labels.server }}: Debezium is not connected to its database",
            "2m",
        ),
    ]
    return {"groups": [{"name": "sal-kafka", "rules": rules}]}


def _rule(alert: str, expr: str, severity: str, summary: str, for_: str | None = None, **labels: str) -> dict[str, Any]:
    """One Prometheus alerting rule (``for_``: how long it must hold before it fires)."""
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **labels}
    rule["annotations"] = {"summary": summary}
    return rule


def connect_dashboard() -> dict[str, Any]:
    """The "Kafka Connect" dashboard: connector and task status, records polled and
    written per second, Debezium's lag behind its database and its queue, from the
    Prometheus JMX exporter of the worker (`sal_kafka.testing.KafkaConnect`)."""
    rows: list[tuple[str, list[tuple[str, str]], str]] = [
        (
            "Connectors and tasks running",
            [
                ('max by (connector) (kafka_connect_connector_status{status="running"})', "{{connector}}"),
                (
                    'max by (connector, task) (kafka_connect_task_status{status="running"})',
                    "{{connector}} task {{task}}",
                ),
            ],
            "short",
        ),
        (
            "Source records polled and written / s",
            [
                ("sum by (connector) (kafka_connect_source_task_source_record_poll_rate)", "polled {{connector}}"),
                ("sum by (connector) (kafka_connect_source_task_source_record_write_rate)", "written {{connector}}"),
            ],
            "short",
        ),
        (
            "Change events / s (Debezium)",
            [("sum by (server) (rate(debezium_streaming_totalnumberofeventsseen[1m]))", "{{server}}")],
            "short",
        ),
        (
            "Source lag behind the database (Debezium)",
            [("max by (server) (debezium_streaming_millisecondsbehindsource)", "{{server}}")],
            "ms",
        ),
        (
            "Debezium queue: remaining capacity",
            [("min by (server) (debezium_streaming_queueremainingcapacity)", "{{server}}")],
            "short",
        ),
        (
            "Task errors and retries",
            [
                (
                    "sum by (connector) (kafka_connect_task_offset_commit_failure_percentage)",
                    "commit failures % {{connector}}",
                ),
                ("sum by (server) (debezium_streaming_numberoferroneousevents)", "erroneous events {{server}}"),
            ],
            "short",
        ),
    ]
    panels = [_panel(title, exprs, unit, (i % 2) * 12, (i // 2) * 8) for i, (title, exprs, unit) in enumerate(rows)]
    # the source's lag as the database sees it: WAL not yet confirmed by each replication slot
    panels.append(
        {
            "type": "timeseries",
            "title": "Replication slot lag (PostgreSQL)",
            "datasource": {"type": "grafana-postgresql-datasource", "uid": POSTGRES_UID},
            "gridPos": {"h": 8, "w": 12, "x": (len(rows) % 2) * 12, "y": (len(rows) // 2) * 8},
            "fieldConfig": {"defaults": {"unit": "bytes"}, "overrides": []},
            "targets": [
                {
                    "refId": "A",
                    "datasource": {"uid": POSTGRES_UID},
                    "editorMode": "code",
                    "format": "time_series",
                    "rawQuery": True,
                    "rawSql": REPLICATION_SLOT_LAG_SQL,
                }
            ],
        }
    )
    return {
        "uid": "sal-kafka-connect",
        "title": "Kafka Connect",
        "tags": ["sal-kafka", "kafka-connect", "debezium"],
        "schemaVersion": 39,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def write_provisioning(out: str | Path, prometheus_url: str = "http://127.0.0.1:9090") -> list[Path]:
    """Write Grafana's provisioning (datasource, dashboard provider, dashboard) and
    Prometheus's configuration and rules under ``out``; return the files written."""
    root = Path(out)
    files = {
        root / "grafana" / "datasources" / "sal-kafka-prometheus.yaml": yaml.safe_dump(
            prometheus_datasource(prometheus_url), sort_keys=False
        ),
        root / "grafana" / "dashboards" / "sal-kafka.yaml": yaml.safe_dump(
            {
                "apiVersion": 1,
                "providers": [
                    {
                        "name": "sal-kafka",
                        "type": "file",
                        "folder": "sal-kafka",
                        "options": {"path": str((root / "grafana" / "dashboards").resolve())},
                    }
                ],
            },
            sort_keys=False,
        ),
        root / "grafana" / "dashboards" / "sal-kafka-pipeline.json": json.dumps(pipeline_dashboard(), indent=2),
        root / "grafana" / "dashboards" / "kafka-connect.json": json.dumps(connect_dashboard(), indent=2),
        root / "prometheus" / "prometheus.yml": yaml.safe_dump(prometheus_config(), sort_keys=False),
        root / "prometheus" / "alerts.yml": yaml.safe_dump(alert_rules(), sort_keys=False),
    }
    write_files(files)
    return list(files)


# --------------------------------------------------------------------------- dashboards of components (PostgreSQL)
