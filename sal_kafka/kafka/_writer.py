"""Write one topic of one component instance to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from time import time as _time
from typing import Any, Final

import attrs
from confluent_kafka import KafkaError, KafkaException, Message

from .._stats import LatencyHistogram
from ..codec._codec import Codec
from ..codec._keys import MAX_SEQ_NUM, message_key
from ..codec._records import as_dict
from ..codec._time import TAI_MINUS_UTC
from ..codec._validation import check_mode, explain
from ..errors import ConfigError, KafkaIOError, ValidationError
from ..options import ACKS, Acks, Validation
from ..registry import SchemaRegistry
from ..schemas._model import ComponentInfo
from ._config import KafkaConfig
from ._session import MISSING_TOPIC, Session
from .transports.base import ProducerLike

__all__ = ["Writer", "AsyncWriter", "WriterStats", "LatencyHistogram", "MAX_SEQ_NUM", "message_key"]

_ACKS: dict[str, Acks] = {"0": "0", "1": "1", "all": "all", "-1": "all"}
# modes that check only what the schema itself cannot hold (see sal_kafka._validation)
_LAX_MODES = frozenset({"none", "custom", "dataclass", "dataclass_and_decode"})


#: the private fields a writer sets itself at each write
_STAMPS: Final = frozenset(
    ["private_seqNum", "private_sndStamp", "private_kafkaStamp", "private_efdStamp", "private_rcvStamp"]
)


@attrs.define
class WriterStats:
    """Counters of a writer: ``written`` (handed to Kafka), ``delivered``, ``failed``
    (refused: the broker did not store it), ``unknown`` (timed out: librdkafka cannot
    tell whether a message sent before its timeout was stored; with a measured 602
    of 3,519 such messages found in the topic, they are not counted as failed),
    and ``ack_latency``: from `Writer.write` to the broker's acknowledgement
    (with acks=0, to the message's send) as seen when the report is served,
    so it is exact when something polls while waiting (`Writer.poll`)."""

    written: int = 0
    delivered: int = 0
    failed: int = 0
    unknown: int = 0
    bytes_written: int = 0
    errors: list[str] = attrs.field(factory=list)
    ack_latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)


class Writer:
    """Writes messages of one topic of one component instance.

    Parameters
    ----------
    component : str or ComponentInfo
        The component (loaded from the default XML directory when a name).
    topic : str
        Topic name: ``tel_x``, ``evt_x``, ``cmd_x``, the SAL name or the bare name.
    index : int
        ``salIndex`` of this instance (indexed components).
    config : KafkaConfig, optional
        Addresses and settings; default `KafkaConfig.from_env` (or the session's).
    session : Session, optional
        The process's shared connections; default a private session (closed
        with the writer). Writers with the same producer settings share one
        producer.
    validation : Validation
        Validation mode of every write.
    acks : {0, 1, "all"}
        Producer acknowledgement setting. 0 is the no-wait mode: the broker
        does not acknowledge, and delivery is not confirmed.
    linger_ms, compression : optional
        Producer batching delay and compression codec (``lz4``, ``zstd``, ...).
    on_delivery_error : callable, optional
        Called with the error message (topic and the broker's reason) for each
        message that failed;
        without it, failures are raised by `flush` and `close`.
    registry : SchemaRegistry, optional
        Shared registry client, for a private session (deprecated: share a `Session`).
    identity : str, optional
        ``private_identity`` of the messages (default: the config's, then ``Name[:index]``).
    on_delivery : callable, optional
        Called with ``(private_seqNum, None)`` when the broker acknowledged a
        message and ``(private_seqNum, reason)`` when it failed: every message
        gets exactly one call (fault tests, exactly-once bookkeeping).
    create_topics : bool
        Create the topic and register its schema when missing (idempotent).
    wrap_producer : callable, optional
        Called with the session's producer; the writer produces through what
        it returns (a Controller's and a Remote's writers hand messages over
        at the end of the event loop's turn, together).

    Notes
    -----
    Fields left out keep the value last written (the topic's defaults at
    first), as ts_salobj's ``set_write`` does. The private fields are filled
    here: ``private_sndStamp``/``private_kafkaStamp`` TAI, ``private_efdStamp``
    UTC, ``private_seqNum`` from 1 wrapping at 2**31-1, ``private_revCode``,
    ``private_identity``, ``private_origin`` (process id) and ``salIndex``.
    """

    def __init__(
        self,
        component: str | ComponentInfo,
        topic: str,
        *,
        index: int = 0,
        config: KafkaConfig | None = None,
        session: Session | None = None,
        validation: Validation = "strict",
        acks: int | str = 1,
        linger_ms: float | None = None,
        compression: str | None = None,
        on_delivery_error: Callable[[str], None] | None = None,
        registry: SchemaRegistry | None = None,
        create_topics: bool = True,
        identity: str | None = None,
        on_delivery: Callable[[int, str | None], None] | None = None,
        wrap_producer: Callable[[ProducerLike], ProducerLike] | None = None,
    ) -> None:
        self._identity = identity
        self._wrap_producer = wrap_producer
        self._on_delivery = on_delivery
        self._own_session = session is None
        self.session = session or Session(config, registry=registry)
        try:
            self._start(component, topic, index, validation, acks, linger_ms, compression, create_topics)
        except BaseException:
            if self._own_session:
                self.session.close()
            raise
        self._on_delivery_error: Callable[[str], None] | None = on_delivery_error

    def _start(
        self,
        component: str | ComponentInfo,
        topic: str,
        index: int,
        validation: Validation,
        acks: int | str,
        linger_ms: float | None,
        compression: str | None,
        create_topics: bool,
    ) -> None:
        session = self.session
        self.config = session.config
        self.component = component = session.component(component)
        self.topic = component.topic(topic)
        if not component.indexed and index:
            raise ConfigError(f"{component.name} is not indexed: index must be 0, got {index}")
        self.index = index
        self.validation = check_mode(validation)
        acks_text = _ACKS.get(str(acks).lower())
        if acks_text is None:
            raise ConfigError(f"acks must be one of {', '.join(ACKS)}, got {acks!r}")
        self.acks = acks_text
        self.stats = WriterStats()
        self._on_delivery_error = None
        self._lock = threading.Lock()
        self._closed = False
        if create_topics:
            session.ensure_topics([self.topic])
        schema_id = session.schema_id(self.topic, register=create_topics)
        if schema_id is None:
            raise KafkaIOError(f"{self.topic.subject} is not registered at {session.registry.url}")
        self.schema_id = schema_id
        self.codec = Codec(self.topic, schema_id=self.schema_id)
        producer = session.producer(**self._producer_settings(linger_ms, compression))
        self.producer_name = session.producer_name(producer)
        self.producer = producer if self._wrap_producer is None else self._wrap_producer(producer)
        self.key = message_key(self.topic, index)
        self._encode = self.codec.encode_message  # bound once: the hot path
        self._owned = self._own
        self._data = self._initial_data()
        if session.metrics is not None:
            session.metrics.watch_writer(self)
        self._seq_num = 0
        self._kafka_name = self.topic.kafka_name

    def _producer_settings(self, linger_ms: float | None, compression: str | None) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "acks": self.acks,
            # 1 ms: enough to batch at high rates (0 costs a third of the
            # throughput here), little enough for a 50 Hz topic's latency
            "linger.ms": 1,
            # with acks=all the producer is idempotent: a retry after a leader moved is
            # never stored twice nor out of order (acks 0 and 1 cannot be idempotent)
            "enable.idempotence": self.acks == "all",
            "message.timeout.ms": int(self.config.timeout * 1000),
        }
        if linger_ms is not None:
            settings["linger.ms"] = linger_ms
        if compression:
            settings["compression.type"] = compression
        return settings

    def _initial_data(self) -> dict[str, Any]:
        data = {n: (list(f.default) if f.count > 1 else f.default) for n, f in self.topic.fields.items()}
        data.update(self._own)
        return data

    @property
    def _own(self) -> dict[str, Any]:
        """The fields this writer fills whatever the record says (as ts_salobj's writers do)."""
        own: dict[str, Any] = {
            "private_revCode": self.topic.rev_code,
            "private_identity": self._identity or self.config.identity or self.component.name_index(self.index),
            "private_origin": os.getpid(),
        }
        if self.component.indexed and self.index:
            own["salIndex"] = self.index
        return own

    @property
    def data(self) -> dict[str, Any]:
        """The last record written (a copy)."""
        return dict(self._data)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        # reports are served by whichever thread polls (write, flush, poll)
        with self._lock:
            if error is None:
                self.stats.delivered += 1
                latency = message.latency()  # produce() to this report being served
                if latency is not None:
                    self.stats.ack_latency.add(latency)
                return
            if error.code() == KafkaError._MSG_TIMED_OUT:
                self.stats.unknown += 1
                text = f"{self._kafka_name}: outcome unknown (the broker may have stored it): {error.str()}"
            else:
                self.stats.failed += 1
                text = f"{self._kafka_name}: not delivered: {error.str()}"
            if error.code() in MISSING_TOPIC or error.code() == KafkaError._MSG_TIMED_OUT:
                # librdkafka waits for a deleted topic to come back until the message times
                # out: whether it exists is asked of the broker, and it is made again if not
                # (all of the component's: the other side's topics went with it, e.g. acks)
                self.session.recreate_lost(list(self.component), error.str())
            if len(self.stats.errors) < 100:
                self.stats.errors.append(text)
        if self._on_delivery_error is not None:
            self._on_delivery_error(text)

    def write(
        self,
        data: Any = None,
        /,
        *,
        wait: bool = False,
        validation: Validation | None = None,
        seq_num: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Write one message; return the record as sent.

        Parameters
        ----------
        data : dict or data class, optional
            Field values; ``fields`` are applied on top.
        wait : bool
            Return only once the broker acknowledged this message (flush).
        validation : Validation, optional
            This call's validation mode instead of the writer's.
        seq_num : int, optional
            ``private_seqNum`` to send instead of the writer's next one: an
            ackcmd carries its command's, a commander draws from its own range.
            ``private_seqNum=N`` among ``fields`` is the same; the stamps
            (``private_sndStamp``...) are the writer's and refused as fields.
            A ``data`` record's private fields are replaced (a record read and
            written again gets new stamps and the writer's seqNum).

        Raises
        ------
        ValidationError
            If the record breaks the validation mode; nothing is sent.
        KafkaIOError
            If the producer's queue stays full, or (with ``wait``) delivery failed.
        """
        if self._closed:
            raise KafkaIOError(f"{self._kafka_name}: the writer is closed")
        if fields and not _STAMPS.isdisjoint(fields):
            seq_num = self._private_fields(fields, seq_num)
        record = dict(self._data)
        if data is not None:
            record.update(as_dict(data))
            record.update(self._owned)  # a whole record (a data class) carries its own defaults
        if fields:
            record.update(fields)
        utc = _time()
        tai = utc + TAI_MINUS_UTC
        seq = seq_num if seq_num is not None else self._seq_num + 1 if self._seq_num < MAX_SEQ_NUM else 1
        record["private_sndStamp"] = tai
        record["private_kafkaStamp"] = tai
        record["private_efdStamp"] = utc
        record["private_seqNum"] = seq
        record["private_rcvStamp"] = 0.0
        mode = validation or self.validation
        try:
            value = self._encode(record, mode)
        except ValidationError as exc:
            raise self._blame(exc, record, mode, data, fields) from None
        self._produce(value, self._report_of(seq) if self._on_delivery is not None else self._delivered)
        if seq_num is None:
            self._seq_num = seq
        self._data = record
        if wait:
            self.flush()
        return record

    def _private_fields(self, fields: dict[str, Any], seq_num: int | None) -> int | None:
        """``private_seqNum=`` given by name is ``seq_num``; a stamp given by name is refused
        (never silently replaced)."""
        given = fields.pop("private_seqNum", None)
        if given is not None:
            if seq_num is not None and seq_num != given:
                raise ConfigError(
                    f"{self._kafka_name}: private_seqNum={given} and seq_num={seq_num} disagree: give one"
                )
            seq_num = int(given)
        stamped = sorted(_STAMPS.intersection(fields))
        if stamped:
            raise ConfigError(
                f"{self._kafka_name}: {', '.join(stamped)} cannot be given: the writer stamps "
                "them as it sends (private_seqNum can: it is the same as seq_num=)"
            )
        return seq_num

    def _blame(
        self, exc: ValidationError, record: dict[str, Any], mode: str, data: Any, fields: dict[str, Any]
    ) -> ValidationError:
        """The error of the fields given in this call first: a field that an earlier
        write in a laxer mode let through must not take the blame for a new one."""
        given = set(fields) | (set(as_dict(data)) if data is not None else set())
        problem = explain(self.topic, record, strict=mode not in _LAX_MODES, only=given)
        return ValidationError(problem) if problem else exc

    def _report_of(self, seq: int) -> Callable[[KafkaError | None, Message], None]:
        """The delivery report of one message, also handed to ``on_delivery`` with its seqNum."""
        hook = self._on_delivery
        assert hook is not None

        def report(error: KafkaError | None, message: Message) -> None:
            self._delivered(error, message)
            hook(seq, None if error is None else error.str())

        return report

    def _produce(self, value: bytes, on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        producer = self.producer
        try:
            producer.produce(self._kafka_name, value, self.key, on_delivery=on_delivery)
        except KafkaException as exc:  # refused at once (too large, unknown topic): nothing was sent
            self.stats.failed += 1
            raise KafkaIOError(f"{self._kafka_name}: a message of {len(value)} bytes refused: {exc}") from None
        except BufferError:
            # the local queue is full: serve delivery reports until there is room
            producer.poll(self.config.timeout)
            try:
                producer.produce(self._kafka_name, value, self.key, on_delivery=on_delivery)
            except BufferError:
                raise KafkaIOError(
                    f"{self._kafka_name}: producer queue full for {self.config.timeout} s "
                    f"(broker at {self.config.bootstrap_servers} too slow or down)"
                ) from None
        self.stats.written += 1
        self.stats.bytes_written += len(value)
        producer.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve the delivery reports that arrived, waiting up to ``timeout``
        seconds for one; return how many were served.

        `write` and `flush` serve them too. A writer that writes rarely (an
        event now and then) calls this from time to time, so that a failure
        reaches ``on_delivery_error`` and `stats` promptly. `AsyncWriter`
        does it by itself.
        """
        return int(self.producer.poll(timeout))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message written is delivered or failed.

        Raises
        ------
        KafkaIOError
            If messages are still undelivered after ``timeout`` (default
            ``config.timeout``), or if any failed (and no ``on_delivery_error``
            callback was given); the message says how many and why.
        """
        remaining = self.producer.flush(self.config.timeout if timeout is None else timeout)
        if remaining:
            raise KafkaIOError(
                f"{self._kafka_name}: {remaining} messages not delivered within "
                f"{self.config.timeout if timeout is None else timeout} s (broker at {self.config.bootstrap_servers})"
            )
        stats = self.stats
        if (stats.failed or stats.unknown) and self._on_delivery_error is None and self._on_delivery is None:
            errors = stats.errors
            raise KafkaIOError(
                f"{stats.failed} messages failed, {stats.unknown} timed out (outcome unknown): "
                f"{errors[0] if errors else ''}"
            )

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def close(self) -> None:
        """Flush, then stop (and close a private session); raises like `flush`."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            if self._own_session:
                self.session.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        self._closed = True  # an error is on its way: deliver what can be, raise nothing more
        self.producer.flush(self.config.timeout)
        if self._own_session:
            self.session.close()


class AsyncWriter:
    """asyncio face of `Writer`: same arguments; ``await write(...)``.

    Producing does not block, so `write` runs in the loop's thread; waiting
    for acknowledgements (``wait=True``, `flush`, `close`) runs in a worker
    thread, so the loop keeps going.
    """

    #: How often the loop serves delivery reports between writes (seconds).
    REPORT_INTERVAL = 0.1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self.writer: Writer | None = None
        self._reports: asyncio.Task[None] | None = None

    async def start(self) -> AsyncWriter:
        """Create topics and register the schema (in a thread: they are network calls)."""
        self.writer = await asyncio.to_thread(Writer, *self._args, **self._kwargs)
        self._reports = asyncio.create_task(self._serve_reports(self.writer), name="sal-kafka delivery reports")
        return self

    async def _serve_reports(self, writer: Writer) -> None:
        """Serve delivery reports in the loop, so that a failure is known
        (stats, ``on_delivery_error``) within `REPORT_INTERVAL` even if no
        write follows."""
        while not writer.closed:
            writer.poll(0)
            await asyncio.sleep(self.REPORT_INTERVAL)

    async def __aenter__(self) -> AsyncWriter:
        return await self.start()

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.close()

    def _ready(self) -> Writer:
        if self.writer is None:
            raise KafkaIOError("the writer is not started: call 'await writer.start()' first")
        return self.writer

    async def write(self, data: Any = None, /, *, wait: bool = False, **fields: Any) -> dict[str, Any]:
        record = self._ready().write(data, **fields)
        if wait:
            await self.flush()
        return record

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self._ready().flush, timeout)

    async def close(self) -> None:
        if self._reports is not None:
            self._reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reports
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)

    @property
    def stats(self) -> WriterStats:
        return self._ready().stats
