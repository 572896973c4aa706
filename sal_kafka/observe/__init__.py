"""Prometheus metrics, Grafana dashboards and Prometheus alerts for sal-kafka's parts.

``Session(metrics=Metrics())`` exposes that session's writers, readers and
components; `serve_metrics` serves ``/metrics``; every command takes
``--metrics-port``. `METRIC_NAMES` lists every metric with its type, help
and labels (docs/observe.md has the table).
"""

from .._public import moved_names, set_public_module
from .._stats import LatencyHistogram
from ._grafana import (
    alert_rules,
    connect_dashboard,
    pipeline_dashboard,
    prometheus_config,
    prometheus_datasource,
    write_provisioning,
)
from ._metrics import BUCKETS, METRIC_NAMES, Metrics, serve_metrics

__all__ = [
    "Metrics",
    "serve_metrics",
    "METRIC_NAMES",
    "BUCKETS",
    "LatencyHistogram",
    "pipeline_dashboard",
    "connect_dashboard",
    "prometheus_datasource",
    "prometheus_config",
    "alert_rules",
    "write_provisioning",
]

# the dashboards of components query the sink's tables: they are the sink's
__getattr__ = moved_names(
    __name__,
    {n: "sal_kafka.sinks" for n in ("component_dashboard", "postgres_datasource", "write_component_dashboards")},
)

set_public_module(
    __name__,
    globals(),
    [
        "Metrics",
        "serve_metrics",
        "pipeline_dashboard",
        "connect_dashboard",
        "prometheus_datasource",
        "prometheus_config",
        "alert_rules",
        "write_provisioning",
    ],
)
