"""Schema registry: the client side (registration, lookups) and a local server."""

from .._public import set_public_module
from ._client import DEFAULT_URL, RegistrationResult, RegistryConfig, SchemaRegistry
from ._compat import LEVELS as COMPATIBILITY_LEVELS

__all__ = [
    "COMPATIBILITY_LEVELS",
    "DEFAULT_URL",
    "RegistrationResult",
    "RegistryConfig",
    "SchemaRegistry",
]

set_public_module(__name__, globals(), ["RegistrationResult", "RegistryConfig", "SchemaRegistry"])
