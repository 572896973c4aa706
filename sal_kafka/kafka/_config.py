"""Kafka configuration: every address, credential and client setting."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import ConfigError
from ..registry import RegistryConfig

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
    "max_history_read": "SAL_KAFKA_MAX_HISTORY_READ",
}
# ts_salobj's variables: read too, so that a ts_salobj deployment's environment
# works unchanged; a SAL_KAFKA_* variable of the same setting wins.
_LSST_ENV = {
    "bootstrap_servers": "LSST_KAFKA_BROKER_ADDR",
    "topic_subname": "LSST_TOPIC_SUBNAME",
    "security_protocol": "LSST_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "LSST_KAFKA_SECURITY_MECHANISM",
    "sasl_username": "LSST_KAFKA_SECURITY_USERNAME",
    "sasl_password": "LSST_KAFKA_SECURITY_PASSWORD",
    "replication_factor": "LSST_KAFKA_REPLICATION_FACTOR",
    "max_history_read": "LSST_MAX_HISTORY_READ",
}
#: ts_salobj's YAML files of librdkafka settings
_LSST_YAML_ENV = {
    "producer": "LSST_KAFKA_PRODUCER_CONFIGURATION",
    "consumer": "LSST_KAFKA_CONSUMER_CONFIGURATION",
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
    max_history_read : int
        How far back (messages) a reader of an indexed component's events
        looks for the newest per index (ts_salobj's default is 500).
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
    max_history_read: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> KafkaConfig:
        """Read ``SAL_KAFKA_*`` variables (``..._CONFIG`` ones hold JSON objects) and
        ts_salobj's ``LSST_*`` ones; ``overrides`` that are not None win.

        Precedence, highest first: ``overrides``, ``SAL_KAFKA_*``, ``LSST_*``,
        the defaults. ``registry_url`` sets the registry's URL.

        Raises
        ------
        ConfigError
            For a variable that does not parse (a number, JSON, a YAML file).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {k: env[v] for k, v in _LSST_ENV.items() if env.get(v)}
        for key, var in _LSST_YAML_ENV.items():
            if env.get(var):
                values[key] = _yaml_file(var, env[var])
        values.update({k: env[v] for k, v in _ENV.items() if env.get(v)})
        for key, var in _JSON_ENV.items():
            if env.get(var):
                values[key] = _json_value(var, env[var])
        registry_url = overrides.pop("registry_url", None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, kind in (("replication_factor", int), ("timeout", float), ("max_history_read", int)):
            if key in values:
                try:
                    values[key] = kind(values[key])
                except ValueError:
                    raise ConfigError(f"{key} must be a number, got {values[key]!r}") from None
        values.setdefault("registry", RegistryConfig.from_env(env, url=registry_url))
        return cls(**values)

    def _common(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            # a broker closing idle connections is not worth a log line each
            "log.connection.close": False,
            # no Nagle: a lone small request (a command, its ack, 50 Hz telemetry) goes out at
            # once (librdkafka's default only since 2.10; confluent-kafka 2.4 has Nagle on)
            "socket.nagle.disable": True,
        }
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


def _json_value(var: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"${var} is not valid JSON: {exc}") from None


def _yaml_file(var: str, path: str) -> dict[str, Any]:
    """The librdkafka settings of a ts_salobj YAML file (``$LSST_KAFKA_*_CONFIGURATION``)."""
    import yaml  # only deployments that use these files need it

    try:
        with open(path) as file:
            data = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"${var}: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"${var}: {path} must hold a mapping of librdkafka settings")
    return data
