"""The PostgreSQL (and TimescaleDB) back-end of the sinks; Grafana dashboards over its tables."""

from ._grafana import component_dashboard, postgres_datasource, write_component_dashboards
from ._sink import OFFSETS_TABLE, SET_ASIDE_TABLE, AsyncPostgresSink, PostgresBackend, PostgresSink
from ._tables import Column, Table, avro_sql_type, identifier, schema_of, sql_type, table_of

__all__ = [
    "PostgresSink",
    "AsyncPostgresSink",
    "PostgresBackend",
    "OFFSETS_TABLE",
    "SET_ASIDE_TABLE",
    "Table",
    "Column",
    "table_of",
    "identifier",
    "schema_of",
    "sql_type",
    "avro_sql_type",
    "component_dashboard",
    "postgres_datasource",
    "write_component_dashboards",
]
