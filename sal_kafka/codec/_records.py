"""What counts as a record of a topic, and its fields as a dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import msgspec

from ..errors import ValidationError

__all__ = ["as_dict"]


def as_dict(record: Any) -> dict[str, Any]:
    """The fields of a record: a dict (as is), any mapping, a msgspec Struct,
    an attrs instance or an object with ``__dict__`` (a dataclass, a
    `types.SimpleNamespace`).

    Raises
    ------
    ValidationError
        For anything else.
    """
    if type(record) is dict:
        return record
    if isinstance(record, Mapping):
        return dict(record)
    if isinstance(record, msgspec.Struct):
        return msgspec.structs.asdict(record)
    if attrs.has(type(record)):
        return attrs.asdict(record, recurse=False)
    if hasattr(record, "__dict__"):
        return dict(vars(record))
    raise ValidationError(f"Expected a dict or a data class instance, got {type(record).__name__} - at $")
