"""Avro codecs of topics, pure: the compiled codec (fastavro's as the reference engine), the
validation modes, the Confluent wire format's framing, and ts_salobj's keys and sequence numbers."""

from .._public import set_public_module
from ._codec import Codec
from ._compiled import NATIVE
from ._framing import HEADER_SIZE, MAGIC, frame, schema_id_of, unframe
from ._keys import MAX_SEQ_NUM, message_key
from ._validation import MODES, check_mode, explain

__all__ = [
    "Codec",
    "NATIVE",
    "explain",
    "check_mode",
    "MODES",
    "frame",
    "unframe",
    "schema_id_of",
    "HEADER_SIZE",
    "MAGIC",
    "message_key",
    "MAX_SEQ_NUM",
]

# framing and keys keep reporting sal_kafka.wire, where users import them
set_public_module(__name__, globals(), ["Codec", "explain", "check_mode"])
