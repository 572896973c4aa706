"""Camera topics given as Avro schema files (``interfaces/<Camera>/*.avsc``).

ts_xml describes ATCamera, CCCamera and MTCamera topics directly in Avro;
this reads them into topic definitions of the model. Avro types map back to
SAL types through the SAL type table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._model import NO_DEFAULT, FieldInfo, TopicDef
from ._saltypes import SAL_TYPE_OF_AVRO
from ._xml import cached, check_name, xml_error

__all__ = ["avsc_topics"]


def _avsc_field(spec: dict[str, Any], path: Path) -> FieldInfo:
    name = spec.get("name")
    avro_type: Any = spec.get("type")
    nullable = isinstance(avro_type, list) and len(avro_type) == 2 and avro_type[0] == "null"
    scalar = avro_type[1] if nullable else avro_type
    if not isinstance(name, str) or not isinstance(scalar, str) or scalar not in SAL_TYPE_OF_AVRO:
        raise xml_error(
            f'unsupported field {name!r} of type {avro_type!r}; expected a primitive or ["null", primitive]',
            str(path),
            element=str(name),
        )
    check_name(name, "field name", path, None, name)
    return FieldInfo(
        name=name,
        sal_type=SAL_TYPE_OF_AVRO[scalar],
        units=spec.get("units"),
        description=spec.get("description", ""),
        nullable=nullable,
        avro_default=spec.get("default", NO_DEFAULT),
    )


def _build_avsc(path: Path) -> tuple[str, dict[str, Any], tuple[FieldInfo, ...]]:
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise xml_error(f"malformed JSON: {exc.msg}", str(path), exc.lineno) from None
    if not isinstance(schema, dict) or schema.get("type") != "record" or "fields" not in schema:
        raise xml_error("expected an Avro record schema", str(path), 1)
    fields = tuple(_avsc_field(f, path) for f in schema["fields"])
    return check_name(str(schema["name"]), "record name", path, 1, "name"), schema, fields


def avsc_topics(component: str, xml_dir: Path) -> list[tuple[str, TopicDef]]:
    """``(sal_name, definition)`` of each ``.avsc`` topic of ``component``, if any."""
    folder = xml_dir.parent / "interfaces" / component
    if not folder.is_dir():
        return []
    result = []
    for path in sorted(folder.glob("*.avsc")):
        sal_name, schema, fields = cached("avsc", path, _build_avsc)
        topic = TopicDef(sal_name, schema.get("description"), fields, {}, None, f"{path}:1")
        result.append((sal_name, topic))
    return result
