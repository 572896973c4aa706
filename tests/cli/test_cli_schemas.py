"""``sal-kafka schemas``: writing, checking, and errors without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sal_kafka import ComponentInfo
from sal_kafka._cli import main
from tests.conftest import BUNDLED, XmlTree, item_xml


def test_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["schemas", "--xml-dir", str(BUNDLED), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "3 components, 57 topics, 57 files written" in summary
    written = json.loads((out / "KMirror" / "forceActuatorData.avsc").read_text())
    assert written == ComponentInfo.load("KMirror", BUNDLED)["tel_forceActuatorData"].avro_schema
    assert main(["schemas", "--xml-dir", str(BUNDLED), "--out", str(out), "--check"]) == 0
    assert "0 files differ" in capsys.readouterr().out


def test_check_reports_a_readable_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    main(["schemas", "--xml-dir", str(BUNDLED), "--out", str(out), "KTest"])
    target = out / "KTest" / "scalars.avsc"
    target.write_text(target.read_text().replace('"A double."', '"changed"'))
    (out / "KTest" / "gone.avsc").write_text("{}")
    (out / "KTest" / "logevent_heartbeat.avsc").unlink()
    capsys.readouterr()
    assert main(["schemas", "--xml-dir", str(BUNDLED), "--out", str(out), "--check", "KTest"]) == 1
    err = capsys.readouterr().err
    assert '-      "description": "changed",' in err
    assert '+      "description": "A double.",' in err
    assert "stale: " in err and "gone.avsc" in err
    assert "missing: " in err and "logevent_heartbeat.avsc" in err


def test_xml_error_is_printed_without_traceback(xml_tree: XmlTree, tmp_path: Path) -> None:
    xml_tree.topics_file(
        "Foo",
        "Telemetry",
        "<SALTelemetry><EFDB_Topic>Foo_t</EFDB_Topic>" + item_xml("x", "quad") + "</SALTelemetry>",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sal_kafka",
            "schemas",
            "--xml-dir",
            str(xml_tree.dir),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "Foo_Telemetry.xml:3: <IDL_Type>: unknown IDL_Type 'quad'" in proc.stderr


def test_unknown_component_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "--xml-dir", str(BUNDLED), "--out", str(tmp_path), "Nope"]) == 1
    assert "unknown component 'Nope'; known: KTest, KMirror, HostMetrics" in capsys.readouterr().err
