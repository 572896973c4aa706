"""Every validation mode accepts good records and rejects bad ones, with a message
that names the topic, the field path and index, what was expected and what was got."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sal_kafka import Codec, ComponentInfo, ValidationError, msgspec_class
from sal_kafka.options import ENGINES, VALIDATION_MODES
from tests.conftest import BUNDLED

KTEST = ComponentInfo.load("KTest", BUNDLED)
KMIRROR = ComponentInfo.load("KMirror", BUNDLED)


def good(topic_attr: str, component: ComponentInfo = KTEST) -> dict[str, Any]:
    topic = component[topic_attr]
    record = {name: (list(f.default) if f.count > 1 else f.default) for name, f in topic.fields.items()}
    for name, f in topic.fields.items():
        if f.sal_type == "float" and f.count > 1:
            record[name] = [float(i) + 0.5 for i in range(f.count)]
    return record


@pytest.mark.parametrize("mode", VALIDATION_MODES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("attr", ["evt_scalars", "tel_arrays", "evt_summaryState", "ack_ackcmd"])
def test_every_mode_accepts_good_records(mode: str, engine: str, attr: str) -> None:
    codec = Codec(KTEST[attr], engine=engine)
    record = good(attr)
    record["salIndex"] = 3
    if "shortString" in record:
        record["shortString"] = "x" * 20
    assert codec.decode(codec.encode(record, mode)) == record


@pytest.mark.parametrize("mode", VALIDATION_MODES)
def test_modes_accept_data_class_instances(mode: str) -> None:
    topic = KTEST["evt_arrays"]
    codec = Codec(topic)
    instance = msgspec_class(topic)(int0=[1, 2, 3, 4, 5])
    assert codec.decode(codec.encode(instance, mode))["int0"] == [1, 2, 3, 4, 5]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown validation mode 'bogus'; expected one of none, custom"):
        Codec(KTEST["evt_scalars"]).encode(good("evt_scalars"), "bogus")


ARRAY_MSG = "KMirror.tel_forceActuatorData: Expected 156 items, got 155 - at $.primaryCylinderForce"

# (case, mutate, {mode: expected message substring}); modes not listed accept the record
CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    (
        "short array",
        "mirror",
        lambda r: r.update(primaryCylinderForce=r["primaryCylinderForce"][:-1]),
        {
            m: ARRAY_MSG
            for m in (
                "custom",
                "dataclass",
                "dataclass_and_decode",
                "attrs",
                "attrs_and_decode",
                "strict",
            )
        }
        | {
            "msgspec": "KMirror.tel_forceActuatorData: Expected array of length >= 156 - at $.primaryCylinderForce",
            "msgspec_and_decode": "Expected array of length >= 156 - at $.primaryCylinderForce",
        },
    ),
    (
        "unknown field",
        "scalars",
        lambda r: r.update(bogus=1),
        {m: "KTest.evt_scalars: Unknown field 'bogus' - at $" for m in VALIDATION_MODES if m != "none"},
    ),
    (
        "long string",
        "scalars",
        lambda r: r.update(shortString="x" * 21),
        {
            m: "KTest.evt_scalars: Expected str of at most 20 characters, got 21 - at $.shortString"
            for m in ("custom", "attrs", "strict")
        }
        | {"msgspec": "KTest.evt_scalars: Expected str of length <= 20 - at $.shortString"},
    ),
    (
        "byte out of range",
        "scalars",
        lambda r: r.update(byte0=256),
        {m: "KTest.evt_scalars: Expected int in [0, 255] (byte), got 256 - at $.byte0" for m in ("attrs", "strict")}
        | {"msgspec": "KTest.evt_scalars: Expected int <= 255 - at $.byte0"},
    ),
    (
        "unsigned int negative",
        "scalars",
        lambda r: r.update(unsignedInt0=-1),
        {
            "strict": "KTest.evt_scalars: Expected int in [0, 4294967295] (unsigned int), got -1 - at $.unsignedInt0",
            "msgspec": "Expected int >= 0 - at $.unsignedInt0",
        },
    ),
    (
        "long long too big",
        "scalars",
        lambda r: r.update(longLong0=2**63),
        {
            m: "Expected int in [-9223372036854775808, 9223372036854775807]"
            for m in ("none", "custom", "dataclass", "strict", "attrs")
        },
    ),
    (
        "string for int",
        "scalars",
        lambda r: r.update(int0="3"),
        {
            m: "KTest.evt_scalars: Expected int, got str - at $.int0"
            for m in ("none", "custom", "dataclass", "attrs", "strict")
        }
        | {"msgspec": "KTest.evt_scalars: Expected int, got str - at $.int0"},
    ),
    (
        "bool for int",
        "scalars",
        lambda r: r.update(short0=True),
        {
            "strict": "KTest.evt_scalars: Expected int, got bool - at $.short0",
            "msgspec": "Expected int, got bool - at $.short0",
        },
    ),
    (
        "float for int",
        "scalars",
        lambda r: r.update(long0=1.5),
        {m: "KTest.evt_scalars: Expected int, got float - at $.long0" for m in ("none", "strict", "attrs")},
    ),
    (
        "int for bool",
        "scalars",
        lambda r: r.update(boolean0=1),
        {
            "strict": "KTest.evt_scalars: Expected bool, got int - at $.boolean0",
            "attrs": "Expected bool, got int - at $.boolean0",
        },
    ),
    (
        "float32 overflow",
        "scalars",
        lambda r: r.update(float0=1e39),
        {
            m: "KTest.evt_scalars: Expected float32 (|x| <= 3.4028235e+38, NaN or inf), got 1e+39 - at $.float0"
            for m in ("none", "strict")
        },
    ),
    (
        "float32 overflow in an array",
        "arrays",
        lambda r: r.update(float0=[0.0, 1.0, -1e39, 0.0, 0.0]),
        {
            m: "KTest.tel_arrays: Expected float32 (|x| <= 3.4028235e+38, NaN or inf), got -1e+39 - at $.float0[2]"
            for m in ("none", "strict")
        },
    ),
    (
        "int array item out of range",
        "arrays",
        lambda r: r.update(short0=[0, 0, 0, 40000, 0]),
        {
            "strict": "KTest.tel_arrays: Expected int in [-32768, 32767] (short), got 40000 - at $.short0[3]",
            "msgspec": "Expected int <= 32767 - at $.short0[3]",
        },
    ),
    (
        "string in a double array",
        "arrays",
        lambda r: r.update(double0=[0.0, "x", 0.0, 0.0, 0.0]),
        {m: "KTest.tel_arrays: Expected float, got str - at $.double0[1]" for m in ("none", "custom", "strict")}
        | {"msgspec": "Expected float, got str - at $.double0[1]"},
    ),
    (
        "missing field",
        "scalars",
        lambda r: r.pop("double0"),
        {
            "strict": "KTest.evt_scalars: Missing required field - at $.double0",
            "none": "Missing required field - at $.double0",
        },
    ),
    (
        "wrong type for an array",
        "arrays",
        lambda r: r.update(int0=5),
        {m: "KTest.tel_arrays: Expected array, got int - at $.int0" for m in ("none", "strict")},
    ),
]


@pytest.mark.parametrize(("case", "which", "mutate", "messages"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", VALIDATION_MODES)
def test_each_mode_rejects_bad_records(case: str, which: str, mutate: Any, messages: dict[str, str], mode: str) -> None:
    topic = {
        "mirror": KMIRROR["tel_forceActuatorData"],
        "scalars": KTEST["evt_scalars"],
        "arrays": KTEST["tel_arrays"],
    }[which]
    record = good(topic.attr_name, KMIRROR if which == "mirror" else KTEST)
    mutate(record)
    codec = Codec(topic)
    if mode in messages:
        with pytest.raises(ValidationError) as info:
            codec.encode(record, mode)
        assert messages[mode] in str(info.value)
    else:
        # A mode that does not check this either lets it through (what it sends
        # must then decode) or the encoder refuses what Avro cannot hold; never
        # silently corrupt bytes.
        try:
            body = codec.encode(record, mode)
        except ValidationError as exc:
            assert str(exc).startswith(f"{topic.full_name}: ") and " - at $" in str(exc), str(exc)
        else:
            codec.decode(body)


def test_strict_accepts_nan_and_inf_in_float32() -> None:
    codec = Codec(KTEST["tel_arrays"])
    record = good("tel_arrays")
    record["float0"] = [math.nan, math.inf, -math.inf, 3.4028234663852886e38, -0.0]
    decoded = codec.decode(codec.encode(record, "strict"))
    assert math.isnan(decoded["float0"][0]) and decoded["float0"][1:] == [
        math.inf,
        -math.inf,
        3.4028234663852886e38,
        -0.0,
    ]


def test_strict_unlimited_string_has_no_length_limit() -> None:
    codec = Codec(KTEST["evt_scalars"])
    record = good("evt_scalars")
    record["string0"] = "y" * 10_000
    record["countedString"] = "z" * 500  # Count 3 is one string, of any length
    assert codec.decode(codec.encode(record, "strict"))["string0"] == "y" * 10_000


def test_validation_error_is_a_value_error_and_library_error() -> None:
    from sal_kafka import SalKafkaError

    with pytest.raises(ValueError):
        Codec(KTEST["evt_scalars"]).encode({"bogus": 1}, "strict")
    with pytest.raises(SalKafkaError):
        Codec(KTEST["evt_scalars"]).encode({"bogus": 1}, "strict")
