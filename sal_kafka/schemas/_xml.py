"""Parse ts_xml definition files into topic definitions of the model.

Knows the ts_xml file format and its quirks; knows nothing of Avro or Kafka
(camera ``.avsc`` files are `_avsc`'s, binding definitions into components
is `_loader`'s). Every problem is raised as `XmlError` naming the file, the
line and the element.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import attrs
import msgspec
from lxml import etree

from ..errors import XmlError
from ._model import EnumInfo, FieldInfo, TopicDef
from ._saltypes import SAL_TYPES

__all__ = [
    "xml_error",
    "Subsystem",
    "Generics",
    "cached",
    "store_cached",
    "build_subsystems",
    "build_generics",
    "build_component_file",
    "TOPIC_FILES",
]

TOPIC_FILES = (("Commands", "SALCommand"), ("Events", "SALEvent"), ("Telemetry", "SALTelemetry"))
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


#: Avro's rule for names (fields, records, enums): what every name of a definition must be, so
#: that it is a valid schema, a Python identifier of the classes, and a safe SQL column name
_AVRO_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: str, what: str, path: Path | str, line: int | None = None, element: str | None = None) -> str:
    """``name`` if it follows Avro's name rule (``[A-Za-z_][A-Za-z0-9_]*``), else an `XmlError`
    naming the file, the line and what was expected."""
    if _AVRO_NAME.fullmatch(name) is None:
        raise xml_error(
            f"{what} {name!r} is not a valid name: expected letters, digits and '_', not starting with a digit",
            str(path),
            line,
            element,
        )
    return name


def xml_error(message: str, path: Path | str, line: int | None = None, element: str | None = None) -> XmlError:
    """The `XmlError` of a definition file: what is wrong, the file, the line, the element."""
    return XmlError(message, path=str(path), line=line, element=element)


def _parse(path: Path) -> etree._Element:
    """Parse one XML file, turning syntax errors into `XmlError`."""
    try:
        return etree.parse(str(path), _parser()).getroot()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise xml_error(f"malformed XML: {exc.msg}", str(path), line) from None
    except OSError as exc:
        raise xml_error(f"cannot read file: {exc}", str(path)) from None


def _text(elt: etree._Element, name: str, path: Path, default: str | None = None) -> str:
    """Text of child ``name``; required unless ``default`` is given."""
    child = elt.find(name)
    if child is None or child.text is None:
        if default is not None:
            return default
        what = "missing" if child is None else "empty"
        raise xml_error(f"{what} required <{name}>", str(path), elt.sourceline, elt.tag)
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
        raise xml_error(
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
            raise xml_error(
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
            raise xml_error(
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


def _parse_item(elt: etree._Element, path: Path) -> FieldInfo:
    # One pass over the children, reading only their text: per-name
    # ElementPath lookups cost more than the rest of the parsing. Error
    # paths look the element up again to report its line.
    texts = {c.tag: c.text for c in elt}
    name = texts.get("EFDB_Name") or _text(elt, "EFDB_Name", path)  # raises if missing
    if _AVRO_NAME.fullmatch(name) is None:
        check_name(name, "EFDB_Name", path, _line_of(elt, "EFDB_Name"), "EFDB_Name")
    sal_type = texts.get("IDL_Type") or _text(elt, "IDL_Type", path)
    if sal_type not in SAL_TYPES:
        raise xml_error(
            f"unknown IDL_Type {sal_type!r} of field {name!r}; expected one of " + ", ".join(SAL_TYPES),
            str(path),
            _line_of(elt, "IDL_Type"),
            "IDL_Type",
        )
    count = _int_text(texts, "Count", path, elt, 1)
    if count < 1:
        raise xml_error(
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
        raise xml_error(f"expected an integer, got {text!r}", str(path), _line_of(parent, name), name) from None


def _parse_topic(elt: etree._Element, path: Path, strip_prefix: str | None) -> TopicDef:
    full_name = _text(elt, "EFDB_Topic", path)
    if strip_prefix is not None:
        if not full_name.startswith(strip_prefix):
            raise xml_error(
                f"EFDB_Topic {full_name!r} must start with {strip_prefix!r}",
                str(path),
                elt.sourceline,
                "EFDB_Topic",
            )
        sal_name = full_name[len(strip_prefix) :]
    else:
        _, sep, sal_name = full_name.partition("_")
        if not sep or not sal_name:
            raise xml_error(
                f"EFDB_Topic {full_name!r} must be <Component>_<name>",
                str(path),
                elt.sourceline,
                "EFDB_Topic",
            )
    check_name(sal_name, "the topic name in EFDB_Topic", path, _line_of(elt, "EFDB_Topic"), "EFDB_Topic")
    items = _parse_items(elt, path, sal_name)
    enums: dict[str, EnumInfo] = {}
    for enum_elt in elt.iterchildren("Enumeration"):
        _merge_enums(enums, _parse_enums(enum_elt, path), path)
    category_elt = elt.find("Category")
    category = category_elt.text.strip() if category_elt is not None and category_elt.text else None
    description = _text(elt, "Description", path, "")
    return TopicDef(sal_name, description, items, enums, category, _where(path, elt))


def _parse_items(elt: etree._Element, path: Path, sal_name: str) -> tuple[FieldInfo, ...]:
    items: list[FieldInfo] = []
    seen: set[str] = set()
    for item_elt in elt.iterchildren("item"):
        info = _parse_item(item_elt, path)
        if info.name in seen:
            raise xml_error(
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


def _fast_topic(chunk: str, source: str) -> TopicDef | None:
    """A topic from its flattened text, or None to use the element parser."""
    header, *records = chunk.split(_SEP_ITEM)
    topic_values = header.split(_SEP_FIELD)
    if len(topic_values) != 3 or records[-1:] != [""]:
        return None
    full_name, description, n_extra = topic_values
    _, sep, sal_name = full_name.partition("_")
    if not sal_name or n_extra != "0" or _AVRO_NAME.fullmatch(sal_name) is None:
        return None
    items = _fast_items(records[:-1])
    if items is None:
        return None
    return TopicDef(sal_name, description, items, {}, None, source)


def _fast_items(records: list[str]) -> tuple[FieldInfo, ...] | None:
    items: list[FieldInfo] = []
    seen: set[str] = set()
    for record in records:
        values = record.split(_SEP_FIELD)
        if len(values) != 7:
            return None
        name, sal_type, count_text, units, description, size_text, n_enums = values
        if name in seen or sal_type not in SAL_TYPES or n_enums != "0" or _AVRO_NAME.fullmatch(name) is None:
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
            raise xml_error(
                f"unexpected element <{child.tag}>; expected <{expected_tag}> or <Enumeration>",
                str(path),
                child.sourceline,
                str(child.tag),
            )


# --------------------------------------------------------------------------- directory-level files
# SALSubsystems.xml and SALGenerics.xml are shared by every component: parse them
# once per directory and file version.


@attrs.frozen
class Subsystem:
    name: str
    description: str
    index_enumeration: str
    added_generics: tuple[str, ...]
    path: str
    line: int


@attrs.frozen
class Generics:
    topics: dict[str, TopicDef]
    categories: dict[str, list[TopicDef]]
    enums: dict[str, EnumInfo]


# Keyed by value (kind, path) and checked against the file's mtime: one
# entry per definition file read, replaced when the file changes.
_cache: dict[tuple[str, str], tuple[int, Any]] = {}


def cached(kind: str, path: Path, build: Callable[[Path], Any]) -> Any:
    """``build(path)``, remembered until the file changes."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise xml_error(f"cannot read file: {exc.strerror}", str(path)) from None
    key = (kind, str(path))
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = build(path)
    _cache[key] = (stamp, value)
    return value


def store_cached(kind: str, path: Path, stamp: int, value: Any) -> None:
    """Remember a value built ahead (by a worker thread) for `cached`."""
    _cache[(kind, str(path))] = (stamp, value)


def clear_cache() -> None:
    """Forget every parsed file (benchmarks of cold loads)."""
    _cache.clear()


def build_subsystems(path: Path) -> dict[str, Subsystem]:
    root = _parse(path)
    result: dict[str, Subsystem] = {}
    for elt in root.iterchildren("SALSubsystem"):
        name = check_name(_text(elt, "Name", path).strip(), "component Name", path, _line_of(elt, "Name"), "Name")
        if name in result:
            raise xml_error(f"duplicate component {name!r}", str(path), elt.sourceline, "SALSubsystem")
        generics = ("mandatory",) + tuple(
            g.strip() for g in _text(elt, "AddedGenerics", path, "").split(",") if g.strip()
        )
        result[name] = Subsystem(
            name=name,
            description=_text(elt, "Description", path, ""),
            index_enumeration=_text(elt, "IndexEnumeration", path).strip(),
            added_generics=generics,
            path=str(path),
            line=int(elt.sourceline or 0),
        )
    return result


def build_generics(path: Path) -> Generics:
    root = _parse(path)
    topics: dict[str, TopicDef] = {}
    categories: dict[str, list[TopicDef]] = {}
    enums: dict[str, EnumInfo] = {}
    for set_elt in root:
        if set_elt.tag == "Enumeration":
            _merge_enums(enums, _parse_enums(set_elt, path), path)
            continue
        topic_tag = _SET_ROOTS.get(str(set_elt.tag))
        if topic_tag is None:
            raise xml_error(
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
                raise xml_error(
                    f"duplicate generic topic {topic.sal_name!r}",
                    str(path),
                    elt.sourceline,
                    str(elt.tag),
                )
            topics[topic.sal_name] = topic
            if topic.category:
                categories.setdefault(topic.category, []).append(topic)
    return Generics(topics, categories, enums)


def build_component_file(path: Path) -> tuple[list[TopicDef], dict[str, EnumInfo]]:
    root = _parse(path)
    topic_tag = _SET_ROOTS.get(str(root.tag))
    if topic_tag is None:
        raise xml_error(
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
