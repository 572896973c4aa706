"""Helpers that generated encoders and decoders call.

Avro binary encoding, as the specification gives it: zig-zag varints for
int and long, little-endian IEEE 754 for float and double, one byte 0/1 for
boolean, length-prefixed UTF-8 for string, arrays as blocks (count, items)
ended by a zero count, unions as a branch index then the value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "write_long",
    "write_string",
    "write_fixed_array",
    "write_long_array",
    "write_bool_array",
    "read_long",
    "read_string",
    "read_array",
    "continue_array",
    "fixed_reader",
    "long_reader",
    "bool_reader",
    "string_reader",
    "CorruptDataError",
]

# Encoded zig-zag varints of 0..127 after zig-zag, i.e. of the ints -64..63.
_ONE_BYTE = [bytes((i,)) for i in range(128)]


class CorruptDataError(ValueError):
    """Raised by the readers for bytes that are not valid Avro."""


def write_long(n: int) -> bytes:
    """Zig-zag varint of an Avro int or long."""
    z = (n << 1) ^ (n >> 63)
    if 0 <= z < 128:
        return _ONE_BYTE[z]
    if z < 0 or z >= 1 << 64:
        raise OverflowError(f"{n} does not fit in a 64-bit Avro long")
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def write_string(s: str) -> bytes:
    """Length-prefixed UTF-8."""
    b = s.encode()
    n = len(b)
    return (_ONE_BYTE[n << 1] if n < 64 else write_long(n)) + b


def _is_ndarray(a: Any) -> bool:
    return hasattr(a, "dtype") and hasattr(a, "tobytes")


def write_fixed_array(a: Any, code: str) -> bytes:
    """An array of float (``code`` ``f``) or double (``d``) of any length.

    numpy arrays of the matching little-endian dtype are written from their
    buffer, without a detour through Python floats.
    """
    if _is_ndarray(a):
        n = len(a)
        if not n:
            return b"\x00"
        dtype = "<f4" if code == "f" else "<f8"
        if a.dtype.str == dtype and a.ndim == 1 and a.flags.c_contiguous:
            return write_long(n) + bytes(a.tobytes()) + b"\x00"
        if a.dtype.kind not in "fiu":
            raise TypeError(f"expected a numeric array, got dtype {a.dtype}")
        return write_long(n) + bytes(a.astype(dtype).tobytes()) + b"\x00"
    n = len(a)
    if not n:
        return b"\x00"
    return write_long(n) + struct.pack(f"<{n}{code}", *a) + b"\x00"


def _write_items(a: Any, items: Callable[[Sequence[Any]], bytes]) -> bytes:
    """One block of ``len(a)`` items written by ``items``, then the end marker."""
    if _is_ndarray(a):
        a = a.tolist()
    n = len(a)
    if not n:
        return b"\x00"
    return write_long(n) + items(a) + b"\x00"


def write_long_array(a: Any) -> bytes:
    """An array of int or long."""
    return _write_items(a, lambda items: b"".join(map(write_long, items)))


def write_bool_array(a: Any) -> bytes:
    """An array of boolean."""
    return _write_items(a, lambda items: bytes(map(bool, items)))


def fixed_array_writer(count: int, code: str) -> Callable[[Any], bytes]:
    """Writer of a float/double array field of ``count`` items: one struct call
    when a list or tuple has exactly ``count`` items, the general path otherwise."""
    pack = struct.Struct(f"<{count}{code}").pack
    prefix = write_long(count)

    def write(a: Any) -> bytes:
        if (type(a) is list or type(a) is tuple) and len(a) == count:
            return prefix + pack(*a) + b"\x00"
        _check_count(a, count)
        return write_fixed_array(a, code)

    return write


def _check_count(a: Any, count: int) -> None:
    """A SAL array has exactly Count items, whatever the validation mode."""
    if len(a) != count:
        raise CorruptDataError(f"Expected {count} items, got {len(a)}")


# Encoded varints of zig-zag values below 2**14 (ints -8192..8191): one
# table lookup per array item instead of a function call.
_TWO_BYTES = [bytes((z,)) if z < 128 else bytes(((z & 0x7F) | 0x80, z >> 7)) for z in range(1 << 14)]


def long_array_writer(count: int, lo: int = -(2**63), hi: int = 2**63 - 1) -> Callable[[Any], bytes]:
    """Writer of an int/long array field of ``count`` items in ``lo..hi`` (the Avro
    type's range): table lookups for items in -8192..8191, the general path
    (which checks the range) for anything else."""
    prefix = write_long(count)
    table = _TWO_BYTES

    def write(a: Any) -> bytes:
        if type(a) is list and len(a) == count:
            try:
                return prefix + b"".join([table[(v << 1) ^ (v >> 63)] for v in a]) + b"\x00"
            except IndexError:
                pass  # a value outside -8192..8191: the general path
        _check_count(a, count)
        items = a.tolist() if _is_ndarray(a) else a
        for v in items:
            if not lo <= v <= hi:
                raise OverflowError(f"{v} is outside the Avro type's range [{lo}, {hi}]")
        return write_long_array(items)

    return write


def bool_array_writer(count: int) -> Callable[[Any], bytes]:
    prefix = write_long(count)

    def write(a: Any) -> bytes:
        if type(a) is list and len(a) == count:
            return prefix + bytes(map(bool, a)) + b"\x00"
        _check_count(a, count)
        return write_bool_array(a)

    return write


def exact_array_checker(count: int, code: str) -> Callable[..., bytes]:
    """``struct`` packer that accepts exactly ``count`` items of ``code``: a
    C-speed check of length, type and range (``strict`` validation)."""
    return struct.Struct(f"<{count}{code}").pack


# ----------------------------------------------------------------------------- readers


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """Read a zig-zag varint at ``pos``; return ``(value, next pos)``."""
    b = data[pos]
    pos += 1
    z = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise CorruptDataError("varint longer than 10 bytes")
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        shift += 7
    return (z >> 1) ^ -(z & 1), pos


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = read_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise CorruptDataError(f"string of {n} bytes runs past the end")
    return data[pos:end].decode(), end


Reader = Callable[[bytes, int, int, list[Any]], int]


def fixed_reader(code: str) -> Reader:
    size = struct.calcsize(code)

    def read(data: bytes, pos: int, n: int, out: list[Any]) -> int:
        out.extend(struct.unpack_from(f"<{n}{code}", data, pos))
        return pos + n * size

    return read


def long_reader(data: bytes, pos: int, n: int, out: list[Any]) -> int:
    append = out.append
    for _ in range(n):
        b = data[pos]
        if b < 128:  # one- and two-byte varints are read inline
            append((b >> 1) ^ -(b & 1))
            pos += 1
        elif data[pos + 1] < 128:
            z = (b & 0x7F) | (data[pos + 1] << 7)
            append((z >> 1) ^ -(z & 1))
            pos += 2
        else:
            value, pos = read_long(data, pos)
            append(value)
    return pos


def bool_reader(data: bytes, pos: int, n: int, out: list[Any]) -> int:
    end = pos + n
    if end > len(data):
        raise CorruptDataError("array of boolean runs past the end")
    for b in data[pos:end]:
        if b > 1:
            raise CorruptDataError(f"boolean byte {b:#04x} is neither 0 nor 1")
        out.append(b == 1)
    return end


def string_reader(data: bytes, pos: int, n: int, out: list[Any]) -> int:
    for _ in range(n):
        value, pos = read_string(data, pos)
        out.append(value)
    return pos


def read_array(data: bytes, pos: int, n: int, read: Reader, out: list[Any] | None = None) -> tuple[list[Any], int]:
    """Read array blocks; the first block's count ``n`` was already read."""
    items: list[Any] = [] if out is None else out
    while n:
        if n < 0:  # a negative count is followed by the block's size in bytes
            n = -n
            _size, pos = read_long(data, pos)
        pos = read(data, pos, n, items)
        n, pos = read_long(data, pos)
    return items, pos


def continue_array(data: bytes, pos: int, items: list[Any], read: Reader) -> tuple[list[Any], int]:
    """Read the blocks after a first block already consumed by the fast path."""
    n, pos = read_long(data, pos)
    return read_array(data, pos, n, read, items)


def check_bool_array(a: Any, count: int) -> bool:
    """``strict``: exactly ``count`` items, each a bool (or a numpy bool array)."""
    if _is_ndarray(a):
        return len(a) == count and a.dtype.kind == "b"
    return len(a) == count and all(x is True or x is False for x in a)
