"""Each ts_xml construct, and each kind of bad input, on small synthetic trees."""

from __future__ import annotations

import json

import pytest

from sal_kafka import ComponentInfo, UnknownComponentError, XmlError
from tests.conftest import BUNDLED, XmlTree, item_xml, subsystems_xml


def telemetry(name: str, *items: str) -> str:
    return (
        f"<SALTelemetry><Subsystem>Foo</Subsystem><EFDB_Topic>Foo_{name}</EFDB_Topic>"
        f"<Description>{name} topic</Description>{''.join(items)}</SALTelemetry>"
    )


def event(name: str, *items: str, extra: str = "") -> str:
    return (
        f"<SALEvent><Subsystem>Foo</Subsystem><EFDB_Topic>Foo_logevent_{name}</EFDB_Topic>"
        f"<Description>{name} event</Description>{extra}{''.join(items)}</SALEvent>"
    )


def test_names_and_private_fields(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("position", item_xml("x")))
    xml_tree.topics_file("Foo", "Commands", "<SALCommand><EFDB_Topic>Foo_command_move</EFDB_Topic></SALCommand>")
    comp = ComponentInfo.load("Foo", xml_tree.dir, topic_subname="test")
    assert list(comp.topics) == [
        "evt_heartbeat",
        "cmd_enable",
        "cmd_move",
        "tel_position",
        "ack_ackcmd",
    ]
    tel = comp["tel_position"]
    assert (tel.sal_name, tel.attr_name) == ("position", "tel_position")
    assert tel.kafka_name == "lsst.test.Foo.position"
    assert tel.subject == "lsst.test.Foo.position-value"
    assert tel.avro_schema["namespace"] == "lsst.sal.Foo"
    assert list(tel.fields)[:2] == ["private_sndStamp", "private_rcvStamp"]
    assert "salIndex" not in tel.fields
    assert comp["cmd_move"].sal_name == "command_move"
    assert comp["ack_ackcmd"].sal_name == "ackcmd"
    assert comp.topic("position") is tel and comp.topic("command_move") is comp["cmd_move"]
    with pytest.raises(KeyError, match="no topic 'nope'"):
        comp.topic("nope")


def test_rev_code_is_md5_of_indented_json(xml_tree: XmlTree) -> None:
    import hashlib

    xml_tree.topics_file("Foo", "Telemetry", telemetry("position", item_xml("x")))
    tel = ComponentInfo.load("Foo", xml_tree.dir)["tel_position"]
    digest = hashlib.md5(json.dumps(tel.avro_schema, indent=4).encode()).hexdigest()
    assert tel.rev_code == digest[:8] and len(tel.rev_code) == 8


@pytest.mark.parametrize(
    ("index_enumeration", "indexed", "values"),
    [
        ("no", False, {}),
        ("any", True, {}),
        ("DSM1=1,DSM2=2", True, {"DSM1": 1, "DSM2": 2}),
        ("Red,Blue", True, {"Red": 1, "Blue": 2}),
    ],
)
def test_index_enumeration(xml_tree: XmlTree, index_enumeration: str, indexed: bool, values: dict) -> None:
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo", index_enumeration, "csc")))
    comp = ComponentInfo.load("Foo", xml_tree.dir)
    assert comp.indexed is indexed
    assert comp.index_values == values
    first = list(comp["evt_heartbeat"].fields)[0]
    assert (first == "salIndex") is indexed


def test_added_generics_mix_categories_and_topic_names(xml_tree: XmlTree) -> None:
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo", "no", "configurable, command_enterControl")))
    comp = ComponentInfo.load("Foo", xml_tree.dir)
    # mandatory is always added, first
    assert list(comp.topics) == [
        "evt_heartbeat",
        "evt_configurationApplied",
        "cmd_enterControl",
        "ack_ackcmd",
    ]
    assert comp.added_generics == ("mandatory", "configurable", "command_enterControl")


def test_all_component_files_may_be_missing(xml_tree: XmlTree) -> None:
    comp = ComponentInfo.load("Foo", xml_tree.dir)
    assert list(comp.topics) == ["evt_heartbeat", "cmd_enable", "ack_ackcmd"]


def test_item_defaults_and_types(xml_tree: XmlTree) -> None:
    bare = "<item><EFDB_Name>bare</EFDB_Name><IDL_Type>long long</IDL_Type></item>"
    text = item_xml("name", "string", "4", "<IDL_Size>16</IDL_Size>")
    unlimited = item_xml("free", "string", "1", "<IDL_Size>1</IDL_Size>")
    xml_tree.topics_file(
        "Foo",
        "Telemetry",
        telemetry("t", bare, text, unlimited, item_xml("arr", "unsigned int", "3")),
    )
    fields = ComponentInfo.load("Foo", xml_tree.dir)["tel_t"].fields
    assert (fields["bare"].units, fields["bare"].count, fields["bare"].description) == (
        "unitless",
        1,
        "",
    )
    assert fields["name"].count == 1 and fields["name"].max_length == 16
    assert fields["free"].string_size == 1 and fields["free"].max_length is None
    schema = {f["name"]: f for f in ComponentInfo.load("Foo", xml_tree.dir)["tel_t"].avro_schema["fields"]}
    assert schema["bare"] == {
        "name": "bare",
        "type": "long",
        "default": 0,
        "description": "",
        "units": "unitless",
    }
    assert schema["name"]["type"] == "string" and schema["name"]["default"] == ""
    assert schema["arr"]["type"] == {"type": "array", "items": "long"}
    assert schema["arr"]["default"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("sal_type", "avro", "default"),
    [
        ("boolean", "boolean", False),
        ("byte", "int", 0),
        ("short", "int", 0),
        ("int", "int", 0),
        ("long", "int", 0),
        ("long long", "long", 0),
        ("unsigned short", "int", 0),
        ("unsigned int", "long", 0),
        ("float", "float", 0.0),
        ("double", "double", 0.0),
        ("string", "string", ""),
    ],
)
def test_type_mapping(xml_tree: XmlTree, sal_type: str, avro: str, default: object) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("v", sal_type), item_xml("a", sal_type, "2")))
    fields = {f["name"]: f for f in ComponentInfo.load("Foo", xml_tree.dir)["tel_t"].avro_schema["fields"]}
    assert fields["v"]["type"] == avro
    assert fields["v"]["default"] == default and type(fields["v"]["default"]) is type(default)
    if sal_type == "string":
        assert fields["a"]["type"] == "string"  # a string with Count > 1 is one string
    else:
        assert fields["a"]["type"] == {"type": "array", "items": avro}
        assert [type(x) for x in fields["a"]["default"]] == [type(default)] * 2


def test_enumerations_file_topic_and_item_level(xml_tree: XmlTree) -> None:
    body = "<Enumeration>Mode_Off, Mode_On=04, Mode_Auto, Mode_Hex=0x1F</Enumeration>" + event(
        "state",
        item_xml("lamp", "int", "1", "<Enumeration>Lamp_Dim=2, Lamp_Bright</Enumeration>"),
        item_xml("raw", "int", "1", "<Enumeration>clear=0,cloudy=2</Enumeration>"),
        extra="<Enumeration>Color_Red,Color_Green\n, Color_Blue=7</Enumeration>",
    )
    xml_tree.topics_file("Foo", "Events", body)
    comp = ComponentInfo.load("Foo", xml_tree.dir)
    assert comp.enums["Mode"].as_dict() == {"Off": 0, "On": 4, "Auto": 5, "Hex": 31}
    assert comp.enums["SummaryState"].as_dict() == {"Disabled": 1, "Enabled": 2}
    topic = comp["evt_state"]
    assert topic.enums["Color"].as_dict() == {"Red": 0, "Green": 1, "Blue": 7}
    assert topic.fields["lamp"].enum is not None
    assert topic.fields["lamp"].enum.name == "Lamp"
    assert topic.fields["lamp"].enum.as_dict() == {"Dim": 2, "Bright": 3}
    raw_enum = topic.fields["raw"].enum
    assert raw_enum is not None and raw_enum.name == "Raw" and raw_enum.as_dict() == {"clear": 0, "cloudy": 2}
    assert "Foo_Events.xml:" in comp.enums["Mode"].source


def test_camera_avsc_topics(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("power", item_xml("x")))
    avsc = {
        "type": "record",
        "name": "power",
        "namespace": "lsst.sal.Foo",
        "fields": [
            {"name": "timestamp", "type": "long", "description": "ms", "units": "millisecond"},
            {
                "name": "V",
                "type": ["null", "double"],
                "default": None,
                "description": "V",
                "units": "V",
            },
            {"name": "Agent", "type": "string", "description": "tag"},
        ],
    }
    folder = xml_tree.root / "interfaces" / "Foo"
    folder.mkdir(parents=True)
    (folder / "power.avsc").write_text(json.dumps(avsc))
    (folder / "extra.avsc").write_text(json.dumps({**avsc, "name": "extra"}))
    comp = ComponentInfo.load("Foo", xml_tree.dir)
    # the .avsc replaces the XML topic in place; others come after ackcmd
    assert list(comp.topics) == [
        "evt_heartbeat",
        "cmd_enable",
        "tel_power",
        "ack_ackcmd",
        "tel_extra",
    ]
    schema = comp["tel_power"].avro_schema
    assert schema["fields"][:3] == avsc["fields"]
    assert [f["name"] for f in schema["fields"][3:]][0] == "private_sndStamp"
    assert "description" not in schema


# ----------------------------------------------------------------------------- bad input


def load_error(tree: XmlTree) -> XmlError:
    with pytest.raises(XmlError) as info:
        ComponentInfo.load("Foo", tree.dir)
    return info.value


def test_malformed_xml_names_file_and_line(xml_tree: XmlTree) -> None:
    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("x")) + "\n<SALTelemetry>")
    err = load_error(xml_tree)
    assert err.path == str(path) and err.line is not None and err.line >= 3
    assert "malformed XML" in str(err) and f"{path}:{err.line}" in str(err)


def test_unknown_idl_type(xml_tree: XmlTree) -> None:
    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("t", "\n" + item_xml("x", "quad")))
    err = load_error(xml_tree)
    assert (err.path, err.line, err.element) == (str(path), 4, "IDL_Type")
    assert "unknown IDL_Type 'quad' of field 'x'; expected one of boolean, byte" in str(err)


def test_duplicate_field(xml_tree: XmlTree) -> None:
    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("x"), "\n" + item_xml("x")))
    err = load_error(xml_tree)
    assert (err.path, err.line, err.element) == (str(path), 4, "item")
    assert "duplicate field 'x' in topic 't'" in str(err)


def test_field_clashing_with_private_field(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("private_seqNum")))
    assert "clashes with a private field" in str(load_error(xml_tree))


def test_duplicate_topic(xml_tree: XmlTree) -> None:
    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("t") + "\n" + telemetry("t"))
    err = load_error(xml_tree)
    assert (err.path, err.line) == (str(path), 4)
    assert "duplicate topic 't' in component Foo (first defined at" in str(err)


def test_duplicate_of_a_generic_topic(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Events", event("heartbeat"))
    assert "duplicate topic 'logevent_heartbeat'" in str(load_error(xml_tree))


@pytest.mark.parametrize("missing", ["EFDB_Topic", "EFDB_Name"])
def test_missing_required_element(xml_tree: XmlTree, missing: str) -> None:
    text = telemetry("t", item_xml("x"))
    text = (
        text.replace("<EFDB_Topic>Foo_t</EFDB_Topic>", "")
        if missing == "EFDB_Topic"
        else text.replace("<EFDB_Name>x</EFDB_Name>", "")
    )
    path = xml_tree.topics_file("Foo", "Telemetry", text)
    err = load_error(xml_tree)
    assert err.path == str(path) and err.line == 3
    assert f"missing required <{missing}>" in str(err)
    assert err.element == ("SALTelemetry" if missing == "EFDB_Topic" else "item")


def test_non_integer_count(xml_tree: XmlTree) -> None:
    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("x", count="many")))
    err = load_error(xml_tree)
    assert (err.path, err.element) == (str(path), "Count")
    assert "expected an integer, got 'many'" in str(err)


def test_zero_count(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml("x", count="0")))
    assert "Count of field 'x' must be >= 1, got 0" in str(load_error(xml_tree))


def test_unknown_generic(xml_tree: XmlTree) -> None:
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo", "no", "csc, logevent_nope")))
    err = load_error(xml_tree)
    assert err.path == str(xml_tree.dir / "SALSubsystems.xml") and err.line == 3
    assert err.element == "AddedGenerics"
    assert "unknown generic topic 'logevent_nope'" in str(err)


def test_unknown_generic_category(xml_tree: XmlTree) -> None:
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo", "no", "nosuch")))
    assert "unknown generic category 'nosuch'" in str(load_error(xml_tree))


def test_unknown_component(xml_tree: XmlTree) -> None:
    with pytest.raises(UnknownComponentError, match="unknown component 'Bar'; known: Foo") as info:
        ComponentInfo.load("Bar", xml_tree.dir)
    assert info.value.path == str(xml_tree.dir / "SALSubsystems.xml")


def test_bad_enumeration_value(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Events", "<Enumeration>Mode_A=x1</Enumeration>")
    assert "enumeration value 'x1' is not a decimal or hex integer" in str(load_error(xml_tree))


def test_wrong_root(xml_tree: XmlTree) -> None:
    xml_tree.write("Foo/Foo_Events.xml", "<Other/>")
    assert "unexpected root <Other>" in str(load_error(xml_tree))


def test_missing_directory() -> None:
    with pytest.raises(XmlError, match="cannot read file"):
        ComponentInfo.list_components("/nonexistent/dir")


def test_edits_are_seen_without_restart(xml_tree: XmlTree) -> None:
    import os

    path = xml_tree.topics_file("Foo", "Telemetry", telemetry("a"))
    assert "tel_a" in ComponentInfo.load("Foo", xml_tree.dir).topics
    xml_tree.topics_file("Foo", "Telemetry", telemetry("b"))
    os.utime(path, ns=(1, 1))  # a different mtime, even on coarse clocks
    assert "tel_b" in ComponentInfo.load("Foo", xml_tree.dir).topics


# ----------------------------------------------------------------------------- bundled


def test_bundled_definitions_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAL_KAFKA_XML_DIR", raising=False)
    assert ComponentInfo.list_components() == ["KTest", "KMirror", "HostMetrics"]
    monkeypatch.setenv("SAL_KAFKA_XML_DIR", str(BUNDLED))
    assert ComponentInfo.load("KTest").xml_dir == BUNDLED


def test_bundled_ktest_covers_every_type() -> None:
    comp = ComponentInfo.load("KTest", BUNDLED)
    assert comp.indexed
    for attr in ("evt_scalars", "tel_scalars", "cmd_setScalars"):
        types = {f.sal_type for f in comp[attr].fields.values() if f.count == 1}
        assert types >= {
            "boolean",
            "byte",
            "short",
            "int",
            "long",
            "long long",
            "unsigned short",
            "unsigned int",
            "float",
            "double",
            "string",
        }
    for attr in ("evt_arrays", "tel_arrays", "cmd_setArrays"):
        arrays = {f.sal_type for f in comp[attr].fields.values() if f.count > 1}
        assert len(arrays) == 10
    sizes = {f.max_length for f in comp["evt_scalars"].fields.values() if f.sal_type == "string"}
    assert {None, 20} <= sizes


def test_bundled_kmirror_has_large_float_arrays() -> None:
    topic = ComponentInfo.load("KMirror", BUNDLED)["tel_forceActuatorData"]
    big = [f for f in topic.fields.values() if f.sal_type == "float" and f.count >= 100]
    assert len(big) >= 4
    assert sum(f.count for f in topic.fields.values() if f.sal_type == "float") > 800


def test_a_listed_component_without_a_folder_is_said(xml_tree: XmlTree, caplog: pytest.LogCaptureFixture) -> None:
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo", "no", "csc"), ("Ghost", "no", "csc")))
    with caplog.at_level("WARNING", logger="sal_kafka.xml"):
        ghost = ComponentInfo.load("Ghost", xml_tree.dir)
    assert len(ghost.topics) > 0  # its generic topics
    (record,) = [r for r in caplog.records if "Ghost" in r.getMessage()]
    assert "has no folder" in record.getMessage() and "it gets only its generic topics" in record.getMessage()


INJECTION = "x boolean); DROP TABLE victim; COMMIT; CREATE TABLE junk (y"


def test_a_field_name_that_is_not_a_name_is_refused_at_load(xml_tree: XmlTree) -> None:
    """Names go into Avro schemas, Python classes and SQL: only Avro names are taken."""
    path = xml_tree.topics_file("Foo", "Events", event("e", "\n" + item_xml(INJECTION)))
    err = load_error(xml_tree)
    assert (err.path, err.line, err.element) == (str(path), 4, "EFDB_Name")
    assert f"EFDB_Name {INJECTION!r} is not a valid name: expected letters, digits and '_'" in str(err)


@pytest.mark.parametrize("name", ["1st", "a-b", "a b", "é", ""])
def test_names_that_avro_refuses(xml_tree: XmlTree, name: str) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("t", item_xml(name or "x")))
    if name:
        assert "is not a valid name" in str(load_error(xml_tree))


def test_a_topic_or_component_name_that_is_not_a_name_is_refused(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("t;drop", item_xml("x")))
    assert "the topic name in EFDB_Topic 't;drop' is not a valid name" in str(load_error(xml_tree))
    xml_tree.write("SALSubsystems.xml", subsystems_xml(("Foo bar", "no", "csc")))
    with pytest.raises(XmlError, match=r"SALSubsystems.xml:4: <Name>: component Name 'Foo bar' is not a valid name"):
        ComponentInfo.load("Foo", xml_tree.dir)


def test_an_avsc_name_that_is_not_a_name_is_refused(xml_tree: XmlTree) -> None:
    xml_tree.topics_file("Foo", "Telemetry", telemetry("power", item_xml("x")))
    folder = xml_tree.root / "interfaces" / "Foo"
    folder.mkdir(parents=True)
    fields = [{"name": INJECTION, "type": "double", "description": "d"}]
    (folder / "power.avsc").write_text(json.dumps({"type": "record", "name": "power", "fields": fields}))
    with pytest.raises(XmlError, match=r"power\.avsc: <x boolean.*field name .* is not a valid name"):
        ComponentInfo.load("Foo", xml_tree.dir)


def test_the_sink_refuses_a_name_that_is_not_one_whatever_its_source() -> None:
    from sal_kafka.sinks import SinkError, identifier

    assert identifier("salIndex") == "salindex" and identifier("select") == "select_"
    with pytest.raises(SinkError, match=r"cannot be a table or column name"):
        identifier(INJECTION)
