"""The Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body."""

from __future__ import annotations

import struct

from ..errors import WireFormatError

__all__ = ["MAGIC", "HEADER_SIZE", "frame", "unframe", "schema_id_of"]

MAGIC = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the magic byte and the schema id.

    Raises
    ------
    WireFormatError
        If ``schema_id`` does not fit in 32 unsigned bits.
    """
    try:
        return _HEADER.pack(MAGIC, schema_id) + body
    except struct.error:
        raise WireFormatError(f"schema id {schema_id!r} is not a 32-bit unsigned integer") from None


def schema_id_of(data: bytes) -> int:
    """The schema id of a framed message.

    Raises
    ------
    WireFormatError
        If the message is shorter than 5 bytes or its magic byte is not 0.
    """
    if len(data) < HEADER_SIZE:
        raise WireFormatError(
            f"message too short for the Confluent wire format: {len(data)} bytes, expected at least {HEADER_SIZE}"
        )
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"wrong magic byte {data[0]:#04x}, expected 0x00 (Confluent wire format)")
    result: int = schema_id
    return result


def unframe(data: bytes) -> tuple[int, bytes]:
    """Split a framed message into ``(schema id, Avro body)``."""
    schema_id = schema_id_of(data)
    return schema_id, bytes(data[HEADER_SIZE:])
