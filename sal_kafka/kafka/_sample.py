"""Records with a non-default value in every public field (benchmarks, demo)."""

from __future__ import annotations

import random
import struct
from typing import Any

from ..schemas._model import FieldInfo, TopicInfo
from ..schemas._saltypes import INT_RANGES

__all__ = ["sample_record"]


def _value(f: FieldInfo, rnd: random.Random) -> Any:
    if f.sal_type == "boolean":
        return True
    if f.sal_type == "string":
        text = f"{f.name} sample"
        return text[: f.max_length] if f.max_length else text
    if f.sal_type in INT_RANGES:
        lo, hi = INT_RANGES[f.sal_type]
        return rnd.randint(max(lo, 1), min(hi, 1000))
    value = rnd.uniform(-1000.0, 1000.0) or 1.0
    if f.sal_type == "float":  # float32-exact, so that it reads back equal
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    return value


def sample_record(topic: TopicInfo, seed: int = 0) -> dict[str, Any]:
    """Public fields of ``topic``, each with a non-default, valid value."""
    rnd = random.Random(seed)
    fields = [topic.fields[name] for name in topic.public_fields]
    return {f.name: [_value(f, rnd) for _ in range(f.count)] if f.count > 1 else _value(f, rnd) for f in fields}
