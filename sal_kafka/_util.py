"""Small helpers shared by several modules."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a burst of long-lived allocations.

    Building the model of a whole corpus allocates ~10^5 acyclic objects that
    all survive; the collector's passes over them during the burst are pure
    overhead (about a third of the load time, measured here).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
