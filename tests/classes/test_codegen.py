"""``sal-kafka codegen``: importable, typed, documented modules that behave
like the run-time classes, and pass ruff and mypy."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import msgspec
import pytest

from sal_kafka import Codec, ComponentInfo, ValidationError, attrs_class, enum_class, msgspec_class
from sal_kafka._cli import main
from tests.conftest import BUNDLED

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module", params=["msgspec", "attrs"])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    style = request.param
    root = tmp_path_factory.mktemp(f"gen_{style}")
    package = root / f"salgen_{style}"
    assert main(["codegen", "--style", style, "--xml-dir", str(BUNDLED), "--out", str(package)]) == 0
    sys.path.insert(0, str(root))
    yield style, package
    sys.path.remove(str(root))


def _module(style: str, component: str) -> Any:
    return importlib.import_module(f"salgen_{style}.{component.lower()}")


def _fields(cls: type) -> list[tuple[str, Any]]:
    if issubclass(cls, msgspec.Struct):
        info = msgspec.inspect.type_info(cls)
        return [(f.name, f.default if f.default is not msgspec.NODEFAULT else f.default_factory()) for f in info.fields]
    return [
        (a.name, a.default.factory() if isinstance(a.default, attrs.Factory) else a.default) for a in attrs.fields(cls)
    ]


@pytest.mark.parametrize("component", ["KTest", "KMirror"])
def test_generated_classes_behave_like_runtime_ones(generated: tuple[str, Path], component: str) -> None:
    style, _ = generated
    module = _module(style, component)
    comp = ComponentInfo.load(component, BUNDLED)
    runtime_of = msgspec_class if style == "msgspec" else attrs_class
    for topic in comp:
        gen_cls = getattr(module, topic.attr_name)
        run_cls = runtime_of(topic)
        assert _fields(gen_cls) == _fields(run_cls)
        assert gen_cls.__doc__ == run_cls.__doc__
        assert topic.kafka_name in (gen_cls.__doc__ or "")
        codec = Codec(topic)
        instance = gen_cls()
        assert codec.encode(instance, "strict") == codec.encode(run_cls(), "strict")
        assert codec.decode(codec.encode(instance), cls=gen_cls) == instance


def test_generated_validation_matches(generated: tuple[str, Path]) -> None:
    style, _ = generated
    topic = ComponentInfo.load("KTest", BUNDLED)["evt_arrays"]
    gen_cls = _module(style, "KTest").evt_arrays
    run_cls = (msgspec_class if style == "msgspec" else attrs_class)(topic)
    for cls in (gen_cls, run_cls):
        if style == "msgspec":
            with pytest.raises(msgspec.ValidationError, match=r"Expected `int` <= 255 - at `\$.byte0\[1\]`"):
                msgspec.convert({"byte0": [0, 300, 0, 0, 0]}, cls)
        else:
            with pytest.raises(ValueError, match="Length of 'int0' must be 5, got 1"):
                cls(int0=[1])
            with pytest.raises(ValueError, match=r"'byte0' must be in \[0, 255\], got 300"):
                cls(byte0=[0, 300, 0, 0, 0])
            with pytest.raises(TypeError, match="'int0' must be int, got bool"):
                cls(int0=[1, 2, True, 4, 5])
    if style == "msgspec":  # attrs classes refuse the bad length already when built
        with pytest.raises(ValidationError, match=r"Expected 5 items, got 4 - at \$.int0"):
            Codec(topic).encode(gen_cls(int0=[1, 2, 3, 4]), "strict")


def test_generated_enums(generated: tuple[str, Path]) -> None:
    style, _ = generated
    module = _module(style, "KTest")
    comp = ComponentInfo.load("KTest", BUNDLED)
    assert module.TestState.Done == 16 and module.TestState.Failed == 20
    runtime = enum_class(comp.enums["TestState"])
    assert [(m.name, m.value) for m in module.TestState] == [(m.name, m.value) for m in runtime]
    assert module.DriveMode.Auto == 4 and module.Lamp.Off == 0
    assert issubclass(module.SummaryState, int)


def test_generated_code_passes_ruff_and_mypy(generated: tuple[str, Path]) -> None:
    _, package = generated
    ruff = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", str(package)], capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", "--cache-dir=/dev/null", str(package)],
        capture_output=True,
        text=True,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_corpus_enum_member_names_are_valid_python() -> None:
    from sal_kafka.classes._source import member_name

    assert member_name("None") == "None_" and member_name("2FACE") == "_2FACE" and member_name("ok") == "ok"
