"""Hypothesis strategies: valid records of any topic, and NaN-aware comparison."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

from hypothesis import strategies as st

from sal_kafka import FieldInfo, TopicInfo
from sal_kafka.schemas import INT_RANGES


def scalar_strategy(f: FieldInfo) -> st.SearchStrategy[Any]:
    kind = f.sal_type
    if kind == "boolean":
        base: st.SearchStrategy[Any] = st.booleans()
    elif kind in INT_RANGES:
        lo, hi = INT_RANGES[kind]
        base = st.integers(lo, hi)
    elif kind == "float":
        base = st.floats(width=32)
    elif kind == "double":
        base = st.floats()
    else:
        base = st.text(max_size=f.max_length or 30)
    return st.none() | base if f.nullable else base


# Hypothesis caps the data one example may draw; a topic can hold thousands
# of array items. Long arrays are therefore filled from a few drawn values
# (which keep Hypothesis' edge cases: NaN, inf, extremes, empty strings)
# mixed, at positions chosen by a drawn PRNG, with PRNG values of the type.
_DRAWN_ITEMS = 6


def _prng_value(f: FieldInfo, rnd: random.Random) -> Any:
    kind = f.sal_type
    if kind == "boolean":
        return rnd.random() < 0.5
    if kind in INT_RANGES:
        lo, hi = INT_RANGES[kind]
        return rnd.randint(lo, hi)
    if kind == "float":
        return struct.unpack("<f", struct.pack("<f", rnd.uniform(-1e6, 1e6)))[0]
    return rnd.uniform(-1e12, 1e12)


def _fill(f: FieldInfo, pool: list[Any], rnd: random.Random) -> list[Any]:
    return [pool[rnd.randrange(len(pool))] if rnd.random() < 0.5 else _prng_value(f, rnd) for _ in range(f.count)]


def field_strategy(f: FieldInfo) -> st.SearchStrategy[Any]:
    if f.count > _DRAWN_ITEMS:
        pool = st.lists(scalar_strategy(f), min_size=1, max_size=_DRAWN_ITEMS)
        seeds = st.integers(0, 2**32 - 1)
        return st.builds(lambda p, seed: _fill(f, p, random.Random(seed)), pool, seeds)
    if f.count > 1:
        return st.lists(scalar_strategy(f), min_size=f.count, max_size=f.count)
    return scalar_strategy(f)


def record_strategy(topic: TopicInfo) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of ``topic``: every field, values within the SAL type."""
    return st.fixed_dictionaries({f.name: field_strategy(f) for f in topic.fields.values()})


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (and lists compare element-wise)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def same_with_numpy(decoded: dict[str, Any], record: dict[str, Any], topic: TopicInfo) -> bool:
    """``decoded`` (with ``arrays="numpy"``) holds ``record``'s values, each array
    an ndarray of its SAL type's dtype."""
    import numpy as np

    if decoded.keys() != record.keys():
        return False
    for name, value in decoded.items():
        f = topic.fields[name]
        if f.count > 1:
            if not (isinstance(value, np.ndarray) and value.dtype == np.dtype(f.type_info.numpy)):
                return False
            value = value.tolist()
        if not same(value, record[name]):
            return False
    return True


def _kind(f: FieldInfo) -> tuple[str, bool, int | None]:
    return (f.sal_type, f.nullable, f.max_length)


def compact_record_strategy(topic: TopicInfo) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of ``topic`` drawn from a small budget.

    Draws, for each kind of field the topic has, a few values (Hypothesis'
    edge cases included), and a PRNG seed; every field is then filled from
    those values or the PRNG. Small enough to draw every topic of a large
    component in one example.
    """
    representative: dict[tuple[str, bool, int | None], FieldInfo] = {}
    for f in topic.fields.values():
        representative.setdefault(_kind(f), f)
    pools = st.fixed_dictionaries(
        {k: st.lists(scalar_strategy(f), min_size=1, max_size=3) for k, f in representative.items()}
    )

    def build(drawn: dict[Any, list[Any]], seed: int) -> dict[str, Any]:
        rnd = random.Random(seed)
        record: dict[str, Any] = {}
        for f in topic.fields.values():
            pool = drawn[_kind(f)]
            if f.count > 1:
                record[f.name] = _fill(f, pool, rnd)
            elif f.sal_type == "string" or f.nullable or rnd.random() < 0.5:
                record[f.name] = pool[rnd.randrange(len(pool))]
            else:
                record[f.name] = _prng_value(f, rnd)
        return record

    return st.builds(build, pools, st.integers(0, 2**32 - 1))
