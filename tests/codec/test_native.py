"""The native core of the compiled codec (`sal_kafka/codec/_native.c`).

It takes the common case and hands anything else to the generated Python
engine: so on every input, valid or not, the two engines must give the same
bytes, the same values or the same error. The whole corpus is checked byte
for byte in test_codec_corpus.py; here the inputs the core hands over, the
memory it must not leak, and the install without a compiler.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sal_kafka import CodecError, ComponentInfo, ValidationError, attrs_class, msgspec_class
from sal_kafka.codec import NATIVE, Codec
from sal_kafka.codec._runtime import write_long
from tests.conftest import BUNDLED, SAL_INTERFACES, needs_corpus

KTEST = ComponentInfo.load("KTest", BUNDLED)
SCALARS = KTEST["evt_scalars"]
ARRAYS = KTEST["evt_arrays"]
ROOT = Path(__file__).resolve().parents[2]


def record(topic: Any, **values: Any) -> dict[str, Any]:
    out = {n: ([f.type_info.zero] * f.count if f.count > 1 else f.type_info.zero) for n, f in topic.fields.items()}
    out.update(values)
    return out


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gives: ("ok", value) or ("error", type name and message)."""
    try:
        return "ok", fn()
    except Exception as exc:  # compared between the engines, whatever it is
        return "error", f"{type(exc).__name__}: {exc}"


def test_the_native_core_is_built_and_used_by_default() -> None:
    """`make test` installs with the machine's compiler: a build that silently fell
    back to the Python engine would pass every other test, slower."""
    assert NATIVE, "sal_kafka.codec._native did not build (see the pip install output)"
    assert Codec(SCALARS).native and Codec(SCALARS).engine == "compiled"
    assert not Codec(SCALARS, engine="python").native
    assert not Codec(SCALARS, engine="fastavro").native


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


SCALAR_CASES: list[dict[str, Any]] = [
    {},
    {"double0": 1},  # an int for a double: strict's slow path accepts it
    {"float0": True},
    {"double0": np.float64(2.5)},
    {"float0": 1e39},  # float32 overflow
    {"float0": math.nan, "double0": -math.inf},
    {"int0": 2**31},  # beyond an Avro int
    {"int0": Level.HIGH},  # an IntEnum
    {"byte0": 256},  # beyond the SAL type only
    {"short0": -(2**15) - 1},
    {"unsignedShort0": -1},
    {"unsignedInt0": 2**32},
    {"longLong0": 2**63},
    {"longLong0": -(2**63)},
    {"long0": True},
    {"int0": 1.5},
    {"int0": np.int32(7)},
    {"boolean0": 1},
    {"boolean0": None},
    {"boolean0": np.bool_(True)},
    {"string0": "é\u20ac\U0001f600"},
    {"string0": "\ud800"},  # a lone surrogate: no UTF-8
    {"string0": Text("sub")},
    {"string0": b"bytes"},
    {"shortString": "x" * 20},  # IDL_Size
    {"string0": "\x00"},
]


@pytest.mark.parametrize("values", SCALAR_CASES, ids=repr)
@pytest.mark.parametrize("validation", ["none", "strict"])
def test_both_engines_agree_on_any_scalar(values: dict[str, Any], validation: Any) -> None:
    rec = record(SCALARS, **values)
    native, python = Codec(SCALARS), Codec(SCALARS, engine="python")
    got = outcome(lambda: native.encode(rec, validation))
    assert got == outcome(lambda: python.encode(rec, validation))
    cls = attrs_class(SCALARS)
    try:
        instance = cls(**rec)
    except (TypeError, ValueError):
        return  # the class's own validators refuse it
    assert outcome(lambda: native.encode(instance, validation)) == outcome(lambda: python.encode(instance, validation))


ARRAY_CASES: list[dict[str, Any]] = [
    {"double0": (1.0, 2.0, 3.0, 4.0, 5.0)},  # a tuple
    {"float0": np.arange(5, dtype="<f4")},
    {"double0": np.arange(5, dtype="<f8")},
    {"double0": np.arange(5, dtype=">f8")},
    {"float0": [1, 2, 3, 4, True]},
    {"float0": [1.0, 2.0, 3.0, 4.0, 1e39]},
    {"double0": [1.0] * 4},  # another length than Count
    {"double0": [1.0] * 6},
    {"int0": [1, 2, 3, 4, 2**31]},
    {"int0": (1, 2, 3, 4, 5)},
    {"int0": np.arange(5, dtype="<i4")},
    {"int0": [True, False, 1, 2, 3]},
    {"byte0": [0, 255, 1, 2, 256]},
    {"longLong0": [2**62, -(2**63), 0, 1, 2**63 - 1]},
    {"longLong0": [2**64, 0, 0, 0, 0]},
    {"unsignedInt0": [0, 2**32 - 1, 5, 6, -1]},
    {"int0": [Level.HIGH] * 5},
    {"int0": [1.0, 2, 3, 4, 5]},
    {"boolean0": [True, False, 1, 0, True]},
    {"boolean0": (True, False, True, False, True)},
    {"boolean0": np.array([True, False, True, False, True])},
    {"boolean0": [True, False, None, "x", True]},
    {"double0": "12345"},
    {"double0": None},
]


@pytest.mark.parametrize("values", ARRAY_CASES, ids=repr)
@pytest.mark.parametrize("validation", ["none", "strict"])
def test_both_engines_agree_on_any_array(values: dict[str, Any], validation: Any) -> None:
    rec = record(ARRAYS, **values)
    native, python = Codec(ARRAYS), Codec(ARRAYS, engine="python")
    assert outcome(lambda: native.encode(rec, validation)) == outcome(lambda: python.encode(rec, validation))


@pytest.mark.parametrize("topic", [SCALARS, ARRAYS], ids=lambda t: t.attr_name)
def test_both_engines_agree_on_the_shape_of_a_dict(topic: Any) -> None:
    native, python = Codec(topic), Codec(topic, engine="python")
    full = record(topic)
    missing = dict(full)
    del missing["salIndex"]
    renamed = dict(missing, bogus=1)  # as many keys, one unknown
    for rec in (full, missing, renamed, dict(full, bogus=1), {}):
        for validation in ("none", "strict"):
            assert outcome(lambda r=rec, v=validation: native.encode(r, v)) == outcome(
                lambda r=rec, v=validation: python.encode(r, v)
            )


class Partial:
    """An object lacking a field: encode_object hands it over."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def test_both_engines_agree_on_objects() -> None:
    native, python = Codec(SCALARS), Codec(SCALARS, engine="python")
    rec = record(SCALARS)
    instance = msgspec_class(SCALARS)(**rec)
    assert native.encode(instance, "strict") == python.encode(instance, "strict") == python.encode(rec)
    del rec["double0"]
    partial = Partial(rec)
    assert outcome(lambda: native.encode(partial)) == outcome(lambda: python.encode(partial))


def _bodies() -> list[bytes]:
    """Bodies the core hands over: other block layouts, corrupt ones, trailing bytes."""
    codec = Codec(ARRAYS)
    good = codec.encode(record(ARRAYS, int0=[1, 200, -3, 4, 5], boolean0=[True] * 5))
    # the first array (boolean0, 5 items) as two blocks, and as a negative count with a size
    two_blocks = b"\x04\x01\x01\x06\x01\x01\x01\x00"
    negative = write_long(-5) + write_long(5) + b"\x01" * 5 + b"\x00"
    block = b"\x0a" + b"\x01" * 5 + b"\x00"  # boolean0: one block of 5 items
    at = good.index(block)
    header, rest = good[:at], good[at + len(block) :]
    return [
        good,
        header + two_blocks + rest,
        header + negative + rest,
        good + b"\x00",
        good[:-1],
        good[:10],
        b"",
        header + b"\x0a" + b"\x02" * 5 + b"\x00" + rest,  # booleans that are not 0 or 1
        header + b"\xff" * 11 + rest,  # a varint beyond 64 bits
    ]


@pytest.mark.parametrize("body", _bodies(), ids=lambda b: f"{len(b)}B")
def test_both_engines_agree_on_any_body(body: bytes) -> None:
    native, python = Codec(ARRAYS), Codec(ARRAYS, engine="python")
    cls = msgspec_class(ARRAYS)
    assert outcome(lambda: native.decode(body)) == outcome(lambda: python.decode(body))
    assert outcome(lambda: native.decode(body, cls=cls)) == outcome(lambda: python.decode(body, cls=cls))
    for kind in (bytearray, memoryview):
        assert outcome(lambda k=kind: native.decode(k(body))) == outcome(lambda k=kind: python.decode(k(body)))


def test_strings_and_scalars_decode_alike() -> None:
    native, python = Codec(SCALARS), Codec(SCALARS, engine="python")
    rec = record(SCALARS, string0="é\u20ac\U0001f600" * 30, longLong0=-(2**63), unsignedInt0=2**32 - 1)
    body = native.encode(rec, "strict")
    assert native.decode(body) == python.decode(body) == rec
    bad_utf8 = body.replace("é".encode(), b"\xc3\x28", 1)
    assert outcome(lambda: native.decode(bad_utf8)) == outcome(lambda: python.decode(bad_utf8))
    assert outcome(lambda: native.decode(bad_utf8))[0] == "error"
    scalar_bool = bytearray(body)
    flipped = native.encode(dict(rec, boolean0=True))
    (where,) = [i for i, (a, b) in enumerate(zip(body, flipped, strict=True)) if a != b]
    scalar_bool[where] = 7  # boolean0: a byte that is neither 0 nor 1
    assert outcome(lambda: native.decode(bytes(scalar_bool))) == outcome(lambda: python.decode(bytes(scalar_bool)))


@needs_corpus
def test_nullable_fields_of_camera_topics() -> None:
    topic = ComponentInfo.load("MTCamera", SAL_INTERFACES)["tel_camenv"]
    native, python = Codec(topic), Codec(topic, engine="python")
    assert native.native
    nullables = [f.name for f in topic.fields.values() if f.nullable]
    base = record(topic)
    cases = [
        base,
        {**base, **dict.fromkeys(nullables)},
        {**base, nullables[0]: 1},  # an int for a nullable double
        {**base, nullables[0]: True},
        {**base, nullables[1]: 5},  # an int for a nullable string
    ]
    for rec in cases:
        for validation in ("none", "strict"):
            got = outcome(lambda r=rec, v=validation: native.encode(r, v))
            assert got == outcome(lambda r=rec, v=validation: python.encode(r, v))
            if got[0] == "ok":
                assert native.decode(got[1]) == python.decode(got[1])
    body = native.encode({**base, nullables[0]: None})
    at = body.index(b"\x00")  # the first union branch byte
    broken = body[:at] + b"\x04" + body[at + 1 :]
    assert outcome(lambda: native.decode(broken)) == outcome(lambda: python.decode(broken))


def test_the_core_leaks_no_memory() -> None:
    """Every path, the handed-over and the failing ones included, 5,000 times (after
    3,000 traced ones): a missed reference would grow the heap by at least one object
    (24 bytes or more) per call, over 120 kB in all."""
    native = Codec(ARRAYS)
    fns = native._fns
    assert fns is not None and fns.native
    cls = msgspec_class(ARRAYS)
    good = record(ARRAYS, int0=[1, 2**20, -3, 4, 5])
    body = native.encode(good)
    bad_body = body[:-3]
    tuple_rec = record(ARRAYS, double0=(1.0,) * 5)
    wrong = record(ARRAYS, int0=[1, 2, 3, 4, 2**40])
    scalars = Codec(SCALARS)
    srec = record(SCALARS, string0="é" * 40)
    sbody = scalars.encode(srec)

    def one_of_each() -> None:
        fns.encode_dict(good)
        fns.encode_strict_dict(good)
        fns.encode_dict(tuple_rec)
        fns.decode_dict(body)
        fns.decode_into(body, cls)
        scalars.decode(sbody)
        scalars.encode(srec, "strict")
        for call in (lambda: fns.encode_strict_dict(wrong), lambda: fns.decode_dict(bad_body)):
            with contextlib.suppress(Exception):
                call()

    for _ in range(1000):  # warm every cache and free list
        one_of_each()
    tracemalloc.start()
    for _ in range(3000):  # what tracing itself and the allocator settle into
        one_of_each()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(5000):
        one_of_each()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 60_000, f"the heap grew by {grown} bytes over 5,000 rounds"


def test_program_refuses_a_bad_field_table() -> None:
    from sal_kafka.codec import _native  # type: ignore[attr-defined]

    fallbacks = [print] * 6
    with pytest.raises(ValueError, match="unsupported kind"):
        _native.Program([("s", 5, 3, False, 0, 0, 0)], fallbacks)  # an array of strings
    with pytest.raises(ValueError, match="expected 6 fallbacks"):
        _native.Program([], fallbacks[:2])
    with pytest.raises(TypeError, match="callable"):
        _native.Program([], [1] * 6)


def test_codec_errors_come_from_the_python_engine() -> None:
    native = Codec(ARRAYS)
    with pytest.raises(CodecError, match=r"corrupt Avro body: .*\(at byte"):
        native.decode(b"\x00" * 10)
    with pytest.raises(ValidationError, match=r"Expected int in \[0, 255\] \(byte\), got 256 - at \$\.byte0\[4\]"):
        native.encode(record(ARRAYS, byte0=[0, 255, 1, 2, 256]), "strict")


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler to take away")
def test_without_a_compiler_the_install_goes_on_and_the_python_engine_is_used(tmp_path: Path) -> None:
    """A machine with no C compiler: the wheel builds without the core, and the
    codec works, with the generated Python engine."""
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        env=env,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("sal_kafka-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sal_kafka/codec/_native.c" in names
    assert not [n for n in names if n.startswith("sal_kafka/codec/_native") and n.endswith(".so")]
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "from sal_kafka import Codec, ComponentInfo\n"
        "from sal_kafka.codec import NATIVE\n"
        "import sal_kafka\n"
        "t = ComponentInfo.load('KTest')['evt_scalars']\n"
        "c = Codec(t)\n"
        "r = c.decode(c.encode({n: f.default for n, f in t.fields.items()}, 'strict'))\n"
        "print(NATIVE, c.native, r['salIndex'], sal_kafka.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(target)),
        cwd=tmp_path,
    ).stdout.split()
    assert out[:3] == ["False", "False", "0"]
    assert out[3].startswith(str(target))
