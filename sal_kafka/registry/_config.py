"""Where the registry is and how to talk to it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import ConfigError

__all__ = ["RegistryConfig", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8081"

_ENV = {
    "url": "SAL_KAFKA_SCHEMA_REGISTRY_URL",
    "user": "SAL_KAFKA_SCHEMA_REGISTRY_USER",
    "password": "SAL_KAFKA_SCHEMA_REGISTRY_PASSWORD",
    "ca_location": "SAL_KAFKA_SCHEMA_REGISTRY_CA_LOCATION",
    "cert_location": "SAL_KAFKA_SCHEMA_REGISTRY_CERT_LOCATION",
    "key_location": "SAL_KAFKA_SCHEMA_REGISTRY_KEY_LOCATION",
    "timeout": "SAL_KAFKA_SCHEMA_REGISTRY_TIMEOUT",
    "max_retries": "SAL_KAFKA_SCHEMA_REGISTRY_MAX_RETRIES",
}


@attrs.frozen
class RegistryConfig:
    """Where the registry is and how to talk to it.

    Attributes
    ----------
    url : str
        Base URL, e.g. ``https://registry.example.org:8081``.
    user, password : str or None
        HTTP basic authentication.
    ca_location, cert_location, key_location : str or None
        TLS: CA bundle, client certificate and key (PEM files).
    timeout : float
        Seconds per request.
    max_retries : int
        Retries of a request that failed transiently (connection errors,
        408, 429, 5xx), with exponential backoff.
    extra : dict
        Any other `SchemaRegistryClient` setting, passed through.
    """

    url: str = attrs.field(default=DEFAULT_URL)
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    ca_location: str | None = None
    cert_location: str | None = None
    key_location: str | None = None
    timeout: float = 10.0
    max_retries: int = 3
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @url.validator
    def _check_url(self, _attribute: Any, url: str) -> None:
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https", "mock") or not rest:
            raise ConfigError(f"invalid schema registry URL {url!r}: expected http://host:port (or https://)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RegistryConfig:
        """Read ``SAL_KAFKA_SCHEMA_REGISTRY_*`` variables (and ts_salobj's
        ``LSST_SCHEMA_REGISTRY_URL``, which they override); ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("LSST_SCHEMA_REGISTRY_URL"):  # ts_salobj's; ours wins
            values["url"] = env["LSST_SCHEMA_REGISTRY_URL"]
        values.update({k: env[v] for k, v in _ENV.items() if env.get(v)})
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "timeout" in values:
            values["timeout"] = float(values["timeout"])
        if "max_retries" in values:
            values["max_retries"] = int(values["max_retries"])
        return cls(**values)

    def client_conf(self) -> dict[str, Any]:
        """Settings for confluent-kafka's `SchemaRegistryClient`."""
        conf: dict[str, Any] = {
            "url": self.url,
            "timeout": self.timeout,
            "max.retries": self.max_retries,
            "retries.wait.ms": 100,
            "retries.max.wait.ms": 2000,
        }
        if self.user is not None:
            conf["basic.auth.user.info"] = f"{self.user}:{self.password or ''}"
        for key, value in (
            ("ssl.ca.location", self.ca_location),
            ("ssl.certificate.location", self.cert_location),
            ("ssl.key.location", self.key_location),
        ):
            if value:
                conf[key] = value
        conf.update(self.extra)
        return conf
