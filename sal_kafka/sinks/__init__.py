"""Sinks: SAL topics into databases, one table per topic, exactly once (docs/sink.md).

`SinkRunner` is the loop every sink shares (batches, offsets, retry, resume, the
multi-component reader); a back-end implements `Backend`. PostgreSQL and
TimescaleDB are `PostgresSink` (`sal_kafka.sinks.postgres`).
"""

from .._public import set_public_module
from ..errors import SinkError, SinkUnavailableError
from . import postgres
from ._runner import Backend, Batch, SetAside, SinkRunner, SinkStats
from .postgres import *  # noqa: F403 - the PostgreSQL back-end's names, as its package lists them

__all__ = [
    "SinkRunner",
    "Backend",
    "Batch",
    "SetAside",
    "SinkStats",
    "SinkError",
    "SinkUnavailableError",
    *postgres.__all__,
]

set_public_module(__name__, globals(), __all__)
