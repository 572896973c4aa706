"""Read ts_xml definition files into the model.

Knows the ts_xml file layout and its quirks; knows nothing of Avro or Kafka.
Every problem is raised as `XmlError` naming the file, the line and the
element.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import msgspec
from lxml import etree

from ._errors import UnknownComponentError, XmlError
from ._model import (
    ACKCMD_FIELDS,
    NO_DEFAULT,
    SAL_TYPES,
    ComponentInfo,
    EnumInfo,
    FieldInfo,
    TopicInfo,
    default_xml_dir,
    private_fields,
)
from ._util import gc_paused

__all__ = ["load_component", "load_components", "list_components"]

_TOPIC_FILES = (("Commands", "SALCommand"), ("Events", "SALEvent"), ("Telemetry", "SALTelemetry"))
_SET_ROOTS = {
    "SALCommandSet": "SALCommand",
    "SALEventSet": "SALEvent",
    "SALTelemetrySet": "SALTelemetry",
}
_GENERIC_PREFIX = "SALGeneric_"
# lxml parsers and XSLT objects must not be shared between threads.
_local = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False)
    return parser


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- helpers


def _parse(path: Path) -> etree._Element:
    """Parse one XML file, turning syntax errors into `XmlError`."""
    try:
        return etree.parse(str(path), _parser()).getroot()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise XmlError(f"malformed XML: {exc.msg}", str(path), line) from None
    except OSError as exc:
        raise XmlError(f"cannot read file: {exc}", str(path)) from None


def _text(elt: etree._Element, name: str, path: Path, default: str | None = None) -> str:
    """Text of child ``name``; required unless ``default`` is given."""
    child = elt.find(name)
    if child is None or child.text is None:
        if default is not None:
            return default
        what = "missing" if child is None else "empty"
        raise XmlError(f"{what} required <{name}>", str(path), elt.sourceline, elt.tag)
    return str(child.text)


def _where(path: Path, elt: etree._Element) -> str:
    return f"{path}:{elt.sourceline}"


# --------------------------------------------------------------------------- enumerations


def _enum_value(text: str, path: Path, elt: etree._Element) -> int:
    text = text.strip()
    try:
        if text.lower().startswith(("0x", "-0x")):
            return int(text, 16)
        return int(text, 10)  # base 10 accepts zero padding such as "04"
    except ValueError:
        raise XmlError(
            f"enumeration value {text!r} is not a decimal or hex integer",
            str(path),
            elt.sourceline,
            "Enumeration",
        ) from None


def _enum_entries(elt: etree._Element, path: Path) -> list[tuple[str, int]]:
    """Parse ``A_x, A_y=3, A_z`` into ``[("A_x", 0), ("A_y", 3), ("A_z", 4)]``."""
    entries: list[tuple[str, int]] = []
    next_value = 0
    for raw in (elt.text or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        name, eq, value = raw.partition("=")
        name = name.strip()
        if not _IDENTIFIER.match(name):
            raise XmlError(
                f"enumeration entry {name!r} is not an identifier",
                str(path),
                elt.sourceline,
                "Enumeration",
            )
        number = _enum_value(value, path, elt) if eq else next_value
        entries.append((name, number))
        next_value = number + 1
    return entries


def _parse_enums(elt: etree._Element, path: Path) -> dict[str, EnumInfo]:
    """File- or topic-level ``<Enumeration>``: each entry is ``Prefix_Item[=value]``."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for name, value in _enum_entries(elt, path):
        prefix, sep, item = name.partition("_")
        if not sep or not item:
            raise XmlError(
                f"enumeration entry {name!r} has no Prefix_ part",
                str(path),
                elt.sourceline,
                "Enumeration",
            )
        groups.setdefault(prefix, []).append((item, value))
    return {p: EnumInfo(p, tuple(m), _where(path, elt)) for p, m in groups.items()}


def _field_enum(elt: etree._Element, field_name: str, path: Path) -> EnumInfo:
    """An item's own ``<Enumeration>``: named by its common prefix, else by the field."""
    entries = _enum_entries(elt, path)
    prefixes = {n.partition("_")[0] for n, _ in entries if "_" in n}
    if len(prefixes) == 1 and all("_" in n for n, _ in entries):
        prefix = prefixes.pop()
        members = tuple((n.partition("_")[2], v) for n, v in entries)
        return EnumInfo(prefix, members, _where(path, elt))
    return EnumInfo(field_name[:1].upper() + field_name[1:], tuple(entries), _where(path, elt))


def _merge_enums(target: dict[str, EnumInfo], new: dict[str, EnumInfo], path: Path) -> None:
    for name, info in new.items():
        if name in target and target[name].source.startswith(str(path)):
            merged = target[name].members + info.members
            target[name] = msgspec.structs.replace(target[name], members=merged)
        else:
            target[name] = info


# --------------------------------------------------------------------------- topics


@attrs.frozen
class _TopicDef:
    """A topic as defined in a file, before it is bound to a component."""

    sal_name: str
    description: str | None
    items: tuple[FieldInfo, ...]
    enums: dict[str, EnumInfo]
    category: str | None
    source: str


def _parse_item(elt: etree._Element, path: Path) -> FieldInfo:
    # One pass over the children, reading only their text: per-name
    # ElementPath lookups cost more than the rest of the parsing. Error
    # paths look the element up again to report its line.
    texts = {c.tag: c.text for c in elt}
    name = texts.get("EFDB_Name") or _text(elt, "EFDB_Name", path)  # raises if missing
    sal_type = texts.get("IDL_Type") or _text(elt, "IDL_Type", path)
    if sal_type not in SAL_TYPES:
        raise XmlError(
            f"unknown IDL_Type {sal_type!r} of field {name!r}; expected one of " + ", ".join(SAL_TYPES),
            str(path),
            _line_of(elt, "IDL_Type"),
            "IDL_Type",
        )
    count = _int_text(texts, "Count", path, elt, 1)
    if count < 1:
        raise XmlError(
            f"Count of field {name!r} must be >= 1, got {count}",
            str(path),
            _line_of(elt, "Count"),
            "Count",
        )
    if sal_type == "string":
        count = 1  # as ts_sal does: a string with Count > 1 is one string
    units = texts.get("Units")
    enum = None
    if "Enumeration" in texts:
        enum = _field_enum(elt.find("Enumeration"), str(name), path)
    return FieldInfo(
        name=str(name),
        sal_type=sal_type,
        count=count,
        units="unitless" if units is None else units,
        description=texts.get("Description") or "",
        string_size=_int_text(texts, "IDL_Size", path, elt, None),
        enum=enum,
    )


def _line_of(parent: etree._Element, name: str) -> int:
    child = parent.find(name)
    return int(child.sourceline if child is not None else parent.sourceline)


def _int_text(texts: dict[Any, str | None], name: str, path: Path, parent: etree._Element, default: int | None) -> Any:
    text = texts.get(name)
    if text is None:
        return default
    try:
        return int(text)  # int() ignores surrounding whitespace
    except ValueError:
        raise XmlError(f"expected an integer, got {text!r}", str(path), _line_of(parent, name), name) from None


def _parse_topic(elt: etree._Element, path: Path, strip_prefix: str | None) -> _TopicDef:
    full_name = _text(elt, "EFDB_Topic", path)
    if strip_prefix is not None:
        if not full_name.startswith(strip_prefix):
            raise XmlError(
                f"EFDB_Topic {full_name!r} must start with {strip_prefix!r}",
                str(path),
                elt.sourceline,
                "EFDB_Topic",
            )
        sal_name = full_name[len(strip_prefix) :]
    else:
        _, sep, sal_name = full_name.partition("_")
        if not sep or not sal_name:
            raise XmlError(
                f"EFDB_Topic {full_name!r} must be <Component>_<name>",
                str(path),
                elt.sourceline,
                "EFDB_Topic",
            )
    items = _parse_items(elt, path, sal_name)
    enums: dict[str, EnumInfo] = {}
    for enum_elt in elt.iterchildren("Enumeration"):
        _merge_enums(enums, _parse_enums(enum_elt, path), path)
    category_elt = elt.find("Category")
    category = category_elt.text.strip() if category_elt is not None and category_elt.text else None
    description = _text(elt, "Description", path, "")
    return _TopicDef(sal_name, description, items, enums, category, _where(path, elt))


def _parse_items(elt: etree._Element, path: Path, sal_name: str) -> tuple[FieldInfo, ...]:
    items: list[FieldInfo] = []
    seen: set[str] = set()
    for item_elt in elt.iterchildren("item"):
        info = _parse_item(item_elt, path)
        if info.name in seen:
            raise XmlError(
                f"duplicate field {info.name!r} in topic {sal_name!r}",
                str(path),
                item_elt.sourceline,
                "item",
            )
        seen.add(info.name)
        items.append(info)
    return tuple(items)


# Fast path for component files. Walking ~10^5 elements through lxml proxies
# costs more than everything else; one XSLT pass (in C) flattens each topic
# and its items into text instead. Separators are Unicode "symbol for
# separator" characters. Anything unusual in a topic (a missing or empty
# required text, an unknown type, a bad integer, an Enumeration, a Category,
# a duplicate field, a separator inside a text) sends that topic through the
# element-by-element parser, which also produces the precise error.
_SEP_FIELD, _SEP_ITEM, _SEP_TOPIC = "\u241f", "\u241d", "\u241e"
_TOPIC_VALUES = ("EFDB_Topic", "Description", "count(Enumeration|Category)")
_ITEM_VALUES = (
    "EFDB_Name",
    "IDL_Type",
    "Count",
    "Units",
    "Description",
    "IDL_Size",
    "count(Enumeration)",
)


def _value_list(values: tuple[str, ...]) -> str:
    return "&#x241f;".join(f'<xsl:value-of select="{v}"/>' for v in values)


_FLATTEN_XSLT = (
    '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
    '<xsl:output method="text" encoding="UTF-8"/>'
    '<xsl:template match="/*">'
    '<xsl:for-each select="*[not(self::Enumeration)]">'
    + _value_list(_TOPIC_VALUES)
    + '&#x241d;<xsl:for-each select="item">'
    + _value_list(_ITEM_VALUES)
    + "&#x241d;</xsl:for-each>&#x241e;</xsl:for-each>"
    "</xsl:template></xsl:stylesheet>"
)


def _flatten(root: etree._Element) -> str:
    xslt = getattr(_local, "flatten", None)
    if xslt is None:
        xslt = _local.flatten = etree.XSLT(etree.XML(_FLATTEN_XSLT))
    return str(xslt(root.getroottree()))


def _fast_topic(chunk: str, source: str) -> _TopicDef | None:
    """A topic from its flattened text, or None to use the element parser."""
    header, *records = chunk.split(_SEP_ITEM)
    topic_values = header.split(_SEP_FIELD)
    if len(topic_values) != 3 or records[-1:] != [""]:
        return None
    full_name, description, n_extra = topic_values
    _, sep, sal_name = full_name.partition("_")
    if not sal_name or n_extra != "0":
        return None
    items = _fast_items(records[:-1])
    if items is None:
        return None
    return _TopicDef(sal_name, description, items, {}, None, source)


def _fast_items(records: list[str]) -> tuple[FieldInfo, ...] | None:
    items: list[FieldInfo] = []
    seen: set[str] = set()
    for record in records:
        values = record.split(_SEP_FIELD)
        if len(values) != 7:
            return None
        name, sal_type, count_text, units, description, size_text, n_enums = values
        if not name or name in seen or sal_type not in SAL_TYPES or n_enums != "0":
            return None
        try:
            count = int(count_text) if count_text else 1
            size = int(size_text) if size_text else None  # empty is as missing: None
        except ValueError:
            return None
        if count < 1:
            return None
        seen.add(name)
        items.append(
            FieldInfo(
                name=name,
                sal_type=sal_type,
                count=1 if sal_type == "string" else count,
                units=units or "unitless",
                description=description,
                string_size=size,
            )
        )
    return tuple(items)


def _topic_elements(root: etree._Element, path: Path, expected_tag: str) -> Iterable[etree._Element]:
    for child in root:
        if child.tag == expected_tag:
            yield child
        elif child.tag != "Enumeration":
            raise XmlError(
                f"unexpected element <{child.tag}>; expected <{expected_tag}> or <Enumeration>",
                str(path),
                child.sourceline,
                str(child.tag),
            )


# --------------------------------------------------------------------------- directory-level files
# SALSubsystems.xml and SALGenerics.xml are shared by every component: parse them
# once per directory and file version.


@attrs.frozen
class _Subsystem:
    name: str
    description: str
    index_enumeration: str
    added_generics: tuple[str, ...]
    path: str
    line: int


@attrs.frozen
class _Generics:
    topics: dict[str, _TopicDef]
    categories: dict[str, list[_TopicDef]]
    enums: dict[str, EnumInfo]


_cache: dict[tuple[str, str], tuple[int, Any]] = {}


def _cached(kind: str, path: Path, build: Any) -> Any:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise XmlError(f"cannot read file: {exc.strerror}", str(path)) from None
    key = (kind, str(path))
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = build(path)
    _cache[key] = (stamp, value)
    return value


def _build_subsystems(path: Path) -> dict[str, _Subsystem]:
    root = _parse(path)
    result: dict[str, _Subsystem] = {}
    for elt in root.iterchildren("SALSubsystem"):
        name = _text(elt, "Name", path).strip()
        if name in result:
            raise XmlError(f"duplicate component {name!r}", str(path), elt.sourceline, "SALSubsystem")
        generics = ("mandatory",) + tuple(
            g.strip() for g in _text(elt, "AddedGenerics", path, "").split(",") if g.strip()
        )
        result[name] = _Subsystem(
            name=name,
            description=_text(elt, "Description", path, ""),
            index_enumeration=_text(elt, "IndexEnumeration", path).strip(),
            added_generics=generics,
            path=str(path),
            line=int(elt.sourceline or 0),
        )
    return result


def _build_generics(path: Path) -> _Generics:
    root = _parse(path)
    topics: dict[str, _TopicDef] = {}
    categories: dict[str, list[_TopicDef]] = {}
    enums: dict[str, EnumInfo] = {}
    for set_elt in root:
        if set_elt.tag == "Enumeration":
            _merge_enums(enums, _parse_enums(set_elt, path), path)
            continue
        topic_tag = _SET_ROOTS.get(str(set_elt.tag))
        if topic_tag is None:
            raise XmlError(
                f"unexpected element <{set_elt.tag}> in SALGenerics.xml",
                str(path),
                set_elt.sourceline,
                str(set_elt.tag),
            )
        for elt in set_elt:
            if elt.tag == "Enumeration":
                _merge_enums(enums, _parse_enums(elt, path), path)
                continue
            topic = _parse_topic(elt, path, _GENERIC_PREFIX)
            if topic.sal_name in topics:
                raise XmlError(
                    f"duplicate generic topic {topic.sal_name!r}",
                    str(path),
                    elt.sourceline,
                    str(elt.tag),
                )
            topics[topic.sal_name] = topic
            if topic.category:
                categories.setdefault(topic.category, []).append(topic)
    return _Generics(topics, categories, enums)


def _build_component_file(path: Path) -> tuple[list[_TopicDef], dict[str, EnumInfo]]:
    root = _parse(path)
    topic_tag = _SET_ROOTS.get(str(root.tag))
    if topic_tag is None:
        raise XmlError(
            f"unexpected root <{root.tag}>; expected one of {', '.join(_SET_ROOTS)}",
            str(path),
            root.sourceline,
            str(root.tag),
        )
    enums: dict[str, EnumInfo] = {}
    for elt in root.iterchildren("Enumeration"):
        _merge_enums(enums, _parse_enums(elt, path), path)
    elements = list(_topic_elements(root, path, topic_tag))
    chunks = _flatten(root).split(_SEP_TOPIC)[:-1]
    if len(chunks) != len(elements):  # a separator inside some text
        chunks = [""] * len(elements)
    topics = []
    for elt, chunk in zip(elements, chunks, strict=True):
        fast = _fast_topic(chunk, f"{path}:{elt.sourceline}") if chunk else None
        topics.append(fast or _parse_topic(elt, path, None))
    return topics, enums


# --------------------------------------------------------------------------- camera .avsc topics

_AVRO_TO_SAL = {
    "boolean": "boolean",
    "int": "int",
    "long": "long long",
    "float": "float",
    "double": "double",
    "string": "string",
}


def _avsc_field(spec: dict[str, Any], path: Path) -> FieldInfo:
    name = spec.get("name")
    avro_type: Any = spec.get("type")
    nullable = isinstance(avro_type, list) and len(avro_type) == 2 and avro_type[0] == "null"
    scalar = avro_type[1] if nullable else avro_type
    if not isinstance(name, str) or not isinstance(scalar, str) or scalar not in _AVRO_TO_SAL:
        raise XmlError(
            f'unsupported field {name!r} of type {avro_type!r}; expected a primitive or ["null", primitive]',
            str(path),
            element=str(name),
        )
    return FieldInfo(
        name=name,
        sal_type=_AVRO_TO_SAL[scalar],
        units=spec.get("units"),
        description=spec.get("description", ""),
        nullable=nullable,
        avro_default=spec.get("default", NO_DEFAULT),
    )


def _build_avsc(path: Path) -> tuple[str, dict[str, Any], tuple[FieldInfo, ...]]:
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise XmlError(f"malformed JSON: {exc.msg}", str(path), exc.lineno) from None
    if not isinstance(schema, dict) or schema.get("type") != "record" or "fields" not in schema:
        raise XmlError("expected an Avro record schema", str(path), 1)
    fields = tuple(_avsc_field(f, path) for f in schema["fields"])
    return str(schema["name"]), schema, fields


def _avsc_topics(component: str, xml_dir: Path) -> list[tuple[str, _TopicDef]]:
    folder = xml_dir.parent / "interfaces" / component
    if not folder.is_dir():
        return []
    result = []
    for path in sorted(folder.glob("*.avsc")):
        sal_name, schema, fields = _cached("avsc", path, _build_avsc)
        topic = _TopicDef(sal_name, schema.get("description"), fields, {}, None, f"{path}:1")
        result.append((sal_name, topic))
    return result


# --------------------------------------------------------------------------- components


def load_components(
    names: Sequence[str], xml_dir: str | os.PathLike[str] | None = None, topic_subname: str = "sal"
) -> list[ComponentInfo]:
    """Load many components, parsing their files two at a time ahead of the build.

    lxml releases the GIL while it parses and transforms, so on two cores the
    C work of the next files overlaps the Python work of binding the current
    component. Parse errors are not raised by the workers: the normal load
    meets the file again and raises them, in order.
    """
    folder = _resolve_dir(xml_dir)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = {
            name: [
                (path, pool.submit(_try_build, path))
                for suffix, _tag in _TOPIC_FILES
                if (path := folder / name / f"{name}_{suffix}.xml").is_file()
            ]
            for name in names
        }
        components = []
        for name in names:
            for path, future in pending[name]:
                built = future.result()
                if built is not None:
                    _cache[("component", str(path))] = built
            components.append(load_component(name, folder, topic_subname))
    return components


def _try_build(path: Path) -> tuple[int, Any] | None:
    try:
        stamp = path.stat().st_mtime_ns
        return stamp, _build_component_file(path)
    except (XmlError, OSError):
        return None


def _resolve_dir(xml_dir: str | os.PathLike[str] | None) -> Path:
    return Path(xml_dir) if xml_dir is not None else default_xml_dir()


def _subsystems(xml_dir: Path) -> dict[str, _Subsystem]:
    result: dict[str, _Subsystem] = _cached("subsystems", xml_dir / "SALSubsystems.xml", _build_subsystems)
    return result


def list_components(xml_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the components of ``SALSubsystems.xml`` in ``xml_dir``, in file order."""
    return list(_subsystems(_resolve_dir(xml_dir)))


def _select_generics(sub: _Subsystem, generics: _Generics, xml_dir: Path) -> list[_TopicDef]:
    """Expand ``AddedGenerics``: categories (``csc``) and topic names (``command_x``)."""
    selected: list[_TopicDef] = []
    for entry in sub.added_generics:
        if "_" in entry:
            topic = generics.topics.get(entry)
            if topic is None:
                raise XmlError(
                    f"unknown generic topic {entry!r} in AddedGenerics of {sub.name}; "
                    f"known: {', '.join(generics.topics)}",
                    sub.path,
                    sub.line,
                    "AddedGenerics",
                )
            selected.append(topic)
        else:
            topics = generics.categories.get(entry)
            if topics is None:
                raise XmlError(
                    f"unknown generic category {entry!r} in AddedGenerics of {sub.name}; "
                    f"known: {', '.join(generics.categories)}",
                    sub.path,
                    sub.line,
                    "AddedGenerics",
                )
            selected.extend(topics)
    return selected


def load_component(
    name: str, xml_dir: str | os.PathLike[str] | None = None, topic_subname: str = "sal"
) -> ComponentInfo:
    """Build the `ComponentInfo` of ``name`` from the files in ``xml_dir``."""
    with gc_paused():
        return _load_component(name, xml_dir, topic_subname)


def _load_component(name: str, xml_dir: str | os.PathLike[str] | None, topic_subname: str) -> ComponentInfo:
    folder = _resolve_dir(xml_dir)
    subsystems = _subsystems(folder)
    sub = subsystems.get(name)
    if sub is None:
        raise UnknownComponentError(
            f"unknown component {name!r}; known: {', '.join(subsystems)}",
            str(folder / "SALSubsystems.xml"),
        )
    generics: _Generics = _cached("generics", folder / "SALGenerics.xml", _build_generics)
    enums = dict(generics.enums)

    defs: dict[str, _TopicDef] = {}
    for topic in _select_generics(sub, generics, folder):
        _add_topic(defs, topic, name)
    for suffix, _tag in _TOPIC_FILES:
        path = folder / name / f"{name}_{suffix}.xml"
        if not path.is_file():
            continue  # any of the three files may be missing
        topics, file_enums = _cached("component", path, _build_component_file)
        enums.update(file_enums)
        for topic in topics:
            _add_topic(defs, topic, name)

    indexed = sub.index_enumeration != "no"
    bound = [_bind(t, name, topic_subname, indexed) for t in defs.values()]
    bound.append(_ackcmd(name, topic_subname, indexed))
    topics_by_attr = {t.attr_name: t for t in bound}
    # Camera topics given as .avsc replace a same-named XML topic in place.
    for _sal_name, topic in _avsc_topics(name, folder):
        info = _bind(topic, name, topic_subname, indexed, private_last=True)
        topics_by_attr[info.attr_name] = info
    return ComponentInfo(
        name=name,
        topic_subname=topic_subname,
        description=sub.description,
        index_enumeration=sub.index_enumeration,
        added_generics=sub.added_generics,
        topics=topics_by_attr,
        enums=enums,
        xml_dir=folder,
    )


def _add_topic(defs: dict[str, _TopicDef], topic: _TopicDef, component: str) -> None:
    if topic.sal_name in defs:
        path, _, line = topic.source.rpartition(":")
        raise XmlError(
            f"duplicate topic {topic.sal_name!r} in component {component} "
            f"(first defined at {defs[topic.sal_name].source})",
            path,
            int(line),
            "EFDB_Topic",
        )
    defs[topic.sal_name] = topic


# A generic topic has the same fields in every component: build its field
# dict once (per indexedness) and share it. Entries keep the def alive so
# that its id is not reused.
_fields_cache: dict[tuple[int, bool], tuple[_TopicDef, dict[str, FieldInfo]]] = {}


def _bind(topic: _TopicDef, component: str, subname: str, indexed: bool, private_last: bool = False) -> TopicInfo:
    key = (id(topic), indexed)
    hit = _fields_cache.get(key)
    if hit is None:
        hit = _fields_cache[key] = (topic, _topic_fields(topic, indexed, private_last))
    return TopicInfo(
        component_name=component,
        topic_subname=subname,
        sal_name=topic.sal_name,
        fields=hit[1],
        description=topic.description,
        indexed=indexed,
        enums=topic.enums,
        source=topic.source,
    )


def _topic_fields(topic: _TopicDef, indexed: bool, private_last: bool) -> dict[str, FieldInfo]:
    private = private_fields(indexed)
    ordered = topic.items + private if private_last else private + topic.items
    fields: dict[str, FieldInfo] = {}
    for info in ordered:
        if info.name in fields:
            path, _, line = topic.source.rpartition(":")
            raise XmlError(
                f"field {info.name!r} of topic {topic.sal_name!r} clashes with a private field",
                path,
                int(line),
                "EFDB_Name",
            )
        fields[info.name] = info
    return fields


def _ackcmd(component: str, subname: str, indexed: bool) -> TopicInfo:
    fields = {f.name: f for f in private_fields(indexed) + ACKCMD_FIELDS}
    return TopicInfo(
        component_name=component,
        topic_subname=subname,
        sal_name="ackcmd",
        fields=fields,
        description="Command acknowledgement",
        indexed=indexed,
    )
