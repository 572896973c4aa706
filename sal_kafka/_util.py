"""Small helpers shared by several modules."""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from typing import TypeVar

__all__ = ["gc_paused", "build_once", "sigint_deferred"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def build_once(cache: MutableMapping[K, T], lock: threading.Lock, key: K, build: Callable[[], T]) -> T:
    """``cache[key]``, built by ``build()`` the first time, once even when threads race."""
    value = cache.get(key)
    if value is None:
        with lock:
            value = cache.get(key)
            if value is None:
                value = cache[key] = build()
    return value


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


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) back until the block ends.

    A Ctrl-C that lands inside ``subprocess.Popen`` (after the fork, while it
    waits for the exec) leaves a child the caller never got to record, and so
    cannot stop. Wrap the spawn and the recording; the interrupt arrives after.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
