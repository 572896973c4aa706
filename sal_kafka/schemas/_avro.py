"""Model -> Avro schema dicts, identical to ts_xml's ComponentInfo output."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ._model import NO_DEFAULT, PRIVATE_FIELDS, ZERO, FieldInfo, FieldMap, TopicInfo, hooks
from ._saltypes import AVRO_TYPES, sal_type

__all__ = ["AVRO_TYPES", "field_schema", "topic_schema", "rev_code", "dumps_schema"]


def field_schema(field: FieldInfo) -> dict[str, Any]:
    """Avro schema of one field: ``name``, ``type``, ``default``, ``description``, ``units``."""
    private = _PRIVATE_SCHEMAS.get(field.name)
    if private is not None and private[0] == field:
        return private[1]
    return _make_field_schema(field)


def _make_field_schema(field: FieldInfo) -> dict[str, Any]:
    info = sal_type(field.sal_type)
    avro, zero = info.avro, info.zero
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


# The private fields are in every topic: their schemas are made once (by
# name, checked by value: a camera topic may have a same-named field of its own).
_PRIVATE_SCHEMAS = {f.name: (f, _make_field_schema(f)) for f in PRIVATE_FIELDS}


def _field_schemas(fields: FieldMap) -> list[dict[str, Any]]:
    return [field_schema(f) for f in fields.values()]


def topic_schema(topic: TopicInfo) -> dict[str, Any]:
    """Avro record schema of a topic.

    Topics that share a `FieldMap` (a generic topic in every component)
    share its list of field schemas too: treat the result as read-only
    (``copy.deepcopy`` it before changing it).
    """
    schema: dict[str, Any] = {
        "type": "record",
        "name": topic.sal_name,
        "namespace": f"lsst.sal.{topic.component_name}",
        "fields": topic.fields.derived("avro_fields", _field_schemas),
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


hooks.install(topic_schema=topic_schema, rev_code=rev_code)
