"""The uids of the Grafana datasources the generated files provision: one place, so that
the dashboards of `sal_kafka.observe` and `sal_kafka.sinks` name the same ones without
either importing the other's optional dependencies (prometheus-client, psycopg)."""

from __future__ import annotations

from typing import Final

#: the Prometheus that scrapes sal-kafka's parts
PROMETHEUS_UID: Final = "sal-kafka-prometheus"
#: the sink's PostgreSQL (where Debezium reads, too)
POSTGRES_UID: Final = "sal-kafka-postgres"
