"""The asyncio face of `Reader`: a worker thread reads, the event loop gets batches."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import KafkaIOError
from ._reader import Reader
from ._received import ReaderStats, Received

__all__ = ["AsyncReader"]


class AsyncReader:
    """asyncio face of `Reader`: same arguments; ``async for`` and ``await next()``.

    A worker thread reads Kafka and hands batches to the loop through a bounded
    queue; when the queue is full the thread waits (backpressure, no loss).
    Callbacks (functions or coroutine functions) given to `add_callback` are
    called in the loop, for each message `next` returns.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self.reader: Reader | None = None
        self._queue: asyncio.Queue[list[Received]] | None = None
        self._pending: deque[Received] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[Received], Any]] = []
        self._error: BaseException | None = None

    async def start(self) -> AsyncReader:
        """Assign partitions (in a thread: network calls), then start reading."""
        self.reader = await asyncio.to_thread(Reader, *self._args, **self._kwargs)
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=max(1, self.reader.queue_size // 500))
        self._thread = threading.Thread(target=self._pump, args=(loop,), name="sal-kafka-reader", daemon=True)
        self._thread.start()
        return self

    def add_callback(self, callback: Callable[[Received], Any]) -> None:
        """Call ``callback(received)`` for each message."""
        self._callbacks.append(callback)

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        reader, queue = self.reader, self._queue
        assert reader is not None and queue is not None
        try:
            while not self._stop.is_set():
                first = reader.next(0.2)
                if first is None:
                    continue
                batch = [first, *reader.drain(499)]
                future = asyncio.run_coroutine_threadsafe(queue.put(batch), loop)
                while not self._stop.is_set():  # wait for room: backpressure, no loss
                    try:
                        future.result(0.2)
                        break
                    except TimeoutError:
                        continue
        except BaseException as exc:  # surfaced by next()
            self._error = exc
            loop.call_soon_threadsafe(queue.put_nowait, [])

    async def next(self, timeout: float | None = None) -> Received | None:
        """The next message, or None after ``timeout`` seconds."""
        if self._queue is None:
            raise KafkaIOError("the reader is not started: call 'await reader.start()' first")
        while not self._pending:
            if self._error is not None:
                raise KafkaIOError(f"the reader thread failed: {self._error}") from self._error
            try:
                batch = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return None
            self._pending.extend(batch)
        received = self._pending.popleft()
        for callback in self._callbacks:
            result = callback(received)
            if asyncio.iscoroutine(result):
                await result
        return received

    def __aiter__(self) -> AsyncReader:
        return self

    async def __anext__(self) -> Received:
        while True:
            received = await self.next(1.0)
            if received is not None:
                return received
            if self._stop.is_set():
                raise StopAsyncIteration

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self.reader is not None:
            await asyncio.to_thread(self.reader.close)

    async def __aenter__(self) -> AsyncReader:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def stats(self) -> ReaderStats:
        if self.reader is None:
            raise KafkaIOError("the reader is not started: call 'await reader.start()' first")
        return self.reader.stats
