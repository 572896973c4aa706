"""One session per process: the connections every writer and reader shares.

ts_salobj calls this a ``Domain``. A `Session` owns the configuration, the
broker-facing transport (librdkafka clients, or an in-memory fake in tests),
one producer per distinct producer setting (usually one), one admin client,
one registry client, the components loaded and the schema ids looked up.
Writers and readers are views on it; they make a private session when they
are given none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from ..errors import ConfigError, IncompatibleSchemaError, KafkaIOError, RegistryError
from ..registry import SchemaRegistry
from ..schemas._model import ComponentInfo, TopicInfo
from ._config import KafkaConfig
from ._lookups import WriterSchemas

if TYPE_CHECKING:  # metrics (prometheus-client) are optional: given, not imported
    from ..observe._metrics import Metrics
from .transports import AdminLike, ConsumerLike, KafkaTransport, ProducerLike, Transport

__all__ = ["Session", "ensure_topics", "topic_settings", "retriable"]


class RateLimit(logging.Filter):
    """Let one record of a kind through per ``period`` seconds, then say how many were held back.

    librdkafka repeats a failure on every reconnect attempt (a broker that is
    down gives a line every few ms per client); the first says it, a count says
    how long it went on. A record's kind is its ``rate_key`` when it has one
    (``extra={"rate_key": ...}``), else what its text says after the client's name.
    """

    def __init__(self, period: float = 30.0) -> None:
        super().__init__()
        self.period = period
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # the kind: the facility and what follows the client's name (no timestamps, same host)
        text = record.getMessage()
        kind = str(getattr(record, "rate_key", None) or text.split("]: ", 1)[-1][:80])
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(kind, (0.0, 0))
            if now - last < self.period:
                self._last[kind] = (last, held + 1)
                return False
            self._last[kind] = (now, 0)
        if held:
            record.msg = f"{text} ({held} more like it in the last {self.period:.0f} s)"
            record.args = ()
        return True


#: librdkafka's own log lines go here (through Python logging, not stderr), rate-limited.
librdkafka_log = logging.getLogger("sal_kafka.librdkafka")
log = logging.getLogger("sal_kafka.session")

#: what librdkafka says of a topic that does not exist (any more)
MISSING_TOPIC = frozenset([KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION])
librdkafka_log.addFilter(RateLimit())


def topic_settings(topic: TopicInfo) -> dict[str, str]:
    """Topic-level settings: events are compacted, so the latest of each key stays."""
    return {"cleanup.policy": "compact"} if topic.kind == "event" else {}


class Session:
    """The connections of one process.

    Parameters
    ----------
    config : KafkaConfig, optional
        Addresses and settings; default `KafkaConfig.from_env`.
    transport : Transport, optional
        What makes the librdkafka clients; default the real ones
        (`sal_kafka.testing.MemoryTransport` is an in-memory broker).
    registry : SchemaRegistry, optional
        A registry client to share; default one made from ``config.registry``
        (and closed with the session).
    metrics : Metrics, optional
        Expose the writers, readers and components of this session, and
        librdkafka's statistics, as Prometheus metrics (see `sal_kafka.observe`).

    Examples
    --------
    >>> with Session() as session:
    ...     forces = Writer("KMirror", "tel_forceActuatorData", session=session)
    ...     state = Writer("KMirror", "evt_detailedState", session=session)  # same producer
    """

    def __init__(
        self,
        config: KafkaConfig | None = None,
        *,
        transport: Transport | None = None,
        registry: SchemaRegistry | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config or KafkaConfig.from_env()
        self.metrics = metrics
        self.transport: Transport = transport or KafkaTransport()
        self._registry = registry
        self._own_registry = registry is None
        self._lock = threading.RLock()
        self._producers: dict[tuple[tuple[str, str], ...], ProducerLike] = {}
        self._admin: AdminLike | None = None
        self._components: dict[str, ComponentInfo] = {}
        self._existing_topics: set[str] = set()
        self._schema_ids: dict[str, int] = {}
        self._writer_schemas: WriterSchemas | None = None
        self._recreating: dict[str, float] = {}  # topic: not again before (monotonic)
        self._stop_recreating = threading.Event()
        self._closed = False
        #: the last error a broker reported that is not a plain disconnection (e.g.
        #: "SASL authentication error: ... invalid credentials"): named when it fails
        self.last_broker_error: str | None = None

    def __repr__(self) -> str:
        return f"Session({self.config.bootstrap_servers}, registry {self.config.registry.url})"

    # ------------------------------------------------------------------ what it owns

    @property
    def registry(self) -> SchemaRegistry:
        """The registry client (made on first use)."""
        with self._lock:
            if self._registry is None:
                self._registry = SchemaRegistry(config=self.config.registry)
            return self._registry

    @property
    def writer_schemas(self) -> WriterSchemas:
        """Writer schemas by id for this session's readers (`sal_kafka.kafka._lookups`)."""
        with self._lock:
            if self._writer_schemas is None:
                self._writer_schemas = WriterSchemas(self.registry)
            return self._writer_schemas

    def component(self, name: str | ComponentInfo) -> ComponentInfo:
        """A component by name (loaded once, with this session's topic sub-namespace)."""
        if isinstance(name, ComponentInfo):
            return name
        with self._lock:
            found = self._components.get(name)
            if found is None:
                found = self._components[name] = ComponentInfo.load(name, topic_subname=self.config.topic_subname)
            return found

    def producer(self, **settings: Any) -> ProducerLike:
        """The producer with these librdkafka settings (over the configured ones),
        shared by every writer that asks for the same."""
        key = tuple(sorted((k, str(v)) for k, v in settings.items()))
        with self._lock:
            self._check_open()
            found = self._producers.get(key)
            if found is None:
                conf = self.config.producer_conf(**settings)
                found = self._producers[key] = self._make("producer", conf)
            return found

    def producer_name(self, producer: ProducerLike) -> str:
        """A stable name of one of this session's producers (a bounded metrics label)."""
        with self._lock:
            for i, known in enumerate(self._producers.values()):
                if known is producer:
                    return f"producer-{i + 1}"
        return "producer-?"

    def consumer(self, **settings: Any) -> ConsumerLike:
        """A new consumer (its owner closes it)."""
        self._check_open()
        consumer: ConsumerLike = self._make("consumer", self.config.consumer_conf(**settings))
        return consumer

    @property
    def admin(self) -> AdminLike:
        with self._lock:
            self._check_open()
            if self._admin is None:
                self._admin = self._make("admin", self.config.admin_conf())
            return self._admin

    def note_broker_error(self, error: KafkaError) -> None:
        """Keep what a client's error callback reported (a disconnection says nothing new)."""
        if error.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            self.last_broker_error = error.str()

    def unreachable(self, exc: KafkaException, client: AdminLike | ConsumerLike | None = None) -> str:
        """Why the broker cannot be reached: librdkafka's reason, and what a broker said
        before (a refused login shows only as a transport failure in the call itself).

        ``client`` (default the admin client) is polled once first: its error
        callbacks wait in its queue until then. A consumer must have no assignment.
        """
        client = client or self._admin
        if client is not None:
            client.poll(0)
        said = self.last_broker_error
        return f"{_reason(exc)}; the broker said: {said}" if said else _reason(exc)

    def _make(self, kind: str, conf: dict[str, Any]) -> Any:
        conf = {"logger": librdkafka_log, "error_cb": self.note_broker_error, **conf}
        if self.metrics is not None and kind != "admin":  # librdkafka's statistics as metrics
            conf.setdefault("statistics.interval.ms", 5000)
            conf["stats_cb"] = self.metrics.librdkafka_stats
        try:
            return getattr(self.transport, kind)(conf)
        except KafkaException as exc:
            raise ConfigError(f"invalid {kind} settings: {exc.args[0].str() if exc.args else exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid {kind} settings: {exc}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise KafkaIOError(f"{self!r} is closed")

    # ------------------------------------------------------------------ topics and schemas

    def ensure_topics(self, topics: Iterable[TopicInfo], *, recheck: bool = False) -> list[str]:
        """Create the topics that do not exist yet (never by auto-creation);
        return the names created. Topics seen before are not asked about again,
        unless ``recheck`` (topics deleted meanwhile by someone else). A new topic
        is returned once every partition of it has a leader.

        Raises
        ------
        KafkaIOError
            If the broker cannot be reached within ``config.timeout`` or refuses.
        """
        config = self.config
        wanted = {t.kafka_name: t for t in topics if recheck or t.kafka_name not in self._existing_topics}
        if not wanted:
            return []
        try:
            existing = set(self.admin.list_topics(timeout=config.timeout).topics)
        except KafkaException as exc:
            raise KafkaIOError(
                f"cannot reach the Kafka broker at {config.bootstrap_servers} within {config.timeout} s: "
                f"{self.unreachable(exc)}"
            ) from None
        missing = [
            NewTopic(
                name,
                num_partitions=config.partitions_of(info.kind),
                replication_factor=config.replication_factor,
                config=topic_settings(info),
            )
            for name, info in wanted.items()
            if name not in existing
        ]
        created, raced = self._create(missing) if missing else ([], [])
        if created or raced:
            # a topic another client created meanwhile is as new as ours: its
            # leader may not be known yet either (a reader then found no topic)
            self._wait_for_leaders(created + raced)
        self._existing_topics.update(wanted)
        return created

    def recreate_lost(self, topics: Sequence[TopicInfo], why: str) -> None:
        """Topics the broker says do not exist (deleted; a broker that lost its data):
        create again those missing, in the background (the caller may be an event loop's
        thread or a librdkafka callback), at most once per 10 s per topic; logged."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            wanted = [t for t in topics if now >= self._recreating.get(t.kafka_name, 0.0)]
            for t in wanted:
                self._recreating[t.kafka_name] = now + 10.0
        if not wanted:
            return

        def recreate() -> None:
            # a topic being deleted is still listed for a moment (and cannot be created
            # meanwhile): look again a few times, so that none is left missing
            failure = None
            for delay in (0.0, 1.0, 2.0, 4.0):
                if self._closed or self._stop_recreating.wait(delay):
                    return
                try:
                    created = self.ensure_topics(wanted, recheck=True)
                    failure = None
                except KafkaIOError as exc:
                    failure = exc
                    continue
                if created:
                    log.warning(
                        "%d topics did not exist any more (%s): created again: %s",
                        len(created),
                        why,
                        ", ".join(created),
                    )
            if failure is not None:
                log.error("topics may be missing (%s) and cannot be checked or created again: %s", why, failure)

        threading.Thread(target=recreate, name="sal-kafka-recreate", daemon=True).start()

    def _wait_for_leaders(self, names: list[str]) -> None:
        """Until every partition of ``names`` has a leader: Apache Kafka answers a
        CreateTopics before the new partitions' leaders reach every broker's
        metadata, and a request in between gets "not leader for partition"."""
        config = self.config
        deadline = time.monotonic() + config.timeout
        waiting = list(names)
        while waiting:
            try:
                topics = self.admin.list_topics(timeout=config.timeout).topics
            except KafkaException as exc:
                raise KafkaIOError(
                    f"cannot reach the Kafka broker at {config.bootstrap_servers}: {self.unreachable(exc)}"
                ) from None
            waiting = [n for n in waiting if not _led(topics.get(n))]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise KafkaIOError(
                    f"topics created at {config.bootstrap_servers} have no leader after {config.timeout} s: "
                    + ", ".join(waiting)
                )
            time.sleep(0.02)

    def _create(self, missing: list[NewTopic]) -> tuple[list[str], list[str]]:
        """``(created, created meanwhile by another client)``."""
        config = self.config
        created: list[str] = []
        raced: list[str] = []
        for name, future in self.admin.create_topics(missing, request_timeout=config.timeout).items():
            try:
                future.result(config.timeout)
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    raced.append(name)  # created meanwhile by another writer or reader
                    continue
                raise KafkaIOError(
                    f"cannot create topic {name} at {config.bootstrap_servers}: {_reason(exc)}"
                ) from None
        return created, raced

    def register(self, topics: Iterable[TopicInfo]) -> None:
        """Register the schemas of many topics at once (concurrently, unchanged
        ones in one request) and remember their ids.

        Raises
        ------
        RegistryError
            Naming the first subject refused and why.
        """
        wanted = [t for t in topics if t.subject not in self._schema_ids]
        if not wanted:
            return
        results = self.registry.register_topics(wanted)
        for result in results:
            if result.schema_id is not None:
                self._schema_ids[result.subject] = result.schema_id
        refused = [r for r in results if r.refused]
        if refused:
            kind = IncompatibleSchemaError if refused[0].status == "incompatible" else RegistryError
            raise kind(
                f"{len(refused)} of {len(results)} schemas refused; first: {refused[0].detail}",
                url=self.registry.url,
                subject=refused[0].subject,
            )

    def schema_id(self, topic: TopicInfo, register: bool = True) -> int | None:
        """The registry id of ``topic``'s schema, registered first if ``register``
        and missing (None when not registered and not ``register``)."""
        found = self._schema_ids.get(topic.subject)
        if found is None:
            found = self.registry.ensure_registered(topic) if register else self.registry.lookup_id(topic)
            if found is not None:
                self._schema_ids[topic.subject] = found
        return found

    # ------------------------------------------------------------------ closing

    def flush(self, timeout: float | None = None) -> int:
        """Wait for every producer's messages; return how many are still undelivered."""
        timeout = self.config.timeout if timeout is None else timeout
        with self._lock:
            producers = list(self._producers.values())
        return sum(p.flush(timeout) for p in producers)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Flush the producers, then release everything (idempotent)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._stop_recreating.set()
        with self._lock:
            self._producers.clear()
            self._admin = None
            if self._writer_schemas is not None:
                self._writer_schemas.close()
            if self._own_registry and self._registry is not None:
                self._registry.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What a broker answers while a partition's leader moves or a new topic's
#: leader is not yet known everywhere (librdkafka does not flag these errors
#: retriable when it gives them to a synchronous call).
_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def retriable(error: KafkaError) -> bool:
    """True for an error worth retrying: librdkafka's flag, or a leader that is moving."""
    return bool(error.retriable()) or error.code() in _LEADER_MOVING


def _led(meta: Any) -> bool:
    """True when a topic's metadata names a leader for each of its partitions."""
    if meta is None or meta.error is not None or not meta.partitions:
        return False
    return all(p.error is None and p.leader >= 0 for p in meta.partitions.values())


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def ensure_topics(topics: Iterable[TopicInfo], config: KafkaConfig) -> list[str]:
    """Create the topics that do not exist yet; return the names created
    (`Session.ensure_topics` on a session of its own)."""
    with Session(config) as session:
        return session.ensure_topics(topics)
