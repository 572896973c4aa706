"""Python source for the data classes of topics and for enumerations.

One generator serves both uses: ``sal-kafka codegen`` writes its output as
modules, and `_classes` executes the same text at run time, so generated and
run-time classes cannot drift apart.
"""

from __future__ import annotations

import keyword
import textwrap
from collections.abc import Iterable

from ..options import Style
from ..schemas._model import ComponentInfo, EnumInfo, FieldInfo, TopicInfo
from ..schemas._saltypes import INT_RANGES

__all__ = ["Style", "HEADERS", "class_source", "enum_source", "module_source", "member_name"]


def _py_name(f: FieldInfo) -> str:
    """Name of the Python scalar type of a field's items (``int``, ``float``, ...)."""
    return f.python_type.__name__


#: Imports each generated module starts with.
HEADERS: dict[str, str] = {
    "msgspec": ("import enum\nfrom typing import Annotated\n\nimport msgspec\nfrom msgspec import Meta\n"),
    "attrs": (
        "import enum\nfrom collections.abc import Callable\nfrom typing import Any\n\n"
        "import attrs\nfrom attrs import validators as v\n\n\n"
        "def _sal_int(lo: int, hi: int) -> Callable[[Any, Any, Any], None]:\n"
        '    """An int in [lo, hi], not a bool (bool is an int to isinstance)."""\n\n'
        "    def check(instance: Any, attribute: Any, value: Any) -> None:\n"
        "        if type(value) is bool or not isinstance(value, int):\n"
        '            raise TypeError(f"{attribute.name!r} must be int, got {type(value).__name__}")\n'
        "        if not lo <= value <= hi:\n"
        '            raise ValueError(f"{attribute.name!r} must be in [{lo}, {hi}], got {value}")\n\n'
        "    return check\n\n\n"
        "def _sal_ints(count: int, lo: int, hi: int) -> Callable[[Any, Any, Any], None]:\n"
        '    """A list of exactly count ints in [lo, hi]."""\n'
        "    item = _sal_int(lo, hi)\n\n"
        "    def check(instance: Any, attribute: Any, value: Any) -> None:\n"
        "        if not isinstance(value, list):\n"
        '            raise TypeError(f"{attribute.name!r} must be a list, got {type(value).__name__}")\n'
        "        if len(value) != count:\n"
        '            raise ValueError(f"Length of {attribute.name!r} must be {count}, got {len(value)}")\n'
        "        for x in value:\n"
        "            item(instance, attribute, x)\n\n"
        "    return check\n"
    ),
}


def member_name(name: str) -> str:
    """A valid identifier for an enum member: ``None`` -> ``None_``, ``2FACE`` -> ``_2FACE``."""
    if keyword.iskeyword(name):
        return name + "_"
    if not name.isidentifier():
        return "_" + name
    return name


def enum_source(info: EnumInfo, name: str | None = None) -> str:
    """``class <name>(enum.IntEnum)`` for an enumeration."""
    lines = [f"class {name or info.name}(enum.IntEnum):"]
    lines.append(f'    """Enumeration {info.name} (from {_source_name(info.source)})."""\n')
    lines += [f"    {member_name(m)} = {v}" for m, v in info.members]
    return "\n".join(lines) + "\n"


def _source_name(source: str) -> str:
    """``file:line`` with only the file's base name, so generated code does not leak paths."""
    path, _, line = source.rpartition(":")
    return f"{path.rsplit('/', 1)[-1]}:{line}" if path else source


def _docstring(topic: TopicInfo) -> str:
    lines = [
        (topic.description or f"Topic {topic.sal_name}.").strip().replace('"""', "'''"),
        "",
        f"Kafka topic ``{topic.kafka_name}``.",
        "",
        "Attributes",
        "----------",
    ]
    for f in topic.fields.values():
        kind = _py_name(f)
        kind = f"list of {kind} ({f.count} items)" if f.count > 1 else kind
        if f.nullable:
            kind += " or None"
        lines.append(f"{f.name} : {kind}")
        text = " ".join((f.description or "").split()) or f.name
        extra = [f"SAL type {f.sal_type}"]
        if f.units:
            extra.append(f"units {f.units}")
        if f.max_length:
            extra.append(f"at most {f.max_length} characters")
        if f.enum:
            extra.append(f"enumeration {f.enum.name}")
        lines.append(textwrap.indent(f"{text} ({'; '.join(extra)})", "    "))
    body = "\n".join(lines).replace("\\", "\\\\")
    return textwrap.indent(f'"""{body}\n"""', "    ")


def _default(f: FieldInfo) -> str:
    zero = f.type_info.zero
    return "None" if f.nullable else ('""' if isinstance(zero, str) else repr(zero))


def _msgspec_annotation(f: FieldInfo) -> str:
    scalar = _py_name(f)
    rng = INT_RANGES.get(f.sal_type)
    if rng is not None:
        scalar = f"Annotated[int, Meta(ge={rng[0]}, le={rng[1]})]"
    elif f.max_length:
        scalar = f"Annotated[str, Meta(max_length={f.max_length})]"
    if f.count > 1:
        return f"Annotated[list[{scalar}], Meta(min_length={f.count}, max_length={f.count})]"
    return f"{scalar} | None" if f.nullable else scalar


def _msgspec_field(f: FieldInfo) -> str:
    annotation = _msgspec_annotation(f)
    value = _default(f)
    if f.count > 1:
        value = f"msgspec.field(default_factory=lambda: [{value}] * {f.count})"
    return f"    {f.name}: {annotation} = {value}"


def _attrs_validator(f: FieldInfo) -> str:
    scalar = _py_name(f)
    rng = INT_RANGES.get(f.sal_type)
    if f.count > 1:
        if rng is not None:  # integer items: type (not bool) and range, as the scalars
            return f"_sal_ints({f.count}, {rng[0]}, {rng[1]})"
        return f"v.and_(v.instance_of(list), v.min_len({f.count}), v.max_len({f.count}))"
    kinds = "(int, float)" if scalar == "float" else scalar
    checks = [f"v.instance_of({kinds})"]
    if rng is not None:
        checks = [f"_sal_int({rng[0]}, {rng[1]})"]
    if f.max_length:
        checks.append(f"v.max_len({f.max_length})")
    check = checks[0] if len(checks) == 1 else f"v.and_({', '.join(checks)})"
    return f"v.optional({check})" if f.nullable else check


def _attrs_field(f: FieldInfo) -> str:
    scalar = _py_name(f)
    if f.count > 1:
        annotation = f"list[{scalar}]"
        default = f"factory=lambda: [{_default(f)}] * {f.count}"
    else:
        annotation = f"{scalar} | None" if f.nullable else scalar
        default = f"default={_default(f)}"
    return f"    {f.name}: {annotation} = attrs.field({default}, validator={_attrs_validator(f)})"


def class_source(topic: TopicInfo, style: Style, name: str | None = None) -> str:
    """Source of the data class of ``topic``, named ``name`` (default: its attr_name)."""
    name = name or topic.attr_name
    if style == "msgspec":
        head = f"class {name}(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):"
        fields = [_msgspec_field(f) for f in topic.fields.values()]
    elif style == "attrs":
        head = f"@attrs.define(slots=True, kw_only=True)\nclass {name}:"
        fields = [_attrs_field(f) for f in topic.fields.values()]
    else:
        raise ValueError(f"unknown style {style!r}; expected 'msgspec' or 'attrs'")
    return "\n".join([head, _docstring(topic), "", *fields]) + "\n"


def module_source(component: ComponentInfo, style: Style) -> str:
    """A whole module: the component's enumerations and one class per topic."""
    parts = [
        f'"""Data classes of SAL component {component.name}, generated by sal-kafka.\n\n'
        f"Style {style}; {len(component.topics)} topics. Do not edit: regenerate with\n"
        f'``sal-kafka codegen --style {style}``.\n"""\n\n'
        "# ruff: noqa: N801, E501\n",
        HEADERS[style],
    ]
    for enum_name, info in _all_enums(component):
        parts.append("\n\n" + enum_source(info, enum_name))
    for topic in component:
        parts.append("\n\n" + class_source(topic, style))
    names = [n for n, _ in _all_enums(component)] + [t.attr_name for t in component]
    parts.append("\n\n__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n")
    return "".join(parts)


def _all_enums(component: ComponentInfo) -> Iterable[tuple[str, EnumInfo]]:
    """Component enums, then topic and field enums under names that do not clash."""
    seen: dict[str, EnumInfo] = {}
    for info in component.enums.values():
        seen[info.name] = info
        yield info.name, info
    for topic in component:
        nested = list(topic.enums.values()) + [f.enum for f in topic.fields.values() if f.enum]
        for info in nested:
            name = info.name
            if name in seen and seen[name] == info:
                continue
            suffix = 1
            while name in seen:
                name = f"{topic.attr_name}_{info.name}" + (f"{suffix}" if suffix > 1 else "")
                suffix += 1
            seen[name] = info
            yield name, info
