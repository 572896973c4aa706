"""PostgreSQL binary arrays straight from numpy arrays (the sink's ``COPY``).

psycopg dumps a Python list of floats element by element; a SAL array read
as a numpy array (``Reader(arrays="numpy")``) is written here with a few
numpy operations: the binary array header, then each element's length and
big-endian value. About 5x faster on an 812-float row (measured: 19 against
92 µs a row).
"""

from __future__ import annotations

import struct
from typing import Any, Final

try:
    import numpy
    from psycopg import pq
    from psycopg.adapt import AdaptersMap, Dumper
except ImportError as exc:  # an extra: say which
    from ..._util import missing

    raise missing("psycopg", "sink", "the PostgreSQL sink (sal_kafka.sinks)") from exc

__all__ = ["register_array_dumpers"]

_HEADER: Final = struct.Struct(">iiIii")  # ndim, has nulls, element oid, length, lower bound

#: PostgreSQL array type -> (array oid, element oid, big-endian numpy dtype of an element)
_ARRAYS: Final = {
    "bool[]": (1000, 16, "?"),
    "int2[]": (1005, 21, ">i2"),
    "int4[]": (1007, 23, ">i4"),
    "int8[]": (1016, 20, ">i8"),
    "float4[]": (1021, 700, ">f4"),
    "float8[]": (1022, 701, ">f8"),
}


def _dumper(array_oid: int, element_oid: int, dtype: str) -> type[Dumper]:
    size = numpy.dtype(dtype).itemsize
    record = numpy.dtype([("length", ">i4"), ("value", dtype)])

    class ArrayDumper(Dumper):
        format = pq.Format.BINARY
        oid = array_oid

        def dump(self, obj: Any) -> bytes:
            values = numpy.asarray(obj)
            body = numpy.empty(len(values), dtype=record)
            body["length"] = size
            body["value"] = values
            return _HEADER.pack(1, 0, element_oid, len(values), 1) + body.tobytes()

    ArrayDumper.__name__ = f"NumpyArrayDumper{array_oid}"
    return ArrayDumper


def register_array_dumpers(adapters: AdaptersMap) -> None:
    """Dump the SAL array types from numpy arrays (or lists) in binary ``COPY``."""
    for array_oid, element_oid, dtype in _ARRAYS.values():
        adapters.register_dumper(None, _dumper(array_oid, element_oid, dtype))
