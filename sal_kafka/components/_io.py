"""What a Controller or a Remote shares among its topics (ts_salobj's ``SalInfo``).

One `ComponentIO` per Controller or Remote: the session's producer for every
topic it writes (writers made on first write), one consumer for every topic
it reads (a `Reader` read by a thread that hands batches to the event loop),
its identity and origin, and the start task that is done once the history
of every read topic is in.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import getpass
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .._stats import LatencyHistogram
from ..errors import ConfigError
from ..kafka import Reader, Received, Session, Writer
from ..kafka.transports.base import ProducerLike
from ..kafka.transports.turn import TurnProducer
from ..schemas._model import ComponentInfo, TopicInfo
from ._enums import SalRetCode

__all__ = ["ComponentIO", "user_host"]

log = logging.getLogger("sal_kafka.component")


def user_host() -> str:
    """A commander's identity: ``user@host``, as ts_salobj's."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


class ComponentIO:
    """The connections and identity of one Controller or Remote.

    Parameters
    ----------
    session : Session
        The process's session.
    name : str or ComponentInfo
        The component.
    index : int or None
        SAL index: the instance a Controller is, or the one a Remote talks to
        (0 or None: all instances of an indexed component).
    identity : str
        ``private_identity`` of what it writes.
    """

    def __init__(self, session: Session, name: str | ComponentInfo, index: int | None, identity: str) -> None:
        self.session = session
        self.component = session.component(name)
        if index and not self.component.indexed:
            raise ConfigError(f"{self.component.name} is not indexed: index must be 0 or None, got {index}")
        named = self.component.index_values
        if index and named and int(index) not in named.values():
            # SALSubsystems.xml names the instances: no other one can answer
            raise ConfigError(
                f"{self.component.name} has no index {index}: its IndexEnumeration names "
                + ", ".join(f"{v} ({k})" for k, v in named.items())
            )
        self.index = int(index or 0)
        self.identity = identity
        self.origin = os.getpid()
        self._writers: dict[str, Writer] = {}
        #: per attr name: ``hook(seq_num, error or None)`` of each message's delivery report
        self.delivery_hooks: dict[str, Callable[[int, str | None], None]] = {}
        self._handlers: dict[str, Callable[[Received], None]] = {}
        self._reader: Reader | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: asyncio.Task[None] | None = None
        self._loop_thread = 0
        self._turn_producers: dict[int, TurnProducer] = {}
        self.start_task: asyncio.Future[None] | None = None
        self.closed = False
        #: commands received per command, acks written per (command, code), round trips per command
        self.commands_received: collections.Counter[str] = collections.Counter()
        self.acks_written: collections.Counter[tuple[str, int]] = collections.Counter()
        self.round_trips: dict[str, LatencyHistogram] = {}
        if session.metrics is not None:
            session.metrics.add_source(self._samples)

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def name_index(self) -> str:
        return self.component.name_index(self.index)

    def __repr__(self) -> str:
        return f"ComponentIO({self.name_index}, identity={self.identity!r})"

    def _samples(self, families: Any) -> None:
        """This component's command counts, for `sal_kafka.observe.Metrics`."""
        from ..observe._metrics import add_histogram  # metrics are on: prometheus-client is there

        name = self.name_index
        for command, n in self.commands_received.items():
            families.add("sal_kafka_commands_received_total", (name, command), n)
        for (command, code), n in self.acks_written.items():
            families.add("sal_kafka_command_acks_total", (name, command, SalRetCode(code).name), n)
        family = families.get("sal_kafka_command_round_trip_seconds")
        for command, histogram in self.round_trips.items():
            add_histogram(family, [name, command], histogram)

    # ------------------------------------------------------------------ setting up

    def add_reader(self, topic: TopicInfo, handler: Callable[[Received], None]) -> None:
        """Read ``topic``, calling ``handler(received)`` in the event loop (before `start`)."""
        self._handlers[topic.attr_name] = handler

    async def start(self, history: bool | None = None) -> None:
        """Create the component's topics, register its schemas, start reading.

        The start task is done once the history of every read topic is in.
        """
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.start_task = loop.create_future()
        self._reports = loop.create_task(self._serve_reports(), name=f"sal-kafka {self.name_index} delivery reports")
        await asyncio.to_thread(self._prepare, history)
        if self._reader is None:
            self.start_task.set_result(None)
            return
        self._thread = threading.Thread(target=self._pump, name=f"sal-kafka {self.name_index}", daemon=True)
        self._thread.start()
        await self.start_task

    #: how often delivery reports are served between writes (seconds)
    REPORT_INTERVAL = 0.1

    async def _serve_reports(self) -> None:
        """Serve delivery reports while messages are in flight, so that a failure is known
        (logged, counted, a command's wait ended) within `REPORT_INTERVAL` even if
        nothing else is written (before: only at the next write)."""
        while not self.closed:
            for producer in list(self._turn_producers.values()):
                if len(producer):
                    producer.poll(0)
            await asyncio.sleep(self.REPORT_INTERVAL)

    def _prepare(self, history: bool | None) -> None:
        topics = list(self.component)
        self.session.ensure_topics(topics)
        self.session.register(topics)
        if self._handlers:
            self._reader = Reader(
                self.component,
                list(self._handlers),
                index=self.index or None,
                session=self.session,
                history=history,
                postprocess="msgspec",
                create_topics=False,
            )

    def _pump(self) -> None:
        """The reading thread: batches of decoded messages to the event loop."""
        reader, loop = self._reader, self._loop
        assert reader is not None and loop is not None
        ready_sent = False
        try:
            while not self._stop.is_set():
                first = reader.next(0.1)
                batch = [first, *reader.drain(499)] if first is not None else []
                done = reader.history_done
                if batch or (done and not ready_sent):
                    loop.call_soon_threadsafe(self._dispatch, batch, done)
                    ready_sent = ready_sent or done
        except BaseException as exc:  # noqa: BLE001 - reported in the loop, where the user is
            if not self._stop.is_set():
                log.exception("%s: reading failed", self.name_index)
                with contextlib.suppress(RuntimeError):  # the loop may be closed already
                    loop.call_soon_threadsafe(self._fail_start, exc)

    def _dispatch(self, batch: Sequence[Received], history_done: bool) -> None:
        for received in batch:
            handler = self._handlers.get(received.topic)
            if handler is not None:
                try:
                    handler(received)
                except Exception:
                    log.exception("%s: handling %s failed", self.name_index, received.topic)
        if history_done and self.start_task is not None and not self.start_task.done():
            self.start_task.set_result(None)

    def _fail_start(self, exc: BaseException) -> None:
        if self.start_task is not None and not self.start_task.done():
            self.start_task.set_exception(exc)

    # ------------------------------------------------------------------ writing

    def writer(self, topic: TopicInfo) -> Writer:
        """The writer of ``topic`` (made on first use, on the session's producer)."""
        found = self._writers.get(topic.attr_name)
        if found is None:
            found = self._writers[topic.attr_name] = Writer(
                self.component,
                topic.attr_name,
                index=self.index,
                session=self.session,
                validation="strict",
                linger_ms=0,  # commands, acks and events: each as soon as written
                identity=self.identity,
                create_topics=False,
                on_delivery_error=lambda text: log.error("%s: %s", self.name_index, text),
                on_delivery=self.delivery_hooks.get(topic.attr_name),
                wrap_producer=self._turn_producer,
            )
        return found

    def _turn_producer(self, producer: ProducerLike) -> ProducerLike:
        """One `TurnProducer` per session producer, on this component's loop."""
        loop = self._loop
        if loop is None:  # written before start: no loop known yet
            return producer
        found = self._turn_producers.get(id(producer))
        if found is None:
            found = self._turn_producers[id(producer)] = TurnProducer(producer, loop, self._loop_thread)
        return found

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """Stop reading, flush what was written (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._reports is not None:
            self._reports.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
        for turn in self._turn_producers.values():
            turn.hand_over()
        if self._writers:
            await asyncio.to_thread(self.session.flush)
        if self.start_task is not None and not self.start_task.done():
            self.start_task.cancel()
