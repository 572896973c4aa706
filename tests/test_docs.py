"""The documentation's code refers only to what the package and its public namespaces export."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_FROM_IMPORT = re.compile(r"^from (sal_kafka(?:\.\w+)?) import (?:\(([\w,\s]+)\)|([\w, ]+))", re.MULTILINE)
_ATTRIBUTE = re.compile(r"\bsal_kafka\.([A-Za-z]\w*)(?:\.([A-Za-z]\w*))?")
NAMESPACES = ("wire", "schemas", "types", "testing", "observe", "sinks", "components")


def _names(code: str) -> set[tuple[str, str]]:
    """``(module, name)`` of every name the code takes from sal_kafka."""
    found = set()
    for module, a, b in _FROM_IMPORT.findall(code):
        found |= {(module, n.strip()) for n in (a or b).split(",") if n.strip()}
    for first, second in _ATTRIBUTE.findall(code):
        if first in NAMESPACES and second:
            found.add((f"sal_kafka.{first}", second))
        elif first not in NAMESPACES:
            found.add(("sal_kafka", first))
    return found


def _exported(module: str, name: str) -> bool:
    return name in importlib.import_module(module).__all__


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_use_exported_names(page: Path) -> None:
    code = "\n".join(_BLOCK.findall(page.read_text()))
    missing = sorted(f"{m}.{n}" for m, n in _names(code) if not _exported(m, n))
    assert missing == [], f"{page.name} uses names that are not exported: {missing}"


def test_the_pages_have_python_examples() -> None:
    used = {n for p in PAGES for _, n in _names("\n".join(_BLOCK.findall(p.read_text())))}
    assert {"Writer", "Reader", "KafkaConfig", "Codec", "ComponentInfo", "SchemaRegistry", "Session"} <= used


def test_every_public_name_is_documented_in_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    for module in ("sal_kafka", *(f"sal_kafka.{n}" for n in NAMESPACES)):
        undocumented = [n for n in importlib.import_module(module).__all__ if f"`{n}`" not in index]
        assert undocumented == [], f"docs/index.md does not list {module}: {undocumented}"


def test_every_metric_is_in_the_table() -> None:
    from sal_kafka.observe import METRIC_NAMES

    page = (ROOT / "docs" / "observe.md").read_text()
    assert [n for n in METRIC_NAMES if f"`{n}`" not in page] == []
