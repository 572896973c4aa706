"""Validation modes, and messages that point at the exact field and index.

Modes, by name (`MODES`):

``none``
    Trust the caller.
``custom``
    Unknown fields, array lengths, string lengths; types are left to the encoder.
``dataclass`` / ``dataclass_and_decode``
    Build ts_salobj's stdlib dataclass (``DataType(**record)``), which
    rejects unknown fields and wrong array lengths; the second form then
    sends ``vars(instance)``, with defaults filled in.
``msgspec`` / ``msgspec_and_decode``
    ``msgspec.convert`` into the topic's constrained Struct: types, integer
    ranges, array and string lengths, unknown fields, in C; the second form
    sends the converted record.
``attrs`` / ``attrs_and_decode``
    Build the topic's attrs class with its validators; the second form sends
    ``attrs.asdict(instance)``.
``strict``
    Exact types, integer ranges of the SAL type, float32 range (NaN and inf
    allowed), arrays of exactly Count items, strings no longer than
    IDL_Size, no unknown or missing fields. Runs fused with the compiled
    encoder (see `Codec.encode`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Final

from ..errors import ConfigError
from ..options import VALIDATION_MODES, Validation
from ..schemas._model import FieldInfo, TopicInfo
from ..schemas._saltypes import AVRO_RANGES, INT_RANGES

__all__ = ["MODES", "check_mode", "explain", "custom_problem"]

#: The validation modes (`sal_kafka.Validation`).
MODES: Final = VALIDATION_MODES

FLOAT32_MAX: Final = 3.4028234663852886e38
_MISSING: Final = object()


def check_mode(mode: str) -> Validation:
    """Return ``mode`` if it names a validation mode, else raise `ConfigError` listing them."""
    if mode not in MODES:
        raise ConfigError(f"unknown validation mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def _type_name(value: Any) -> str:
    return type(value).__name__


def _scalar_problem(f: FieldInfo, v: Any, path: str, strict: bool) -> str | None:
    kind = f.sal_type
    if f.nullable and v is None:
        return None
    if kind == "boolean":
        if strict and type(v) is not bool and not _is_numpy_bool(v):
            return f"Expected bool, got {_type_name(v)} - at {path}"
        return None
    if kind == "string":
        if type(v) is not str:
            return f"Expected str, got {_type_name(v)} - at {path}"
        if strict and f.max_length is not None and len(v) > f.max_length:
            return f"Expected str of at most {f.max_length} characters, got {len(v)} - at {path}"
        try:
            v.encode()
        except UnicodeEncodeError:
            return f"Expected str encodable as UTF-8, got {v!r} - at {path}"
        return None
    if kind in INT_RANGES:
        if (strict and type(v) is bool) or (not isinstance(v, int) and not _is_integer_like(v)):
            return f"Expected int, got {_type_name(v)} - at {path}"
        lo, hi = INT_RANGES[kind] if strict else AVRO_RANGES[f.type_info.avro]
        if not lo <= v <= hi:
            return f"Expected int in [{lo}, {hi}] ({kind}), got {v} - at {path}"
        return None
    # float or double
    if (strict and type(v) is bool) or (not isinstance(v, (int, float)) and not _is_float_like(v)):
        return f"Expected float, got {_type_name(v)} - at {path}"
    if kind == "float" and math.isfinite(v) and abs(v) > FLOAT32_MAX:
        return f"Expected float32 (|x| <= {FLOAT32_MAX:.8g}, NaN or inf), got {v!r} - at {path}"
    return None


def _is_numpy_bool(v: Any) -> bool:
    return type(v).__module__ == "numpy" and type(v).__name__ in ("bool", "bool_")


def _is_integer_like(v: Any) -> bool:
    """numpy integer scalars and other ``__index__`` types."""
    return hasattr(v, "__index__") and not isinstance(v, (str, bytes, float))


def _is_float_like(v: Any) -> bool:
    return hasattr(v, "__float__") and not isinstance(v, (str, bytes))


def _array_problem(f: FieldInfo, v: Any, path: str, strict: bool) -> str | None:
    if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
        return f"Expected array, got {_type_name(v)} - at {path}"
    if len(v) != f.count:  # every mode: a SAL array has exactly Count items
        return f"Expected {f.count} items, got {len(v)} - at {path}"
    for i, item in enumerate(v):
        problem = _scalar_problem(f, item, f"{path}[{i}]", strict)
        if problem:
            return problem
    return None


def _getter(record: Any) -> Any:
    if isinstance(record, Mapping):
        return record.get
    return lambda name, default: getattr(record, name, default)


def explain(topic: TopicInfo, record: Any, strict: bool = True, only: Collection[str] | None = None) -> str | None:
    """The first problem of ``record`` for ``topic``, as a message, or None.

    ``strict`` applies the rules of the ``strict`` mode; otherwise only what
    the schema itself cannot hold is reported (unknown fields, wrong types,
    integers beyond their Avro type, float32 overflow, arrays of another length
    than Count). ``only`` looks at these fields alone (unknown ones included).
    The message has the form
    ``Component.attr_name: Expected ..., got ... - at $.field[index]``.
    """
    problem = _record_problem(topic, record, strict, only)
    return f"{topic.full_name}: {problem}" if problem else None


def _record_problem(topic: TopicInfo, record: Any, strict: bool, only: Collection[str] | None = None) -> str | None:
    if isinstance(record, Mapping):
        unknown = [k for k in record if k not in topic.fields]
        if unknown:
            return f"Unknown field {unknown[0]!r} - at $"
    elif not hasattr(record, "__dict__") and not hasattr(type(record), "__slots__"):
        return f"Expected a dict or a data class, got {_type_name(record)} - at $"
    get = _getter(record)
    for f in topic.fields.values():
        if only is not None and f.name not in only:
            continue
        value = get(f.name, _MISSING)
        path = f"$.{f.name}"
        if value is _MISSING:
            if strict:
                return f"Missing required field - at {path}"
            continue
        problem = _array_problem(f, value, path, strict) if f.count > 1 else _scalar_problem(f, value, path, strict)
        if problem:
            return problem
    return None


def custom_problem(topic: TopicInfo, record: Mapping[str, Any]) -> str | None:
    """The ``custom`` mode: unknown fields, array lengths, string lengths."""
    fields = topic.fields
    for name, value in record.items():
        f = fields.get(name)
        if f is None:
            return f"{topic.full_name}: Unknown field {name!r} - at $"
        if f.count > 1:
            if hasattr(value, "__len__") and len(value) != f.count:
                return f"{topic.full_name}: Expected {f.count} items, got {len(value)} - at $.{name}"
        elif f.max_length is not None and isinstance(value, str) and len(value) > f.max_length:
            return (
                f"{topic.full_name}: Expected str of at most {f.max_length} characters, got {len(value)} - at $.{name}"
            )
    return None
