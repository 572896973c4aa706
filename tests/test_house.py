"""The library's shape: no import cycle, one SAL type table, errors the CLI can print."""

from __future__ import annotations

import ast
from pathlib import Path

import sal_kafka
from sal_kafka.schemas import SAL_TYPE_TABLE

PACKAGE = Path(sal_kafka.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").is_file()


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The library modules an ``from ... import`` reaches (a submodule when it names one)."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    base = package.split(".")
    if node.level:
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("sal_kafka"):
        return []
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        found.append(
            sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file() or _is_package(sub) else target
        )
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every import statement, lazy ones included."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        edges = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                edges.update(m for m in _resolve(module, node) if m != module)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("sal_kafka") and a.name != module)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # a package importing its own submodules is how packages work, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_the_library_modules() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_model_imports_no_loader_or_builder() -> None:
    graph = import_graph()
    assert graph["sal_kafka.schemas._model"] <= {"sal_kafka.schemas._saltypes", "sal_kafka.options", "sal_kafka.errors"}
    assert graph["sal_kafka.schemas._saltypes"] == set()


def test_one_sal_type_table() -> None:
    """No other module spells out a SAL type mapping: a dict literal keyed by two or more IDL names."""
    names = {t.idl for t in SAL_TYPE_TABLE}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_saltypes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                assert len(keys & names) < 2, f"{path.name}:{node.lineno} has a SAL type table of its own"


def test_public_objects_report_their_public_module() -> None:
    assert sal_kafka.Writer.__module__ == "sal_kafka"
    assert sal_kafka.ComponentInfo.__module__ == "sal_kafka"
    from sal_kafka import testing, wire

    assert wire.frame.__module__ == "sal_kafka.wire"
    assert testing.MemoryTransport.__module__ == "sal_kafka.testing"


def test_moved_names_still_work_with_a_warning() -> None:
    import pytest

    from sal_kafka.wire import MAX_SEQ_NUM

    with pytest.warns(DeprecationWarning, match=r"sal_kafka.MAX_SEQ_NUM moved: use sal_kafka.wire.MAX_SEQ_NUM"):
        assert sal_kafka.MAX_SEQ_NUM == MAX_SEQ_NUM
    from sal_kafka.options import Validation
    from sal_kafka.registry import RegistryConfig

    with pytest.warns(
        DeprecationWarning, match=r"sal_kafka.RegistryConfig moved: use sal_kafka.registry.RegistryConfig"
    ):
        assert sal_kafka.RegistryConfig is RegistryConfig
    from sal_kafka import codec, schemas, types

    with pytest.warns(DeprecationWarning, match=r"sal_kafka.types.Validation moved: use sal_kafka.options.Validation"):
        assert types.Validation is Validation
    with pytest.warns(DeprecationWarning, match=r"sal_kafka.schemas.explain moved: use sal_kafka.codec.explain"):
        assert schemas.explain is codec.explain
    with pytest.raises(AttributeError):
        sal_kafka.no_such_name  # noqa: B018


def test_the_build_lists_every_package() -> None:
    """pyproject.toml lists the packages (the bundled definitions are mapped in):
    a package missing from the list would be missing from the wheel."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "sal_kafka").rglob("__init__.py")}
    assert listed == found | {"sal_kafka.xml_schemas"}
