"""Small helpers shared by several modules."""

from __future__ import annotations

import contextlib
import gc
import linecache
import signal
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["gc_paused", "build_once", "sigint_deferred", "compile_generated", "missing", "write_files"]

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


def missing(module: str, extra: str, what: str) -> ImportError:
    """The error of an optional dependency of ``what`` that is not installed: it says which
    extra installs it (``pip install 'sal-kafka[extra]'``), as msgspec does for yaml."""
    return ImportError(f"{what} needs {module}, which is not installed: pip install 'sal-kafka[{extra}]'", name=module)


_linecache_lock = threading.Lock()


def compile_generated(source: str, filename: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Compile and run generated ``source`` in ``namespace``; return the namespace.

    The source is registered with `linecache` under ``filename`` (made unique
    with a counter when another source has it), so tracebacks, ``inspect`` and
    pdb show the generated lines, as attrs does for the methods it writes.
    """
    with _linecache_lock:
        name, n = filename, 1
        while name in linecache.cache and _cached_source(name) != source:
            n += 1
            name = f"{filename[:-1]}-{n}>" if filename.endswith(">") else f"{filename}-{n}"
        # (size, mtime None: never checked against a file, lines, name)
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec", dont_inherit=True), namespace)
    return namespace


def _cached_source(name: str) -> str | None:
    entry = linecache.cache.get(name)
    return "".join(entry[2]) if entry is not None and len(entry) == 4 else None


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
    The signal is held by a Python handler, not a thread's signal mask: the
    kernel delivers a process's SIGINT to any thread that does not block it
    (librdkafka's, say), and Python then raises it in the main thread anyway.
    Outside the main thread (where no handler can be set) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:  # now, as it would have been
            if callable(previous):
                previous(signal.SIGINT, held[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)


def write_files(files: Mapping[Path, str]) -> None:
    """Write each file (its folders made), or raise `ConfigError` naming the one that cannot be."""
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def keep_temporary(tmp: Any) -> None:
    """Let a `tempfile.TemporaryDirectory`'s folder outlive the object: dropping the last
    reference to one deletes its folder at once (its finalizer), which ``--keep`` must not."""
    if tmp is not None:
        tmp._finalizer.detach()  # the finalizer is the only thing that removes the folder
