"""Shared fixtures: the real ts_xml corpus in ../shared and small synthetic trees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_TS_XML = REPO.parent / "shared" / "ts_xml"
SAL_INTERFACES = SHARED_TS_XML / "sal_interfaces"
EXPECTED_AVRO = SHARED_TS_XML / "expected_avro"
BUNDLED = REPO / "xml_schemas"

needs_corpus = pytest.mark.skipif(
    not (SAL_INTERFACES / "SALSubsystems.xml").is_file(),
    reason="the ts_xml corpus is expected in ../shared/ts_xml",
)


def corpus_components() -> list[str]:
    """Names of the components of the real corpus (empty when it is absent)."""
    if not EXPECTED_AVRO.is_dir():
        return []
    return sorted(p.stem for p in EXPECTED_AVRO.glob("*.json"))


GENERICS = """\
<?xml version="1.0" encoding="UTF-8"?>
<SALObjects>
  <SALCommandSet>
    <SALCommand>
      <Subsystem>SALGeneric</Subsystem>
      <EFDB_Topic>SALGeneric_command_enable</EFDB_Topic>
      <Description>Enable.</Description>
      <Category>csc</Category>
    </SALCommand>
    <SALCommand>
      <Subsystem>SALGeneric</Subsystem>
      <EFDB_Topic>SALGeneric_command_enterControl</EFDB_Topic>
      <Description>Enter control.</Description>
    </SALCommand>
  </SALCommandSet>
  <SALEventSet>
    <Enumeration>SummaryState_Disabled=1,SummaryState_Enabled</Enumeration>
    <SALEvent>
      <Subsystem>SALGeneric</Subsystem>
      <EFDB_Topic>SALGeneric_logevent_heartbeat</EFDB_Topic>
      <Description>Heartbeat.</Description>
      <Category>mandatory</Category>
    </SALEvent>
    <SALEvent>
      <Subsystem>SALGeneric</Subsystem>
      <EFDB_Topic>SALGeneric_logevent_configurationApplied</EFDB_Topic>
      <Description>Config.</Description>
      <Category>configurable</Category>
      <item>
        <EFDB_Name>version</EFDB_Name>
        <Description>Version.</Description>
        <IDL_Type>string</IDL_Type>
        <Units>unitless</Units>
        <Count>1</Count>
      </item>
    </SALEvent>
  </SALEventSet>
</SALObjects>
"""


def subsystems_xml(*entries: tuple[str, str, str]) -> str:
    """SALSubsystems.xml text for ``(name, IndexEnumeration, AddedGenerics)`` entries."""
    body = "".join(
        f"  <SALSubsystem>\n    <Name>{n}</Name>\n    <Description>{n} test.</Description>\n"
        f"    <IndexEnumeration>{i}</IndexEnumeration>\n    <AddedGenerics>{g}</AddedGenerics>\n"
        "  </SALSubsystem>\n"
        for n, i, g in entries
    )
    return f'<?xml version="1.0"?>\n<SALSubsystemSet>\n{body}</SALSubsystemSet>\n'


def item_xml(name: str, idl_type: str = "double", count: str = "1", extra: str = "") -> str:
    return (
        f"<item><EFDB_Name>{name}</EFDB_Name><Description>{name} field</Description>"
        f"<IDL_Type>{idl_type}</IDL_Type><Units>m</Units><Count>{count}</Count>{extra}</item>"
    )


class XmlTree:
    """A throw-away ts_xml tree: ``tree.write(relpath, text)``, then load from ``tree.dir``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "sal_interfaces"
        self.dir.mkdir(parents=True)
        self.write("SALGenerics.xml", GENERICS)
        self.write("SALSubsystems.xml", subsystems_xml(("Foo", "no", "csc")))

    def write(self, rel: str, text: str) -> Path:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def topics_file(self, component: str, kind: str, body: str) -> Path:
        root = {
            "Commands": "SALCommandSet",
            "Events": "SALEventSet",
            "Telemetry": "SALTelemetrySet",
        }[kind]
        text = f'<?xml version="1.0"?>\n<{root}>\n{body}\n</{root}>\n'
        return self.write(f"{component}/{component}_{kind}.xml", text)


@pytest.fixture
def xml_tree(tmp_path: Path) -> XmlTree:
    return XmlTree(tmp_path)


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh local registry server (its own process and SQLite file)."""
    from tests.registry_server import RegistryProcess

    server = RegistryProcess(tmp_path / "registry.db").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack():  # type: ignore[no-untyped-def]
    """One Apache Kafka broker and one registry for the Kafka tests (each test uses its own topic names)."""
    from sal_kafka.testing import Stack

    with Stack() as running:
        yield running


@pytest.fixture
def kafka_config(stack, request):  # type: ignore[no-untyped-def]
    """A config whose topic sub-namespace is unique to the test: its topics and subjects are new."""
    import re
    import uuid

    name = re.sub(r"[^A-Za-z0-9]", "", request.node.name)[:30]
    return stack.config(topic_subname=f"{name}{uuid.uuid4().hex[:6]}", timeout=10.0)
