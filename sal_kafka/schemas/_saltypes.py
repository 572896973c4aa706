"""The one table of SAL types: everything the library knows about each.

Every other mapping (SAL -> Avro, Python, range, zero, numpy dtype, struct
code) is derived from `SAL_TYPE_TABLE` here, so that a new column (or a new
consumer of one) never means a new table elsewhere; a sink derives its own
column types from these (``sal_kafka.sinks``: PostgreSQL's from the range and
width). Pure data: this module imports nothing of the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

__all__ = [
    "SalType",
    "SAL_TYPE_TABLE",
    "SAL_TYPES",
    "INT_RANGES",
    "AVRO_TYPES",
    "AVRO_RANGES",
    "SAL_TYPE_OF_AVRO",
    "sal_type",
]


class SalType(msgspec.Struct, frozen=True, kw_only=True):
    """What one SAL (IDL) type is in every representation the library uses.

    Attributes
    ----------
    idl : str
        The ``IDL_Type`` name in ts_xml, e.g. ``unsigned int``.
    avro : str
        The Avro primitive of ts_xml v28's mapping.
    python : type
        The Python scalar type (`bool`, `int`, `float`, `str`).
    range : tuple of (int, int) or None
        Inclusive value range of an integer type.
    zero : Any
        The default value (``0``, ``0.0``, ``False``, ``""``).
    numpy : str or None
        numpy dtype of arrays decoded with ``arrays="numpy"`` (little-endian);
        None for strings.
    struct : str or None
        `struct` code: for float, double and boolean the Avro encoding itself;
        for integers the code whose packing checks the exact range.
    avro_canonical : bool
        The SAL type a bare Avro primitive of that name maps back to
        (camera ``.avsc`` topics give Avro types, not IDL ones).
    """

    idl: str
    avro: str
    python: type
    range: tuple[int, int] | None = None
    zero: Any
    numpy: str | None
    struct: str | None
    avro_canonical: bool = False

    @property
    def fixed_width(self) -> bool:
        """True when Avro encodes it in a fixed number of bytes (float, double, boolean)."""
        return self.avro in ("float", "double", "boolean")

    @property
    def is_int(self) -> bool:
        return self.range is not None


def _int(idl: str, avro: str, lo: int, hi: int, numpy: str, code: str, canonical: bool = False) -> SalType:
    return SalType(
        idl=idl,
        avro=avro,
        python=int,
        range=(lo, hi),
        zero=0,
        numpy=numpy,
        struct=code,
        avro_canonical=canonical,
    )


#: Every SAL type, in the order ts_xml documents them.
SAL_TYPE_TABLE: Final[tuple[SalType, ...]] = (
    SalType(
        idl="boolean",
        avro="boolean",
        python=bool,
        zero=False,
        numpy="?",
        struct="?",
        avro_canonical=True,
    ),
    _int("byte", "int", 0, 255, "u1", "B"),
    _int("short", "int", -(2**15), 2**15 - 1, "<i2", "h"),
    _int("int", "int", -(2**31), 2**31 - 1, "<i4", "i", canonical=True),
    _int("long", "int", -(2**31), 2**31 - 1, "<i4", "i"),
    _int("long long", "long", -(2**63), 2**63 - 1, "<i8", "q", canonical=True),
    _int("unsigned short", "int", 0, 2**16 - 1, "<u2", "H"),
    _int("unsigned int", "long", 0, 2**32 - 1, "<u4", "I"),
    SalType(idl="float", avro="float", python=float, zero=0.0, numpy="<f4", struct="f", avro_canonical=True),
    SalType(
        idl="double",
        avro="double",
        python=float,
        zero=0.0,
        numpy="<f8",
        struct="d",
        avro_canonical=True,
    ),
    SalType(idl="string", avro="string", python=str, zero="", numpy=None, struct=None, avro_canonical=True),
)

_BY_IDL: Final[Mapping[str, SalType]] = MappingProxyType({t.idl: t for t in SAL_TYPE_TABLE})

#: SAL type name -> Python scalar type.
SAL_TYPES: Final[Mapping[str, type]] = MappingProxyType({t.idl: t.python for t in SAL_TYPE_TABLE})
#: Inclusive value range of each SAL integer type.
INT_RANGES: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {t.idl: t.range for t in SAL_TYPE_TABLE if t.range is not None}
)
#: SAL type -> Avro type (ts_xml v28).
AVRO_TYPES: Final[Mapping[str, str]] = MappingProxyType({t.idl: t.avro for t in SAL_TYPE_TABLE})
#: Avro primitive -> the SAL type it maps back to (camera ``.avsc`` topics).
SAL_TYPE_OF_AVRO: Final[Mapping[str, str]] = MappingProxyType(
    {t.avro: t.idl for t in SAL_TYPE_TABLE if t.avro_canonical}
)
#: Value range of Avro's own integer types: what any encoder must refuse beyond.
AVRO_RANGES: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {t.avro: t.range for t in SAL_TYPE_TABLE if t.avro_canonical and t.range is not None}
)


def sal_type(idl: str) -> SalType:
    """The `SalType` of an ``IDL_Type`` name.

    Raises
    ------
    KeyError
        For a name that is not a SAL type.
    """
    return _BY_IDL[idl]
