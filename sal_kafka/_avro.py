"""Model -> Avro schema dicts, identical to ts_xml's ComponentInfo output."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from ._model import NO_DEFAULT, SAL_TYPES, ZERO, FieldInfo, TopicInfo

__all__ = ["AVRO_TYPES", "field_schema", "topic_schema", "rev_code", "dumps_schema"]

#: SAL type -> Avro type (ts_xml v28).
AVRO_TYPES: Final[Mapping[str, str]] = {
    "boolean": "boolean",
    "byte": "int",
    "short": "int",
    "int": "int",
    "long": "int",
    "long long": "long",
    "unsigned short": "int",
    "unsigned int": "long",
    "float": "float",
    "double": "double",
    "string": "string",
}

# FieldInfo is immutable and shared by many topics (generics, private fields),
# so each field's schema is built once. Keyed by identity (hashing a FieldInfo
# costs more than building its schema); the entry keeps the field alive so
# that its id is not reused.
_field_cache: dict[int, tuple[FieldInfo, dict[str, Any]]] = {}


def field_schema(field: FieldInfo) -> dict[str, Any]:
    """Avro schema of one field: ``name``, ``type``, ``default``, ``description``, ``units``."""
    hit = _field_cache.get(id(field))
    if hit is None:
        hit = _field_cache[id(field)] = (field, _make_field_schema(field))
    return hit[1]


# SAL type -> (Avro type, zero value), for the common path below.
_SCALARS: Final[Mapping[str, tuple[str, Any]]] = {sal: (avro, SAL_TYPES[sal]()) for sal, avro in AVRO_TYPES.items()}


def _make_field_schema(field: FieldInfo) -> dict[str, Any]:
    avro, zero = _SCALARS[field.sal_type]
    if field.avro_default is ZERO and not field.nullable and field.units is not None:
        # ts_xml's shape; by far the most common, so built in one step
        if field.count > 1:
            return {
                "name": field.name,
                "type": {"type": "array", "items": avro},
                "default": [zero] * field.count,
                "description": field.description,
                "units": field.units,
            }
        return {
            "name": field.name,
            "type": avro,
            "default": zero,
            "description": field.description,
            "units": field.units,
        }
    return _make_avsc_field_schema(field, avro)


def _make_avsc_field_schema(field: FieldInfo, avro: str) -> dict[str, Any]:
    """Camera ``.avsc`` fields: nullable types, missing defaults or units."""
    avro_type: Any = ["null", avro] if field.nullable else avro
    if field.count > 1:
        avro_type = {"type": "array", "items": avro}
    schema: dict[str, Any] = {"name": field.name, "type": avro_type}
    default = field.default
    if default is not NO_DEFAULT:
        schema["default"] = list(default) if isinstance(default, tuple) else default
    schema["description"] = field.description
    if field.units is not None:
        schema["units"] = field.units
    return schema


# Topics of different components that share one field dict (generic topics)
# share their list of field schemas too.
_fields_cache: dict[int, tuple[Any, list[dict[str, Any]]]] = {}


def topic_schema(topic: TopicInfo) -> dict[str, Any]:
    """Avro record schema of a topic.

    Field lists are shared between topics: treat the result as read-only
    (``copy.deepcopy`` it before changing it).
    """
    hit = _fields_cache.get(id(topic.fields))
    if hit is None:
        fields = [field_schema(f) for f in topic.fields.values()]
        hit = _fields_cache[id(topic.fields)] = (topic.fields, fields)
    schema: dict[str, Any] = {
        "type": "record",
        "name": topic.sal_name,
        "namespace": f"lsst.sal.{topic.component_name}",
        "fields": hit[1],
    }
    if topic.description is not None:
        schema["description"] = topic.description
    return schema


def rev_code(schema: Mapping[str, Any]) -> str:
    """First 8 hex digits of the md5 of ``json.dumps(schema, indent=4)`` (as ts_salobj)."""
    return hashlib.md5(json.dumps(schema, indent=4).encode()).hexdigest()[:8]


def dumps_schema(schema: Mapping[str, Any]) -> str:
    """Pretty-printed schema text, as written to ``.avsc`` files."""
    return json.dumps(schema, indent=2) + "\n"
