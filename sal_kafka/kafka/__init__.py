"""Reading and writing SAL topics over Kafka, on a session of shared connections."""

from .._public import set_public_module
from ._async_reader import AsyncReader
from ._config import DEFAULT_BOOTSTRAP_SERVERS, KafkaConfig
from ._history import StartPosition
from ._reader import Reader, ReaderStats, Received
from ._session import Session, ensure_topics, topic_settings
from ._writer import AsyncWriter, Writer, WriterStats
from .transports import KafkaTransport, Transport

__all__ = [
    "Session",
    "KafkaConfig",
    "DEFAULT_BOOTSTRAP_SERVERS",
    "Writer",
    "AsyncWriter",
    "WriterStats",
    "Reader",
    "AsyncReader",
    "ReaderStats",
    "Received",
    "StartPosition",
    "ensure_topics",
    "topic_settings",
    "Transport",
    "KafkaTransport",
]

set_public_module(__name__, globals(), [n for n in __all__ if n not in ("DEFAULT_BOOTSTRAP_SERVERS", "StartPosition")])
