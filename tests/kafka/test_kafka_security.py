"""Credentials pass through as configuration: SASL_PLAINTEXT with SCRAM-SHA-512, as ts_salobj
deployments connect (``LSST_KAFKA_SECURITY_*``), against an Apache Kafka that requires it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sal_kafka import ComponentInfo, KafkaConfig, KafkaIOError, Reader, Writer
from sal_kafka.testing import Stack
from tests.conftest import BUNDLED

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def secured() -> Iterator[Stack]:
    with Stack(scram_users={"alice": "alice-secret"}) as stack:
        yield stack


def _salobj_env(stack: Stack, password: str) -> dict[str, str]:
    return {
        "LSST_KAFKA_BROKER_ADDR": stack.kafka.sasl_bootstrap_servers,
        "LSST_SCHEMA_REGISTRY_URL": stack.registry_url,
        "LSST_TOPIC_SUBNAME": "secured",
        "LSST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "LSST_KAFKA_SECURITY_MECHANISM": "SCRAM-SHA-512",
        "LSST_KAFKA_SECURITY_USERNAME": "alice",
        "LSST_KAFKA_SECURITY_PASSWORD": password,
    }


def test_scram_credentials_from_ts_salobjs_variables_write_and_read(secured: Stack) -> None:
    config = KafkaConfig.from_env(_salobj_env(secured, "alice-secret"))
    mirror = ComponentInfo.load("KMirror", BUNDLED, config.topic_subname)
    with Writer(mirror, "evt_detailedState", config=config, acks="all") as writer:
        writer.write(detailedState=3, wait=True)
    assert writer.stats.delivered == 1
    with Reader(mirror, ["evt_detailedState"], config=config) as reader:
        received = reader.next(10.0)
    assert received is not None and received.history and received.data["detailedState"] == 3


def test_a_wrong_password_is_a_clear_error(secured: Stack) -> None:
    config = KafkaConfig.from_env(_salobj_env(secured, "wrong"), timeout=5.0)
    mirror = ComponentInfo.load("KMirror", BUNDLED, config.topic_subname)
    refused = r"cannot reach the Kafka broker at 127\.0\.0\.1:\d+\b.*the broker said: .*SASL authentication error"
    with pytest.raises(KafkaIOError, match=refused + r".*invalid credentials with SASL mechanism SCRAM-SHA-512"):
        Writer(mirror, "evt_detailedState", config=config)
    with pytest.raises(KafkaIOError, match=refused):
        Reader(mirror, ["evt_detailedState"], config=config, create_topics=False)
