"""The documentation's code refers only to what the package exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sal_kafka

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_FROM_IMPORT = re.compile(r"^from sal_kafka import (?:\(([\w,\s]+)\)|([\w, ]+))", re.MULTILINE)
_ATTRIBUTE = re.compile(r"\bsal_kafka\.([A-Za-z]\w*)")


def _names(code: str) -> set[str]:
    groups = [a or b for a, b in _FROM_IMPORT.findall(code)]
    names = {n.strip() for group in groups for n in group.split(",") if n.strip()}
    return names | set(_ATTRIBUTE.findall(code))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_use_exported_names(page: Path) -> None:
    code = "\n".join(_BLOCK.findall(page.read_text()))
    missing = sorted(n for n in _names(code) if n not in sal_kafka.__all__)
    assert missing == [], f"{page.name} uses names sal_kafka does not export: {missing}"


def test_the_pages_have_python_examples() -> None:
    used = set().union(*(_names("\n".join(_BLOCK.findall(p.read_text()))) for p in PAGES))
    assert {"Writer", "Reader", "KafkaConfig", "Codec", "ComponentInfo", "SchemaRegistry"} <= used
