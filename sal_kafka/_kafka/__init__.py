"""Reading and writing SAL topics over Kafka, on a session of shared connections."""

from ._config import DEFAULT_BOOTSTRAP_SERVERS, KafkaConfig
from ._reader import POSTPROCESS, AsyncReader, Reader, ReaderStats, Received
from ._sample import sample_record
from ._session import Session, ensure_topics
from ._time import TAI_MINUS_UTC, tai_now, utc_now
from ._transport import KafkaTransport, Transport
from ._writer import MAX_SEQ_NUM, AsyncWriter, LatencyHistogram, Writer, WriterStats, message_key

__all__ = [
    "DEFAULT_BOOTSTRAP_SERVERS",
    "MAX_SEQ_NUM",
    "POSTPROCESS",
    "TAI_MINUS_UTC",
    "AsyncReader",
    "AsyncWriter",
    "KafkaConfig",
    "KafkaTransport",
    "Reader",
    "ReaderStats",
    "Received",
    "Session",
    "Transport",
    "Writer",
    "WriterStats",
    "LatencyHistogram",
    "ensure_topics",
    "message_key",
    "sample_record",
    "tai_now",
    "utc_now",
]
