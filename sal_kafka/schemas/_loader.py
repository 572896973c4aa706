"""Bind topic definitions into components: ``ComponentInfo.load`` and friends.

Reads SALSubsystems.xml, expands each component's AddedGenerics from
SALGenerics.xml, adds the topics of its own files (`_xml`) and camera
``.avsc`` files (`_avsc`), the private fields and the ackcmd topic.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._util import gc_paused
from ..errors import UnknownComponentError, XmlError
from ._avsc import avsc_topics
from ._model import (
    ACKCMD_FIELDS,
    ComponentInfo,
    FieldInfo,
    FieldMap,
    TopicDef,
    TopicInfo,
    default_xml_dir,
    hooks,
    private_fields,
)
from ._xml import (
    TOPIC_FILES,
    Generics,
    Subsystem,
    build_component_file,
    build_generics,
    build_subsystems,
    cached,
    store_cached,
    xml_error,
)

__all__ = ["load_component", "load_components", "list_components"]

log = logging.getLogger("sal_kafka.xml")


def load_components(
    names: Sequence[str] = (), xml_dir: str | os.PathLike[str] | None = None, topic_subname: str = "sal"
) -> list[ComponentInfo]:
    """Load the named components, or every component of ``xml_dir`` when ``names`` is empty.

    Files are parsed two at a time ahead of the build: lxml releases the GIL
    while it parses and transforms, so on two cores the C work of the next
    files overlaps the Python work of binding the current component. Parse
    errors are not raised by the workers: the normal load meets the file
    again and raises them, in order.
    """
    folder = _resolve_dir(xml_dir)
    with gc_paused():
        return _load_many(list(names) or list_components(folder), folder, topic_subname)


def _load_many(names: list[str], folder: Path, topic_subname: str) -> list[ComponentInfo]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = {
            name: [
                (path, pool.submit(_try_build, path))
                for suffix, _tag in TOPIC_FILES
                if (path := folder / name / f"{name}_{suffix}.xml").is_file()
            ]
            for name in names
        }
        components = []
        for name in names:
            for path, future in pending[name]:
                built = future.result()
                if built is not None:
                    store_cached("component", path, *built)
            components.append(load_component(name, folder, topic_subname))
    return components


def _try_build(path: Path) -> tuple[int, Any] | None:
    try:
        stamp = path.stat().st_mtime_ns
        return stamp, build_component_file(path)
    except (XmlError, OSError):
        return None


def _resolve_dir(xml_dir: str | os.PathLike[str] | None) -> Path:
    return Path(xml_dir) if xml_dir is not None else default_xml_dir()


def _subsystems(xml_dir: Path) -> dict[str, Subsystem]:
    result: dict[str, Subsystem] = cached("subsystems", xml_dir / "SALSubsystems.xml", build_subsystems)
    return result


def list_components(xml_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the components of ``SALSubsystems.xml`` in ``xml_dir``, in file order."""
    return list(_subsystems(_resolve_dir(xml_dir)))


def _select_generics(sub: Subsystem, generics: Generics, xml_dir: Path) -> list[TopicDef]:
    """Expand ``AddedGenerics``: categories (``csc``) and topic names (``command_x``)."""
    selected: list[TopicDef] = []
    for entry in sub.added_generics:
        if "_" in entry:
            topic = generics.topics.get(entry)
            if topic is None:
                raise xml_error(
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
                raise xml_error(
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
            path=str(folder / "SALSubsystems.xml"),
        )
    generics: Generics = cached("generics", folder / "SALGenerics.xml", build_generics)
    enums = dict(generics.enums)

    defs: dict[str, TopicDef] = {}
    for topic in _select_generics(sub, generics, folder):
        _add_topic(defs, topic, name)
    camera = avsc_topics(name, folder)
    if not (folder / name).is_dir() and not camera:
        log.warning(
            "%s is listed in %s:%d but has no folder %s: it gets only its generic topics",
            name,
            sub.path,
            sub.line,
            folder / name,
        )
    for suffix, _tag in TOPIC_FILES:
        path = folder / name / f"{name}_{suffix}.xml"
        if not path.is_file():
            continue  # any of the three files may be missing
        topics, file_enums = cached("component", path, build_component_file)
        enums.update(file_enums)
        for topic in topics:
            _add_topic(defs, topic, name)

    indexed = sub.index_enumeration != "no"
    bound = [_bind(t, name, topic_subname, indexed) for t in defs.values()]
    bound.append(_ackcmd(name, topic_subname, indexed))
    topics_by_attr = {t.attr_name: t for t in bound}
    # Camera topics given as .avsc replace a same-named XML topic in place.
    for _sal_name, topic in camera:
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


def _add_topic(defs: dict[str, TopicDef], topic: TopicDef, component: str) -> None:
    if topic.sal_name in defs:
        path, _, line = topic.source.rpartition(":")
        raise xml_error(
            f"duplicate topic {topic.sal_name!r} in component {component} "
            f"(first defined at {defs[topic.sal_name].source})",
            path,
            int(line),
            "EFDB_Topic",
        )
    defs[topic.sal_name] = topic


def _bind(topic: TopicDef, component: str, subname: str, indexed: bool, private_last: bool = False) -> TopicInfo:
    # A generic topic has the same fields in every component: its field map
    # is built once per indexedness, kept on its definition, and shared.
    fields = topic.field_maps.get(indexed)
    if fields is None:
        fields = topic.field_maps[indexed] = _topic_fields(topic, indexed, private_last)
    return TopicInfo(
        component_name=component,
        topic_subname=subname,
        sal_name=topic.sal_name,
        fields=fields,
        description=topic.description,
        indexed=indexed,
        enums=topic.enums,
        source=topic.source,
    )


def _topic_fields(topic: TopicDef, indexed: bool, private_last: bool) -> FieldMap:
    private = private_fields(indexed)
    ordered = topic.items + private if private_last else private + topic.items
    fields: dict[str, FieldInfo] = {}
    for info in ordered:
        if info.name in fields:
            path, _, line = topic.source.rpartition(":")
            raise xml_error(
                f"field {info.name!r} of topic {topic.sal_name!r} clashes with a private field",
                path,
                int(line),
                "EFDB_Name",
            )
        fields[info.name] = info
    return FieldMap(fields.values())


# the same fields in every component: one map each, shared (and so their schema)
_ACKCMD_FIELDS = {indexed: FieldMap(private_fields(indexed) + ACKCMD_FIELDS) for indexed in (False, True)}


def _ackcmd(component: str, subname: str, indexed: bool) -> TopicInfo:
    return TopicInfo(
        component_name=component,
        topic_subname=subname,
        sal_name="ackcmd",
        fields=_ACKCMD_FIELDS[indexed],
        description="Command acknowledgement",
        indexed=indexed,
    )


hooks.install(load_component=load_component, list_components=list_components)
