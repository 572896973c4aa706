"""Schema registry: the client side (registration, lookups) and a local server."""

from ._client import DEFAULT_URL, RegistrationResult, RegistryConfig, SchemaRegistry
from ._compat import LEVELS as COMPATIBILITY_LEVELS

__all__ = [
    "COMPATIBILITY_LEVELS",
    "DEFAULT_URL",
    "RegistrationResult",
    "RegistryConfig",
    "SchemaRegistry",
]
