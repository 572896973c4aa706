"""Configuration: SAL_KAFKA_* and ts_salobj's LSST_* variables, the default XML folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sal_kafka import ConfigError, KafkaConfig
from sal_kafka.schemas import default_xml_dir
from tests.conftest import BUNDLED


def test_ts_salobj_variables_are_read(tmp_path: Path) -> None:
    producer = tmp_path / "producer.yaml"
    producer.write_text("linger.ms: 5\ncompression.type: lz4\n")
    consumer = tmp_path / "consumer.yaml"
    consumer.write_text("fetch.wait.max.ms: 1\nsession.timeout.ms: 6000\n")
    config = KafkaConfig.from_env(
        {
            "LSST_KAFKA_BROKER_ADDR": "broker:29092",
            "LSST_SCHEMA_REGISTRY_URL": "http://schema-registry:8081",
            "LSST_TOPIC_SUBNAME": "test",
            "LSST_KAFKA_PRODUCER_CONFIGURATION": str(producer),
            "LSST_KAFKA_CONSUMER_CONFIGURATION": str(consumer),
            "LSST_MAX_HISTORY_READ": "500",
            "LSST_KAFKA_SECURITY_USERNAME": "user",
            "LSST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        }
    )
    assert config.bootstrap_servers == "broker:29092" and config.registry.url == "http://schema-registry:8081"
    assert config.topic_subname == "test" and config.max_history_read == 500
    assert config.producer == {"linger.ms": 5, "compression.type": "lz4"}
    assert config.consumer == {"fetch.wait.max.ms": 1, "session.timeout.ms": 6000}
    assert (config.sasl_username, config.security_protocol) == ("user", "SASL_PLAINTEXT")


def test_sal_kafka_variables_win_over_ts_salobjs() -> None:
    config = KafkaConfig.from_env(
        {
            "LSST_KAFKA_BROKER_ADDR": "broker:29092",
            "SAL_KAFKA_BOOTSTRAP_SERVERS": "ours:9092",
            "LSST_SCHEMA_REGISTRY_URL": "http://theirs:8081",
            "SAL_KAFKA_SCHEMA_REGISTRY_URL": "http://ours:8081",
            "LSST_TOPIC_SUBNAME": "theirs",
            "SAL_KAFKA_TOPIC_SUBNAME": "ours",
        },
        topic_subname=None,
    )
    assert (config.bootstrap_servers, config.registry.url, config.topic_subname) == (
        "ours:9092",
        "http://ours:8081",
        "ours",
    )
    assert KafkaConfig.from_env({"SAL_KAFKA_TOPIC_SUBNAME": "ours"}, topic_subname="arg").topic_subname == "arg"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"LSST_KAFKA_PRODUCER_CONFIGURATION": "/no/such.yaml"},
            r"\$LSST_KAFKA_PRODUCER_CONFIGURATION: cannot read /no/such.yaml",
        ),
        ({"SAL_KAFKA_CONSUMER_CONFIG": "{not json"}, r"\$SAL_KAFKA_CONSUMER_CONFIG is not valid JSON"),
        ({"LSST_MAX_HISTORY_READ": "many"}, "max_history_read must be a number, got 'many'"),
        ({"SAL_KAFKA_SCHEMA_REGISTRY_URL": "registry:8081"}, "invalid schema registry URL 'registry:8081'"),
    ],
)
def test_bad_variables_are_config_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaConfig.from_env(environ)


def test_ts_xml_installed_as_a_package_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "lsst" / "ts" / "xml" / "data" / "sal_interfaces"
    data.mkdir(parents=True)
    (tmp_path / "lsst" / "ts" / "xml" / "__init__.py").write_text("")
    (data / "SALSubsystems.xml").write_text((BUNDLED / "SALSubsystems.xml").read_text())
    monkeypatch.delenv("SAL_KAFKA_XML_DIR", raising=False)
    assert default_xml_dir() == BUNDLED  # not installed: the bundled definitions
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "lsst" or m.startswith("lsst.")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        assert default_xml_dir() == data
        monkeypatch.setenv("SAL_KAFKA_XML_DIR", str(BUNDLED))
        assert default_xml_dir() == BUNDLED  # the variable wins
    finally:  # find_spec imported the fake lsst and lsst.ts: later tests must not find them
        for name in [m for m in sys.modules if m == "lsst" or m.startswith("lsst.")]:
            del sys.modules[name]
