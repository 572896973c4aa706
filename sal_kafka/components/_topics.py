"""The topics of Controllers and Remotes, with ts_salobj's names and behaviour."""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import msgspec

from .._stats import LatencyHistogram
from ..classes._build import msgspec_class
from ..codec._codec import Codec
from ..codec._keys import MAX_SEQ_NUM
from ..errors import AckError, AckTimeoutError, ValidationError
from ..kafka import Received
from ..schemas._model import TopicInfo
from ._enums import DONE_ACKS, FAILED_ACKS, ExpectedError, SalRetCode
from ._io import ComponentIO

__all__ = [
    "ReadTopic",
    "WriteTopic",
    "RemoteCommand",
    "ControllerCommand",
    "SetWriteResult",
    "DEFAULT_QUEUE_LEN",
    "DEFAULT_TIMEOUT",
]

log = logging.getLogger("sal_kafka.component")

#: Messages a read topic keeps for `ReadTopic.get_oldest` and `ReadTopic.next`.
DEFAULT_QUEUE_LEN = 100
#: Seconds a command may take by default (ts_salobj's: an hour).
DEFAULT_TIMEOUT = 3600.0

Callback = Callable[[Any], Any]


class _Topic:
    """What every topic of a Controller or Remote has."""

    def __init__(self, io: ComponentIO, attr_name: str) -> None:
        self.io = io
        self.topic: TopicInfo = io.component[attr_name]
        self.attr_name = attr_name
        self.name = attr_name.split("_", 1)[1]
        #: The msgspec class of the topic's data (ts_salobj's ``DataType``).
        self.DataType: type = msgspec_class(self.topic)

    @property
    def sal_name(self) -> str:
        return self.topic.sal_name

    def _check_names(self, fields: Mapping[str, Any]) -> None:
        """Raise `UnknownFieldError` naming each field ``fields`` has that the topic does not."""
        unknown = sorted(set(fields) - set(self.topic.fields))
        if unknown:
            raise self.topic.unknown_field(unknown[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.io.name_index}, {self.attr_name})"


class ReadTopic(_Topic):
    """A topic that is read: a Remote's events and telemetry, a Controller's commands.

    Messages are queued (at most ``queue_len``, oldest dropped and counted) for
    `get_oldest` and `next`, unless a `callback` is set, which then gets each.
    """

    def __init__(self, io: ComponentIO, attr_name: str, queue_len: int = DEFAULT_QUEUE_LEN) -> None:
        super().__init__(io, attr_name)
        self._queue: collections.deque[Any] = collections.deque(maxlen=queue_len)
        self._latest: Any = None
        self._callback: Callback | None = None
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: messages dropped from a full queue
        self.dropped = 0
        io.add_reader(self.topic, self._receive)

    # ------------------------------------------------------------------ what arrives

    def _accept(self, data: Any) -> bool:
        """Whether a message is for this reader (commands, acks: see subclasses)."""
        return True

    def _receive(self, received: Received) -> None:
        data = received.data
        if not self._accept(data):
            return
        self._latest = data
        if self._callback is not None:
            self._run_callback(data)
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(data)
        self._arrived.set()

    def _run_callback(self, data: Any) -> None:
        callback = self._callback
        assert callback is not None
        result = callback(data)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%r: callback failed", self, exc_info=task.exception())

    # ------------------------------------------------------------------ ts_salobj's API

    @property
    def callback(self) -> Callback | None:
        """Called with each message (a function or a coroutine function); None: queue them."""
        return self._callback

    @callback.setter
    def callback(self, func: Callback | None) -> None:
        if func is not None and not callable(func):
            raise TypeError(f"callback={func!r} is not callable")
        self._callback = func
        if func is not None:
            self.flush()

    @property
    def has_data(self) -> bool:
        """True once any message arrived."""
        return self._latest is not None

    @property
    def nqueued(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    def get(self) -> Any:
        """The newest message, or None if none arrived; the queue is left alone."""
        return self._latest

    def get_oldest(self) -> Any:
        """Take the oldest queued message, or None."""
        self._no_callback("get_oldest")
        return self._queue.popleft() if self._queue else None

    def flush(self) -> None:
        """Empty the queue."""
        self._queue.clear()
        self._arrived.clear()

    def keep_latest(self) -> None:
        """Empty the queue but for the newest message (the current value of a state event,
        as a test helper wants it next)."""
        latest = self._latest
        self.flush()
        if latest is not None:
            self._queue.append(latest)
            self._arrived.set()

    async def aget(self, timeout: float | None = None) -> Any:
        """The newest message; wait for the first if none arrived yet.

        Raises
        ------
        TimeoutError
            If nothing arrives within ``timeout`` seconds.
        """
        if self._latest is None:
            await self._wait(timeout)
        return self._latest

    async def next(self, *, flush: bool, timeout: float | None = None) -> Any:
        """Take the oldest queued message, waiting for one (``flush``: drop the queued ones first).

        Raises
        ------
        TimeoutError
            If nothing arrives within ``timeout`` seconds.
        """
        self._no_callback("next")
        if flush:
            self.flush()
        while not self._queue:
            await self._wait(timeout)
        return self._queue.popleft()

    async def _wait(self, timeout: float | None) -> None:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.io.name_index}.{self.attr_name}: nothing within {timeout} s") from None

    def _no_callback(self, what: str) -> None:
        if self._callback is not None:
            raise RuntimeError(f"{self!r}: {what} is not allowed while a callback is set")


@attrs.frozen
class SetWriteResult:
    """What `WriteTopic.set_write` did: ``did_change``, ``was_written``, and the ``data``."""

    did_change: bool
    was_written: bool
    data: Any


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (ts_salobj's comparison for ``set``)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class WriteTopic(_Topic):
    """A topic that is written: a Controller's events and telemetry.

    ``data`` keeps the last values; `set` changes fields, `write` sends them,
    `set_write` does both, and for events writes only when a value changed
    (unless ``force_output``).
    """

    def __init__(self, io: ComponentIO, attr_name: str) -> None:
        super().__init__(io, attr_name)
        self.data = self.DataType()
        self._has_data = False
        self._codec = Codec(self.topic)
        #: Events are written only on change by default; other topics always.
        self.default_force_output = not attr_name.startswith("evt_")

    @property
    def has_data(self) -> bool:
        """True once `set` (or `set_write`) was called."""
        return self._has_data

    def set(self, **fields: Any) -> bool:
        """Set fields of `data` (a value of None leaves a field as it is); return
        whether any value changed (always True the first time).

        Raises
        ------
        ValidationError
            For an unknown field or a value the topic cannot hold; `data` is unchanged.
        """
        return self._set(fields, validate=True)

    def _set(self, fields: dict[str, Any], validate: bool) -> bool:
        self._check_names(fields)
        current = msgspec.structs.asdict(self.data)
        changed = not self._has_data
        for name, value in fields.items():
            if value is None:
                continue
            if not changed and not _same(current[name], value):
                changed = True
            current[name] = value
        if validate:
            self._codec.validate(current, "strict")
        self.data = self.DataType(**current)
        self._has_data = True
        return changed

    async def set_write(self, *, force_output: bool | None = None, **fields: Any) -> SetWriteResult:
        """`set`, then `write` if a value changed or ``force_output`` (default: False for events)."""
        before, had_data = self.data, self._has_data
        changed = self._set(fields, validate=False)  # the write's strict encoding checks it
        force = self.default_force_output if force_output is None else force_output
        if not (changed or force):
            self._codec.validate(self.data, "strict")
            return SetWriteResult(changed, False, self.data)
        try:
            return SetWriteResult(changed, True, await self.write())
        except ValidationError:
            self.data, self._has_data = before, had_data  # a refused write changes nothing
            raise

    async def write(self) -> Any:
        """Send `data` (private fields filled) and return what was sent.

        The message is encoded now and this returns at once; it is handed to
        the session's producer at the end of the event loop's turn, with all
        else written in that turn, in order. A delivery failure is logged and
        counted (``stats`` of the writer).
        """
        sent = self.io.writer(self.topic).write(self.data)
        self._has_data = True
        return self.DataType(**sent)


class ControllerEvent(WriteTopic):
    """An event a Controller writes (ts_salobj's ``ControllerEvent``)."""


class ControllerTelemetry(WriteTopic):
    """Telemetry a Controller writes (ts_salobj's ``ControllerTelemetry``)."""


class RemoteEvent(ReadTopic):
    """An event a Remote reads (ts_salobj's ``RemoteEvent``)."""


class RemoteTelemetry(ReadTopic):
    """Telemetry a Remote reads (ts_salobj's ``RemoteTelemetry``)."""


class ControllerCommand(ReadTopic):
    """A command a Controller receives; with a `callback`, each is acknowledged.

    The callback's outcome gives the final acknowledgement, as in ts_salobj:
    returning gives CMD_COMPLETE ("Done"); raising `ExpectedError` or another
    exception gives CMD_FAILED with the error text; `TimeoutError` gives
    CMD_TIMEOUT; cancellation gives CMD_ABORTED. A command from an identity
    that is not authorized gets CMD_NOPERM and the callback is not called.
    """

    def __init__(self, io: ComponentIO, attr_name: str, cmdtype: int, ack: WriteTopic) -> None:
        super().__init__(io, attr_name)
        self.cmdtype = cmdtype
        self._ack = ack
        #: ``identity -> reason`` of refusal, or None to accept (set by the Controller)
        self.authorize: Callable[[str], str | None] = lambda identity: None

    def _accept(self, data: Any) -> bool:
        if data.private_seqNum <= 0:
            return False
        self.io.commands_received[self.name] += 1
        return True

    def _run_callback(self, data: Any) -> None:
        task = asyncio.ensure_future(self._process(data))
        self._tasks.add(task)
        task.add_done_callback(self._callback_done)

    async def _process(self, data: Any) -> None:
        refusal = self.authorize(data.private_identity)
        if refusal is not None:
            await self.ack(data, SalRetCode.CMD_NOPERM, error=1, result=f"Not authorized: {refusal}")
            return
        assert self._callback is not None
        try:
            result = self._callback(data)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            await self.ack(data, SalRetCode.CMD_ABORTED, error=1, result="Aborted")
        except TimeoutError:
            await self.ack(data, SalRetCode.CMD_TIMEOUT, error=1, result="Timeout")
        except Exception as exc:
            if not isinstance(exc, ExpectedError):
                log.exception("%r: callback failed for seqNum %s", self, data.private_seqNum)
            await self.ack(data, SalRetCode.CMD_FAILED, error=1, result=f"Failed: {exc}")
        else:
            await self.ack(data, SalRetCode.CMD_COMPLETE, result="Done")

    async def ack(
        self, data: Any, ack: SalRetCode | int, error: int = 0, result: str = "", timeout: float = 0.0
    ) -> None:
        """Acknowledge the command ``data``: its seqNum, identity and origin echoed, as ts_salobj does."""
        if self.io.closed:
            log.warning("%r: cannot acknowledge seqNum %s: closed", self, data.private_seqNum)
            return
        self.io.acks_written[(self.name, int(ack))] += 1
        if len(result) > MAX_RESULT_CHARS:
            # an ack larger than the broker's message.max.bytes is never delivered, and the
            # commander waits its whole timeout: the start is what says why, the log has it all
            log.warning("%r: the result of seqNum %s is cut for its ack: %s", self, data.private_seqNum, result)
            cut = len(result) - MAX_RESULT_CHARS
            result = f"{result[:MAX_RESULT_CHARS]}... ({cut} more characters in the controller's log)"
        self.io.writer(self._ack.topic).write(
            {
                "ack": int(ack),
                "error": error,
                "result": result,
                "identity": data.private_identity,
                "origin": data.private_origin,
                "cmdtype": self.cmdtype,
                "timeout": timeout,
            },
            seq_num=data.private_seqNum,
        )

    async def ack_in_progress(self, data: Any, timeout: float, result: str = "") -> None:
        """Acknowledge with CMD_INPROGRESS: the commander's wait grows by ``timeout`` seconds."""
        await self.ack(data, SalRetCode.CMD_INPROGRESS, timeout=timeout, result=result)


class _Running:
    """A command sent and not yet finished: its acknowledgements as they come."""

    def __init__(self, seq_num: int, wait_done: bool) -> None:
        self.seq_num = seq_num
        self.wait_done = wait_done
        self.acks: collections.deque[Any] = collections.deque()
        self.arrived = asyncio.Event()
        self.last: Any = None
        self.undelivered: str | None = None  # the delivery report's error: no ack will come

    def add(self, ackcmd: Any) -> None:
        self.acks.append(ackcmd)
        self.arrived.set()

    def fail(self, reason: str) -> None:
        self.undelivered = reason
        self.arrived.set()

    async def next_ack(self) -> Any:
        """The next acknowledgement; None when the command was not delivered."""
        while not self.acks:
            if self.undelivered is not None:
                return None
            self.arrived.clear()
            await self.arrived.wait()
        self.last = self.acks.popleft()
        return self.last


#: the longest ``result`` an ack carries (a longer one is cut, with how much was cut)
MAX_RESULT_CHARS = 10_000


class AckReader(ReadTopic):
    """A Remote's ackcmd reader: keeps the acks of its own commands (identity,
    origin and a seqNum it sent all match, so two Remotes of one process never
    see each other's) and hands each to the command waiting for its seqNum."""

    #: seqNums remembered per Remote to recognise late acknowledgements
    SENT_MEMORY = 10_000

    def __init__(self, io: ComponentIO) -> None:
        super().__init__(io, "ack_ackcmd")
        self.running: dict[int, _Running] = {}
        self._sent: collections.OrderedDict[int, None] = collections.OrderedDict()

    def sent(self, seq_num: int) -> None:
        """Remember that this Remote sent ``seq_num``."""
        self._sent[seq_num] = None
        if len(self._sent) > self.SENT_MEMORY:
            self._sent.popitem(last=False)

    def _accept(self, data: Any) -> bool:
        return bool(
            data.identity == self.io.identity and data.origin == self.io.origin and data.private_seqNum in self._sent
        )

    def _receive(self, received: Received) -> None:
        data = received.data
        if not self._accept(data):
            return
        running = self.running.get(data.private_seqNum)
        if running is not None:
            running.add(data)
        super()._receive(received)


class RemoteCommand(_Topic):
    """A command a Remote sends: `start`, `set_start`; acknowledgements matched
    by seqNum, identity and origin, so two commanders never take each other's.

    Sequence numbers are drawn as ts_salobj draws them: 1..2**31-1 split in
    one range per command (commands sorted by name), starting at a random
    point of the range.
    """

    def __init__(self, io: ComponentIO, attr_name: str, command_names: list[str], acks: AckReader) -> None:
        super().__init__(io, attr_name)
        increment = MAX_SEQ_NUM // len(command_names)
        self.min_seq_num = command_names.index(self.name) * increment + 1
        self.max_seq_num = self.min_seq_num + increment - 1
        self._next_seq = random.randint(self.min_seq_num, self.max_seq_num)
        self._acks = acks
        self.data = self.DataType()
        io.delivery_hooks[attr_name] = self._delivered

    def _delivered(self, seq_num: int, error: str | None) -> None:
        """A delivery report (any thread): a command not delivered ends its wait at once."""
        if error is None:
            return
        running = self._acks.running.get(seq_num)
        loop = self.io._loop
        if running is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(running.fail, error)

    def _seq_num(self) -> int:
        seq = self._next_seq
        self._next_seq = seq + 1 if seq < self.max_seq_num else self.min_seq_num
        return seq

    def set(self, **fields: Any) -> bool:
        """New `data` (the defaults) with these fields set; True (a command always changes).

        Raises
        ------
        UnknownFieldError
            For a field the command does not have (an AttributeError, as ts_salobj's).
        """
        self._check_names(fields)
        self.data = self.DataType(**{k: v for k, v in fields.items() if v is not None})
        return True

    async def set_start(self, *, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True, **fields: Any) -> Any:
        """`set` the fields, then `start`."""
        self.set(**fields)
        return await self.start(timeout=timeout, wait_done=wait_done)

    async def start(self, data: Any = None, *, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True) -> Any:
        """Send the command and wait for its final acknowledgement (or, without
        ``wait_done``, the first); return it.

        Raises
        ------
        AckError
            If the command failed (the error carries the ackcmd).
        AckTimeoutError
            If no final acknowledgement came within ``timeout`` seconds
            (extended by the ``timeout`` of CMD_INPROGRESS acknowledgements).
        """
        if data is not None:
            self.data = data
        seq = self._seq_num()
        running = self._acks.running[seq] = _Running(seq, wait_done)
        self._acks.sent(seq)
        start = time.monotonic()
        try:
            self.io.writer(self.topic).write(self.data, seq_num=seq)
            ackcmd = await self._wait(running, timeout)
        finally:
            self._acks.running.pop(seq, None)
        if wait_done:  # the round trip to the final acknowledgement
            trips = self.io.round_trips.get(self.name)
            if trips is None:
                trips = self.io.round_trips[self.name] = LatencyHistogram()
            trips.add(time.monotonic() - start)
        return ackcmd

    async def next_ackcmd(self, ackcmd: Any, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True) -> Any:
        """Wait for the next acknowledgement of the command ``ackcmd`` acknowledged
        (after ``start(wait_done=False)``)."""
        running = self._acks.running.get(ackcmd.private_seqNum)
        if running is None:
            running = self._acks.running[ackcmd.private_seqNum] = _Running(ackcmd.private_seqNum, wait_done)
        running.wait_done = wait_done
        try:
            return await self._wait(running, timeout)
        finally:
            self._acks.running.pop(ackcmd.private_seqNum, None)

    async def _wait(self, running: _Running, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ackcmd = await asyncio.wait_for(running.next_ack(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                last = running.last
                if last is None:
                    last = self._acks.DataType(
                        private_seqNum=running.seq_num,
                        ack=int(SalRetCode.CMD_NOACK),
                        result="No command acknowledgement seen",
                    )
                raise AckTimeoutError(
                    f"{self.io.name_index}.{self.attr_name}: no final acknowledgement within {timeout} s",
                    ackcmd=last,
                ) from None
            if ackcmd is None:
                reason = f"not delivered to the broker: {running.undelivered} (it may not have reached the CSC)"
                raise AckError(
                    f"{self.io.name_index}.{self.attr_name} {reason}",
                    ackcmd=self._acks.DataType(
                        private_seqNum=running.seq_num, ack=int(SalRetCode.CMD_NOACK), error=1, result=reason
                    ),
                )
            if ackcmd.ack in FAILED_ACKS:
                raise AckError(f"{self.io.name_index}.{self.attr_name} failed", ackcmd=ackcmd)
            if not running.wait_done or ackcmd.ack in DONE_ACKS:
                return ackcmd
            if ackcmd.ack == SalRetCode.CMD_INPROGRESS:
                deadline += ackcmd.timeout
