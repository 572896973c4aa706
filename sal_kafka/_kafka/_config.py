"""Kafka configuration: every address, credential and client setting."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from .._registry import RegistryConfig

__all__ = ["KafkaConfig", "DEFAULT_BOOTSTRAP_SERVERS"]

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"

_ENV = {
    "bootstrap_servers": "SAL_KAFKA_BOOTSTRAP_SERVERS",
    "topic_subname": "SAL_KAFKA_TOPIC_SUBNAME",
    "identity": "SAL_KAFKA_IDENTITY",
    "security_protocol": "SAL_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "SAL_KAFKA_SASL_MECHANISM",
    "sasl_username": "SAL_KAFKA_SASL_USERNAME",
    "sasl_password": "SAL_KAFKA_SASL_PASSWORD",
    "ssl_ca_location": "SAL_KAFKA_SSL_CA_LOCATION",
    "replication_factor": "SAL_KAFKA_REPLICATION_FACTOR",
    "timeout": "SAL_KAFKA_TIMEOUT",
}
_JSON_ENV = {
    "producer": "SAL_KAFKA_PRODUCER_CONFIG",
    "consumer": "SAL_KAFKA_CONSUMER_CONFIG",
    "admin": "SAL_KAFKA_ADMIN_CONFIG",
    "partitions": "SAL_KAFKA_PARTITIONS",
}


@attrs.frozen
class KafkaConfig:
    """Where Kafka and the registry are, and how to talk to them.

    Attributes
    ----------
    bootstrap_servers : str
        ``host:port[,host:port...]``.
    registry : RegistryConfig
        The schema registry.
    topic_subname : str
        Sub-namespace of Kafka topic names (``lsst.<subname>.<C>.<topic>``).
    identity : str or None
        ``private_identity`` of written messages; default: the component name,
        with ``:index`` for an indexed one.
    security_protocol, sasl_mechanism, sasl_username, sasl_password, ssl_ca_location
        Security settings for every client (producer, consumer, admin).
    producer, consumer, admin : dict
        Further librdkafka settings for each kind of client; they win.
    partitions : dict
        Partitions of new topics by kind: ``telemetry``, ``command``,
        ``ackcmd`` (events always get 1: their history needs one ordered log).
    replication_factor : int
        Replication factor of new topics.
    timeout : float
        Seconds to wait for the broker (metadata, topic creation, flush).
    """

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    registry: RegistryConfig = attrs.field(factory=RegistryConfig)
    topic_subname: str = "sal"
    identity: str | None = None
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = attrs.field(default=None, repr=False)
    ssl_ca_location: str | None = None
    producer: Mapping[str, Any] = attrs.field(factory=dict)
    consumer: Mapping[str, Any] = attrs.field(factory=dict)
    admin: Mapping[str, Any] = attrs.field(factory=dict)
    partitions: Mapping[str, int] = attrs.field(factory=dict)
    replication_factor: int = 1
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> KafkaConfig:
        """Read ``SAL_KAFKA_*`` variables (``..._CONFIG`` ones hold JSON objects);
        ``overrides`` that are not None win. ``registry_url`` sets the registry's URL."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {k: env[v] for k, v in _ENV.items() if env.get(v)}
        for key, var in _JSON_ENV.items():
            if env.get(var):
                values[key] = json.loads(env[var])
        registry_url = overrides.pop("registry_url", None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, kind in (("replication_factor", int), ("timeout", float)):
            if key in values:
                values[key] = kind(values[key])
        values.setdefault("registry", RegistryConfig.from_env(env, url=registry_url))
        return cls(**values)

    def _common(self) -> dict[str, Any]:
        # a broker closing idle connections is not worth a log line each
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "log.connection.close": False}
        for key, value in (
            ("security.protocol", self.security_protocol),
            ("sasl.mechanism", self.sasl_mechanism),
            ("sasl.username", self.sasl_username),
            ("sasl.password", self.sasl_password),
            ("ssl.ca.location", self.ssl_ca_location),
        ):
            if value:
                conf[key] = value
        return conf

    def producer_conf(self, **settings: Any) -> dict[str, Any]:
        """Producer settings: common ones, then ``settings``, then `producer`."""
        return {**self._common(), "allow.auto.create.topics": False, **settings, **self.producer}

    def consumer_conf(self, **settings: Any) -> dict[str, Any]:
        return {**self._common(), "allow.auto.create.topics": False, **settings, **self.consumer}

    def admin_conf(self) -> dict[str, Any]:
        return {**self._common(), **self.admin}

    def partitions_of(self, kind: str) -> int:
        """Partitions of a new topic of ``kind`` (events: always 1)."""
        return 1 if kind == "event" else int(self.partitions.get(kind, 1))
