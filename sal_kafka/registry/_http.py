"""Plain HTTP GETs to a registry, for the endpoints confluent-kafka's client lacks.

confluent-kafka's `SchemaRegistryClient` has no call for ``GET /schemas``
(every subject's latest version in one answer); this sends it with the same
settings (URL, basic authentication, TLS files, timeout).
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

from ._config import RegistryConfig

__all__ = ["get_json"]

_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"


def _ssl_context(config: RegistryConfig) -> ssl.SSLContext | None:
    if not config.url.startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=config.ca_location)
    if config.cert_location:
        context.load_cert_chain(config.cert_location, config.key_location)
    return context


def get_json(config: RegistryConfig, path: str, query: dict[str, str] | None = None) -> Any:
    """``GET <url>/<path>?<query>`` and decode the JSON answer.

    Raises
    ------
    OSError
        (``urllib.error.URLError``, ``HTTPError``) when the registry cannot be
        reached or answers an error status.
    ValueError
        When the answer is not JSON.
    """
    import urllib.parse  # here: urllib.request costs 18 ms of every import of sal_kafka
    import urllib.request

    url = config.url.rstrip("/") + "/" + path.lstrip("/")
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    if config.user is not None:
        token = base64.b64encode(f"{config.user}:{config.password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=config.timeout, context=_ssl_context(config)) as answer:
        return json.loads(answer.read())
