"""Schema generation for the whole ts_xml corpus (63 components, 3348 topics).

Run: ``make bench`` or
``.venv/bin/python -m pytest benchmarks/test_bench_schemas.py --benchmark-enable``.

``baseline_elementtree`` follows the algorithm of ts_xml's own ComponentInfo
(stdlib ElementTree; SALSubsystems.xml and SALGenerics.xml parsed again for
every component; one dict per field per topic). ts_xml is not on PyPI, so
this stand-in is what runs side by side here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from sal_kafka.schemas import AVRO_TYPES, PRIVATE_FIELDS, avro_schemas, clear_cache, load_components
from tests.conftest import SAL_INTERFACES, needs_corpus

pytestmark = needs_corpus

AVRO = dict(AVRO_TYPES)
ZERO = {"boolean": False, "float": 0.0, "double": 0.0, "string": ""}
PRIVATE = [(f.name, f.sal_type, f.description, f.units) for f in PRIVATE_FIELDS]


def _clear_caches() -> None:
    clear_cache()


def sal_kafka_generate() -> int:
    # Cold: the caches are emptied before each round (outside the timing),
    # so every file is parsed and every schema built.
    schemas = avro_schemas(load_components((), SAL_INTERFACES))
    return sum(len(s["fields"]) for s in schemas.values())


def _field(name: str, sal_type: str, count: int, units: str, description: str) -> dict[str, Any]:
    zero = ZERO.get(sal_type, 0)
    if sal_type == "string":
        count = 1
    if count > 1:
        return {
            "name": name,
            "type": {"type": "array", "items": AVRO[sal_type]},
            "default": [zero] * count,
            "description": description,
            "units": units,
        }
    return {
        "name": name,
        "type": AVRO[sal_type],
        "default": zero,
        "description": description,
        "units": units,
    }


def _text(elt: ElementTree.Element, name: str, default: str | None = None) -> str:
    sub = elt.find(name)
    if sub is None or sub.text is None:
        assert default is not None
        return default
    return sub.text


def baseline_elementtree() -> int:
    root = Path(SAL_INTERFACES)
    names = [_text(e, "Name") for e in ElementTree.parse(root / "SALSubsystems.xml").getroot()]
    total = 0
    for name in names:
        subsystems = ElementTree.parse(root / "SALSubsystems.xml").getroot()
        sub = next(e for e in subsystems if _text(e, "Name") == name)
        indexed = _text(sub, "IndexEnumeration").strip() != "no"
        generics_root = ElementTree.parse(root / "SALGenerics.xml").getroot()
        by_name, by_cat = {}, {}
        for gen in generics_root.findall("*/"):
            if gen.tag == "Enumeration":
                continue
            brief = _text(gen, "EFDB_Topic")[len("SALGeneric_") :]
            by_name[brief] = gen
            cat = gen.find("Category")
            if cat is not None and cat.text:
                by_cat.setdefault(cat.text, []).append(gen)
        elements = {}
        for g in ["mandatory"] + [x.strip() for x in _text(sub, "AddedGenerics").split(",")]:
            for elt in [by_name[g]] if "_" in g else by_cat[g]:
                elements[_text(elt, "EFDB_Topic").split("_", 1)[1]] = elt
        for suffix, tag in (
            ("Commands", "SALCommand"),
            ("Events", "SALEvent"),
            ("Telemetry", "SALTelemetry"),
        ):
            path = root / name / f"{name}_{suffix}.xml"
            if path.is_file():
                for elt in ElementTree.parse(path).getroot().findall(tag):
                    elements[_text(elt, "EFDB_Topic").split("_", 1)[1]] = elt
        for sal_name, elt in elements.items():
            fields = [_field(n, t, 1, u, d) for n, t, d, u in (PRIVATE if indexed else PRIVATE[1:])]
            for item in elt.findall("item"):
                fields.append(
                    _field(
                        _text(item, "EFDB_Name"),
                        _text(item, "IDL_Type"),
                        int(_text(item, "Count", "1")),
                        _text(item, "Units", "unitless"),
                        _text(item, "Description", ""),
                    )
                )
            schema = {
                "type": "record",
                "name": sal_name,
                "namespace": f"lsst.sal.{name}",
                "fields": fields,
                "description": _text(elt, "Description", ""),
            }
            total += len(schema["fields"])
    return total


@pytest.mark.benchmark(group="schemas: 63 components of ts_xml v28")
def test_sal_kafka(benchmark: Any) -> None:
    result = benchmark.pedantic(sal_kafka_generate, setup=_clear_caches, rounds=9, warmup_rounds=1)
    assert result > 40000


@pytest.mark.benchmark(group="schemas: 63 components of ts_xml v28")
def test_baseline_elementtree(benchmark: Any) -> None:
    assert benchmark.pedantic(baseline_elementtree, rounds=9, warmup_rounds=1) > 40000
