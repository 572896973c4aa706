"""Sinks: SAL topics into PostgreSQL/TimescaleDB, one table per topic, exactly once (docs/sink.md)."""

from ._public import set_public_module
from ._sink import *  # noqa: F403 - the public names of the sink package, as they are
from ._sink import __all__

set_public_module(__name__, globals(), __all__)
