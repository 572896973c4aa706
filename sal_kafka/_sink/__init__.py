"""Sinks: SAL topics into databases; Grafana dashboards over their tables."""

from ._grafana import component_dashboard, postgres_datasource, write_component_dashboards
from ._postgres import OFFSETS_TABLE, AsyncPostgresSink, PostgresSink, SinkError, SinkStats
from ._tables import Column, Table, identifier, table_of

__all__ = [
    "PostgresSink",
    "AsyncPostgresSink",
    "SinkError",
    "SinkStats",
    "OFFSETS_TABLE",
    "Table",
    "Column",
    "table_of",
    "identifier",
    "component_dashboard",
    "postgres_datasource",
    "write_component_dashboards",
]
