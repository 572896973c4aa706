"""What travels on the wire: Confluent framing, message keys, sequence numbers, clocks."""

from ._public import set_public_module
from .codec._framing import HEADER_SIZE, MAGIC, frame, schema_id_of, unframe
from .codec._keys import MAX_SEQ_NUM, message_key
from .codec._time import TAI_MINUS_UTC, tai_now, utc_now

__all__ = [
    "MAGIC",
    "HEADER_SIZE",
    "frame",
    "unframe",
    "schema_id_of",
    "message_key",
    "MAX_SEQ_NUM",
    "TAI_MINUS_UTC",
    "tai_now",
    "utc_now",
]

set_public_module(__name__, globals(), __all__)
