"""Sinks: SAL topics into databases."""

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
]
