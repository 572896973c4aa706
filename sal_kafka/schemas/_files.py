"""The schema generation step: write or check one ``.avsc`` file per topic."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._util import gc_paused
from ..errors import ConfigError
from ._avro import dumps_schema
from ._model import ComponentInfo

__all__ = [
    "SchemaSummary",
    "avro_schemas",
    "render_schemas",
    "write_schemas",
    "check_schemas",
]


@attrs.frozen
class SchemaSummary:
    """What a generation or check run did.

    Attributes
    ----------
    components : int
        Number of components.
    topics : int
        Number of topics (one ``.avsc`` each).
    seconds : float
        Wall time of the run.
    written : int
        Files written (generation) or found different (check).
    diffs : tuple of str
        Readable differences found by a check; empty when all match.
    checked : bool
        True for a check run, False for a generation run.
    """

    components: int
    topics: int
    seconds: float
    written: int = 0
    diffs: tuple[str, ...] = ()
    checked: bool = False

    def __str__(self) -> str:
        verb = "differ" if self.checked else "written"
        return f"{self.components} components, {self.topics} topics, {self.written} files {verb}, {self.seconds:.3f} s"


def avro_schemas(components: Iterable[ComponentInfo]) -> dict[str, dict[str, Any]]:
    """``{kafka topic name: Avro schema}`` of every topic of ``components``."""
    with gc_paused():
        return {t.kafka_name: t.avro_schema for c in components for t in c}


def render_schemas(components: Iterable[ComponentInfo]) -> dict[Path, str]:
    """``{relative path: text}`` of every topic's ``<Component>/<sal_name>.avsc``."""
    with gc_paused():
        return {Path(c.name) / f"{t.sal_name}.avsc": dumps_schema(t.avro_schema) for c in components for t in c}


def write_schemas(components: Sequence[ComponentInfo], out: str | os.PathLike[str]) -> SchemaSummary:
    """Write every topic's schema under ``out``; unchanged files are left untouched."""
    start = time.perf_counter()
    root = Path(out)
    written = 0
    for rel, text in render_schemas(components).items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
                written += 1
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return SchemaSummary(
        len(components),
        sum(len(c.topics) for c in components),
        time.perf_counter() - start,
        written,
    )


def check_schemas(components: Sequence[ComponentInfo], out: str | os.PathLike[str]) -> SchemaSummary:
    """Compare the schemas with those under ``out``; report missing, stale and changed files."""
    start = time.perf_counter()
    root = Path(out)
    expected = render_schemas(components)
    diffs: list[str] = []
    for rel, text in expected.items():
        path = root / rel
        if not path.is_file():
            diffs.append(f"missing: {path}")
            continue
        current = path.read_text()
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=str(path),
                tofile=f"{rel} (from the XML)",
            )
            diffs.append("".join(diff))
    for component in components:
        folder = root / component.name
        for path in sorted(folder.glob("*.avsc")) if folder.is_dir() else ():
            if path.relative_to(root) not in expected:
                diffs.append(f"stale: {path} (no such topic in the XML)")
    return SchemaSummary(
        len(components),
        sum(len(c.topics) for c in components),
        time.perf_counter() - start,
        len(diffs),
        tuple(diffs),
        checked=True,
    )
