"""Sinks: SAL topics into databases."""

from ._postgres import OFFSETS_TABLE, PostgresSink, SinkError, SinkStats
from ._tables import Column, Table, identifier, table_of

__all__ = ["PostgresSink", "SinkError", "SinkStats", "OFFSETS_TABLE", "Table", "Column", "table_of", "identifier"]
