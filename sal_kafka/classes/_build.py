"""Data classes of topics, built at run time and cached.

The msgspec and attrs classes are made by executing the very source that
``sal-kafka codegen`` writes (see `_class_source`), so both behave the same. The
stdlib dataclass mirrors ts_salobj's (``DataType(**data)`` checks array
lengths) and serves the ``dataclass`` validation modes and readers.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from typing import Any

from .._util import build_once, compile_generated
from ..errors import ValidationError
from ..options import Style
from ..schemas._model import EnumInfo, TopicInfo
from ._source import HEADERS, class_source, enum_source

__all__ = ["data_class", "msgspec_class", "attrs_class", "dataclass_class", "enum_class"]

_lock = threading.Lock()
_classes: dict[tuple[Any, ...], type] = {}


def _key(topic: TopicInfo, style: str) -> tuple[Any, ...]:
    # Same component, name, fields and Kafka topic (the docstring names it) -> same class,
    # across loads of the XML.
    return (style, topic.component_name, topic.sal_name, topic.kafka_name, tuple(topic.fields.values()))


def _exec_class(source: str, style: str, name: str, module: str) -> type:
    namespace: dict[str, Any] = {"__name__": module}
    compile_generated(HEADERS[style] + "\n" + source, f"<sal_kafka {module}.{name}>", namespace)
    cls: type = namespace[name]
    return cls


def data_class(topic: TopicInfo, style: Style) -> type:
    """The ``msgspec`` or ``attrs`` class of ``topic`` (one per topic, cached)."""
    module = f"sal_kafka.classes.{topic.component_name}"
    return build_once(
        _classes,
        _lock,
        _key(topic, style),
        lambda: _exec_class(class_source(topic, style), style, topic.attr_name, module),
    )


def msgspec_class(topic: TopicInfo) -> type:
    """The `msgspec.Struct` class of ``topic``: typed, documented, constrained."""
    return data_class(topic, "msgspec")


def attrs_class(topic: TopicInfo) -> type:
    """The attrs class (slots, validators) of ``topic``."""
    return data_class(topic, "attrs")


def dataclass_class(topic: TopicInfo) -> type:
    """A stdlib dataclass as ts_salobj makes it: defaults, and an array-length check."""
    return build_once(_classes, _lock, _key(topic, "dataclass"), lambda: _make_dataclass(topic))


def _make_dataclass(topic: TopicInfo) -> type:
    arrays = topic.array_fields
    full_name = topic.full_name

    def __post_init__(self: Any) -> None:  # noqa: N807
        for name, count in arrays.items():
            got = len(getattr(self, name))
            if got != count:
                raise ValidationError(f"{full_name}: Expected {count} items, got {got} - at $.{name}")

    specs: list[tuple[str, Any, Any]] = []
    for f in topic.fields.values():
        kind: Any = f.python_type
        if f.count > 1:
            factory = _list_factory(kind(), f.count)
            specs.append((f.name, list[kind], dataclasses.field(default_factory=factory)))
        else:
            default = None if f.nullable else kind()
            specs.append((f.name, kind, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(topic.attr_name, specs, namespace={"__post_init__": __post_init__}, kw_only=True)


def _list_factory(zero: Any, count: int) -> Any:
    return lambda: [zero] * count


_enums: dict[EnumInfo, type[enum.IntEnum]] = {}


def enum_class(info: EnumInfo) -> type[enum.IntEnum]:
    """The `enum.IntEnum` of an XML enumeration (cached)."""
    cls = _enums.get(info)
    if cls is None:
        namespace: dict[str, Any] = {"__name__": "sal_kafka.enums"}
        compile_generated("import enum\n" + enum_source(info), f"<sal_kafka enum {info.name}>", namespace)
        cls = _enums[info] = namespace[info.name]
    return cls
