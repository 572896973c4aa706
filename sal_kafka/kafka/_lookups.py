"""Writer schemas by id, for the readers of a session, without ever blocking one.

A message framed with a schema id other than its topic's own needs that id's
schema from the registry. Three outcomes, kept apart:

- found: cached for good (an id's schema never changes);
- a definite "not found" (the registry's 40403): the message is undecodable;
  remembered for ``miss_ttl`` seconds, so that a stream of such frames costs
  one request, not one per frame;
- the registry cannot answer (down, hung, failing): *nothing is decided*.
  The reader holds the message's partition (pauses it where the message is)
  and retries with back-off (0.5 s doubling to 30 s); nothing after that
  message on that partition is delivered, so a sink commits nothing past it.

Lookups run in worker threads: a reader waits at most ``wait`` seconds for
one (a registry that answers in milliseconds costs no hold), then holds only
that partition and goes on with the others, so a hung registry never stalls a
command reader's other topics.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from time import monotonic
from typing import Any

from ..errors import RegistryError
from ..registry import SchemaRegistry

__all__ = ["SchemaPending", "WriterSchemas"]

log = logging.getLogger("sal_kafka.reader")


class SchemaPending(Exception):  # noqa: N818 - a signal to hold, not an error
    """The schema of ``schema_id`` is not known yet (being fetched, or the registry is
    unreachable): hold the message and try again when `WriterSchemas.ready` says."""

    def __init__(self, schema_id: int, reason: str) -> None:
        super().__init__(f"schema id {schema_id}: {reason}")
        self.schema_id = schema_id
        self.reason = reason


class WriterSchemas:
    """``schemas(id)``: the writer's schema, None for a definite miss, or `SchemaPending`.

    Parameters
    ----------
    registry : SchemaRegistry
    miss_ttl : float
        Seconds a definite "not found" is remembered (a schema registered later is
        found after that).
    wait : float
        Seconds a reader waits for a lookup before holding the partition.
    """

    def __init__(self, registry: SchemaRegistry, *, miss_ttl: float = 60.0, wait: float = 0.05) -> None:
        self.registry = registry
        self.miss_ttl = miss_ttl
        self.wait = wait
        self._missing: dict[int, float] = {}  # id: until (monotonic)
        self._failed: dict[int, tuple[float, float, str]] = {}  # id: (retry at, delay, reason)
        self._pending: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0  # lookups sent to the registry
        self.unreachable = 0  # of which the registry did not answer

    def __call__(self, schema_id: int) -> dict[str, Any] | None:
        found = self.registry.cached_schema(schema_id)  # the registry client keeps what it found
        if found is not None:
            return found
        with self._lock:
            state = self._state(schema_id)
            if state == "ask":
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(2, thread_name_prefix="sal-kafka-schemas")
                self._pending[schema_id] = self._pool.submit(self._fetch, schema_id)
            future = self._pending.get(schema_id)
        if future is not None:
            try:
                future.result(self.wait)
            except FutureTimeout:
                raise SchemaPending(schema_id, "waiting for the registry's answer") from None
        with self._lock:
            state = self._state(schema_id)
        if state == "found":
            return self.registry.cached_schema(schema_id)
        if state == "missing":
            return None
        raise SchemaPending(schema_id, self._failed[schema_id][2] if schema_id in self._failed else "being fetched")

    def _state(self, schema_id: int) -> str:
        """found, missing, pending (in flight), failed (before its retry time), or ask."""
        if self.registry.cached_schema(schema_id) is not None:
            return "found"
        until = self._missing.get(schema_id)
        if until is not None:
            if until > monotonic():
                return "missing"
            del self._missing[schema_id]
        future = self._pending.get(schema_id)
        if future is not None:
            if not future.done():
                return "pending"
            del self._pending[schema_id]
            return self._state(schema_id)
        failed = self._failed.get(schema_id)
        if failed is not None and failed[0] > monotonic():
            return "failed"
        return "ask"

    def ready(self, schema_id: int) -> bool:
        """True when asking for ``schema_id`` now can decide (a held partition may resume)."""
        with self._lock:
            return self._state(schema_id) in ("found", "missing", "ask")

    def _fetch(self, schema_id: int) -> None:
        self.requests += 1
        try:
            schema = self.registry.writer_schema(schema_id)
        except RegistryError as exc:
            self.unreachable += 1
            with self._lock:
                delay = min(self._failed[schema_id][1] * 2, 30.0) if schema_id in self._failed else 0.5
                self._failed[schema_id] = (monotonic() + delay, delay, str(exc))
            log.warning("%s; messages with schema id %d are held, retrying in %.1f s", exc, schema_id, delay)
            return
        with self._lock:
            self._failed.pop(schema_id, None)
            if schema is None:
                self._missing[schema_id] = monotonic() + self.miss_ttl

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
