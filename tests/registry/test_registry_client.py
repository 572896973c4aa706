"""Registering topic schemas: statuses, the compatibility gate, dry runs,
reports, configuration, and a registry that is down."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sal_kafka import (
    ComponentInfo,
    IncompatibleSchemaError,
    RegistryError,
    SchemaRegistry,
    TopicInfo,
)
from sal_kafka._cli import main
from sal_kafka.registry import RegistryConfig
from tests.conftest import BUNDLED, SAL_INTERFACES, needs_corpus
from tests.registry_server import RegistryProcess, free_port

pytestmark = pytest.mark.server

KTEST = ComponentInfo.load("KTest", BUNDLED)


def changed(topic: TopicInfo, field: dict[str, Any]) -> TopicInfo:
    """A copy of ``topic`` whose Avro schema has one more field."""
    clone = copy.copy(topic)
    schema = copy.deepcopy(topic.avro_schema)
    schema["fields"].append(field)
    object.__setattr__(clone, "_avro_schema", schema)
    return clone


def test_register_then_unchanged(registry: RegistryProcess) -> None:
    with SchemaRegistry(registry.url) as sr:
        first = sr.register_components([KTEST])
        assert {r.status for r in first} == {"new"}
        assert all(r.schema_id and r.version == 1 for r in first)
        again = sr.register_components([KTEST])
    assert [(r.status, r.schema_id, r.version) for r in again] == [("unchanged", r.schema_id, 1) for r in first]


def test_compatible_change_is_updated_incompatible_is_refused(registry: RegistryProcess) -> None:
    topic = KTEST["evt_summaryState"]
    with SchemaRegistry(registry.url) as sr:
        sr.register_topics([topic])
        ok = changed(topic, {"name": "extra", "type": "int", "default": 0, "description": "", "units": "unitless"})
        (updated,) = sr.register_topics([ok])
        assert (updated.status, updated.version) == ("updated", 2)
        bad = changed(topic, {"name": "noDefault", "type": "int", "description": "", "units": "unitless"})
        (refused,) = sr.register_topics([bad])
        assert refused.status == "incompatible" and refused.refused
        assert "reader_field_missing_default_value at /fields/" in refused.detail
        assert "noDefault" in refused.detail
        # a laxer level than the registry's does not get past the registry
        (none_level,) = sr.register_topics([bad], compatibility="NONE")
        assert none_level.status == "incompatible" and "refused by the registry" in none_level.detail
        with pytest.raises(IncompatibleSchemaError, match="subject=lsst.sal.KTest.logevent_summaryState-value"):
            sr.ensure_registered(
                changed(topic, {"name": "x", "type": "string", "description": "", "units": ""}), "FULL"
            )


def test_dry_run_changes_nothing(registry: RegistryProcess) -> None:
    with SchemaRegistry(registry.url) as sr:
        results = sr.register_components([KTEST], dry_run=True)
        assert {r.status for r in results} == {"new"} and all(r.dry_run and r.schema_id is None for r in results)
        assert sr.subjects() == set()


def test_lookups_and_schema_by_id(registry: RegistryProcess) -> None:
    topic = KTEST["tel_arrays"]
    with SchemaRegistry(registry.url) as sr:
        assert sr.lookup_id(topic) is None
        schema_id = sr.ensure_registered(topic)
        assert sr.lookup_id(topic) == schema_id == sr.ensure_registered(topic)
        assert sr.schema(schema_id) == topic.avro_schema
        assert sr.writer_schema(987654) is None


def test_cli_report_and_json(registry: RegistryProcess, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["registry", "register", "--url", registry.url, "--xml-dir", str(BUNDLED), "KMirror"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "subject" in out and "lsst.sal.KMirror.forceActuatorData-value" in out and "new" in out
    assert "21 subjects at " + registry.url + ": 21 new" in out
    assert main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["counts"] == {"unchanged": 21}
    assert {r["status"] for r in report["results"]} == {"unchanged"}


def test_cli_exits_non_zero_when_refused(
    registry: RegistryProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    assert main(["registry", "register", "--url", registry.url, "--xml-dir", str(BUNDLED), "KMirror"]) == 0
    xml_dir = tmp_path / "xml"
    shutil.copytree(BUNDLED, xml_dir)
    telemetry = xml_dir / "KMirror" / "KMirror_Telemetry.xml"
    text = telemetry.read_text()
    # inclinometerAngle: float -> string, which no Avro reader can resolve
    old = "<EFDB_Name>inclinometerAngle</EFDB_Name>\n      <Description>Elevation angle.</Description>\n      <IDL_Type>float</IDL_Type>"
    assert old in text
    telemetry.write_text(text.replace(old, old.replace("float", "string")))
    capsys.readouterr()
    args = ["registry", "register", "--url", registry.url, "--xml-dir", str(xml_dir), "KMirror"]
    assert main(args + ["--dry-run"]) == 1
    assert main(args + ["--compatibility", "full"]) == 1
    captured = capsys.readouterr()
    assert "lsst.sal.KMirror.inclinometer-value" in captured.out and "incompatible" in captured.out
    assert "type_mismatch at /fields/9/type" in captured.out
    assert "1 subjects refused or failed" in captured.err
    # nothing was registered for it: the subject still has one version
    with SchemaRegistry(registry.url) as sr:
        assert sr.client.get_versions("lsst.sal.KMirror.inclinometer-value") == [1]


def test_registry_down_is_an_error_naming_url_and_subject(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = RegistryConfig(url=url, max_retries=1, timeout=2.0)
    with SchemaRegistry(config=config) as sr:
        results = sr.register_topics([KTEST["evt_heartbeat"]])
        assert results[0].status == "error" and results[0].schema_id is None
        assert url in results[0].detail
        with pytest.raises(RegistryError, match=rf"url={url}, subject=lsst.sal.KTest.logevent_heartbeat-value"):
            sr.ensure_registered(KTEST["evt_heartbeat"])
    assert main(["registry", "register", "--url", url, "--xml-dir", str(BUNDLED), "KTest"]) == 1
    assert "26 subjects refused or failed" in capsys.readouterr().err


def test_config_from_environment() -> None:
    env = {
        "SAL_KAFKA_SCHEMA_REGISTRY_URL": "https://sr.example:8081",
        "SAL_KAFKA_SCHEMA_REGISTRY_USER": "alice",
        "SAL_KAFKA_SCHEMA_REGISTRY_PASSWORD": "secret",
        "SAL_KAFKA_SCHEMA_REGISTRY_CA_LOCATION": "/etc/ca.pem",
        "SAL_KAFKA_SCHEMA_REGISTRY_TIMEOUT": "3.5",
    }
    config = RegistryConfig.from_env(env, url=None)
    conf = config.client_conf()
    assert conf["url"] == "https://sr.example:8081" and conf["basic.auth.user.info"] == "alice:secret"
    assert conf["ssl.ca.location"] == "/etc/ca.pem" and conf["timeout"] == 3.5
    assert "secret" not in repr(config)
    assert RegistryConfig.from_env(env, url="http://other:1").url == "http://other:1"


@needs_corpus
def test_a_registry_killed_during_registration_stops_it_at_once(tmp_path: Path) -> None:
    """kill -9 the registry while all of ts_xml is being registered: the command stops at the
    first sign (bounded retries), then one error line names the URL and what was done."""
    server = RegistryProcess(tmp_path / "killed.db").start()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sal_kafka",
            "registry",
            "register",
            "--url",
            server.url,
            "--xml-dir",
            str(SAL_INTERFACES),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(httpx.get(f"{server.url}/subjects").json()) < 200:  # under way
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    killed_at = time.monotonic()
    server.kill()
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - killed_at < 30
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"sal-kafka registry register: error: the registry at {server.url} stopped answering: "
    )
    assert "not attempted" in lines[0]
    assert len(out.splitlines()) < 3500  # not a line per subject that failed


def test_the_registry_client_s_request_lines_are_debug_not_info(caplog: pytest.LogCaptureFixture) -> None:
    """Before: a CSC printed about 40 "HTTP Request: POST ..." lines at INFO as it started."""
    import logging

    from sal_kafka import SchemaRegistry

    SchemaRegistry("mock://quiet").close()
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx2").info('HTTP Request: POST http://x/subjects/s/versions "HTTP/1.1 200 OK"')
        logging.getLogger("httpx2").warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
