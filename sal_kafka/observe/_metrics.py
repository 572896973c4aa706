"""Prometheus metrics of writers, readers, components, sinks and librdkafka, read at scrape time.

Every part already counts what it does (`WriterStats`, `ReaderStats`, ...);
a `Metrics` object turns those counts into Prometheus metric families when
``/metrics`` is scraped, through `prometheus_client`'s collector interface.
So the hot path pays nothing for metrics but a latency histogram entry per
message read, and only when metrics are on. Nothing is started by importing:
a process opts in with ``Session(metrics=Metrics())`` and `serve_metrics`.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Protocol

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # an extra: say which
    from .._util import missing

    raise missing("prometheus_client", "metrics", "Prometheus metrics (sal_kafka.observe)") from exc

from .._stats import LatencyHistogram
from ..errors import ConfigError

__all__ = ["Metrics", "serve_metrics", "BUCKETS", "METRIC_NAMES"]


class Writer(Protocol):
    """What the metrics read of a `sal_kafka.Writer` (structural: no import of the Kafka layer)."""

    stats: Any
    topic: Any
    index: int
    producer: Any
    producer_name: str


class Reader(Protocol):
    """What the metrics read of a `sal_kafka.Reader`."""

    stats: Any
    component: Any

    @property
    def broker_down(self) -> bool: ...

    def topic_counts(self) -> dict[str, tuple[int, int, int]]: ...

    def latencies(self) -> dict[str, LatencyHistogram]: ...

    def lags(self) -> list[tuple[str, int, int]]: ...


log = logging.getLogger("sal_kafka.metrics")

#: Upper bounds (seconds) of the latency histograms' buckets.
BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

#: name -> (type, help, labels) of every metric sal-kafka exposes.
METRIC_NAMES: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "sal_kafka_writer_messages_total": (
        "counter",
        "Messages handed to Kafka by writers",
        ("component", "topic", "index"),
    ),
    "sal_kafka_writer_bytes_total": ("counter", "Bytes of the messages written", ("component", "topic", "index")),
    "sal_kafka_writer_delivered_total": (
        "counter",
        "Messages the broker acknowledged",
        ("component", "topic", "index"),
    ),
    "sal_kafka_writer_failed_total": (
        "counter",
        "Messages the broker refused (reported): not stored",
        ("component", "topic", "index"),
    ),
    "sal_kafka_writer_unknown_total": (
        "counter",
        "Messages that timed out: the broker may or may not have stored them",
        ("component", "topic", "index"),
    ),
    "sal_kafka_writer_ack_latency_seconds": (
        "histogram",
        "From write to the broker's acknowledgement",
        ("component", "topic", "index"),
    ),
    "sal_kafka_producer_queue_messages": ("gauge", "Messages waiting in a producer's queue", ("client",)),
    "sal_kafka_reader_messages_total": ("counter", "Messages received by readers", ("component", "topic")),
    "sal_kafka_reader_bytes_total": ("counter", "Bytes of the messages received", ("component", "topic")),
    "sal_kafka_reader_undecodable_total": ("counter", "Messages that could not be decoded", ("component", "topic")),
    "sal_kafka_reader_offset_resets_total": (
        "counter",
        "Positions the broker no longer had, resumed from what exists",
        ("component",),
    ),
    "sal_kafka_reader_latency_seconds": (
        "histogram",
        "private_rcvStamp - private_sndStamp of the live messages read",
        ("component", "topic"),
    ),
    "sal_kafka_reader_broker_down": ("gauge", "1 while a reader's brokers are all down", ("component",)),
    "sal_kafka_consumer_lag_messages": (
        "gauge",
        "High watermark minus position, per assigned partition",
        ("component", "kafka_topic", "partition"),
    ),
    "sal_kafka_commands_received_total": ("counter", "Commands a controller received", ("component", "command")),
    "sal_kafka_command_acks_total": ("counter", "Acknowledgements a controller wrote", ("component", "command", "ack")),
    "sal_kafka_command_round_trip_seconds": (
        "histogram",
        "From a remote's start to the command's final acknowledgement",
        ("component", "command"),
    ),
    "sal_kafka_librdkafka_broker_rtt_seconds": (
        "gauge",
        "librdkafka's broker round-trip time (its statistics): average and p99",
        ("client", "broker", "stat"),
    ),
    "sal_kafka_librdkafka_queue_messages": (
        "gauge",
        "librdkafka's messages in queue (its statistics msg_cnt)",
        ("client",),
    ),
    "sal_kafka_librdkafka_replyq": ("gauge", "librdkafka's operations waiting for a poll (replyq)", ("client",)),
    "sal_kafka_sink_rows_total": ("counter", "Rows a sink committed", ("table",)),
    "sal_kafka_sink_batches_total": ("counter", "Batches a sink committed", ()),
    "sal_kafka_sink_refused_total": (
        "counter",
        "Messages a sink could not store as rows: set aside whole in sal_kafka_set_aside (logged once per kind)",
        ("kafka_topic", "kind"),
    ),
    "sal_kafka_sink_dropped_fields_total": (
        "counter",
        "Values of a newer writer's fields no column can hold (logged once per field)",
        ("kafka_topic", "field"),
    ),
    "sal_kafka_sink_batch_seconds": ("histogram", "Time to commit a batch", ()),
    "sal_kafka_sink_lag_messages": (
        "gauge",
        "Messages of a partition written to Kafka and not yet committed to the store",
        ("kafka_topic", "partition"),
    ),
    "sal_kafka_sink_lag_seconds": (
        "gauge",
        "While a partition has messages not yet stored: now minus the Kafka time of its newest stored one (else 0)",
        ("kafka_topic", "partition"),
    ),
    "sal_kafka_registry_requests_total": ("counter", "Registry server requests", ("endpoint", "method", "status")),
    "sal_kafka_registry_request_seconds": ("histogram", "Registry server request time", ("endpoint",)),
}


def histogram_family(name: str, labels: tuple[str, ...]) -> HistogramMetricFamily:
    help_text = METRIC_NAMES[name][1]
    return HistogramMetricFamily(name.removesuffix("_seconds") + "_seconds", help_text, labels=list(labels))


def add_histogram(family: HistogramMetricFamily, values: list[str], histogram: LatencyHistogram) -> None:
    """One labelled histogram from a `LatencyHistogram` (cumulative counts per bucket)."""
    buckets = [(repr(le), n) for le, n in zip(BUCKETS, histogram.counts_at_most(BUCKETS), strict=True)]
    buckets.append(("+Inf", histogram.count))
    family.add_metric(values, buckets, histogram.total)


class _Families:
    """The metric families of one scrape, by name."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def get(self, name: str) -> Metric:
        family = self._families.get(name)
        if family is None:
            kind, help_text, labels = METRIC_NAMES[name]
            if kind == "counter":
                family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=list(labels))
            elif kind == "gauge":
                family = GaugeMetricFamily(name, help_text, labels=list(labels))
            else:
                family = histogram_family(name, labels)
            self._families[name] = family
        return family

    def add(self, name: str, values: Iterable[Any], value: float) -> None:
        family: Any = self.get(name)
        family.add_metric([str(v) for v in values], value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


class Metrics(Collector):
    """The metrics of one process, read from the objects it watches at each scrape.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where to register; a new one by default (not prometheus_client's global
        one, so that two `Metrics` never clash).

    Examples
    --------
    >>> metrics = Metrics()
    >>> session = Session(metrics=metrics)          # its writers, readers, components
    >>> serve_metrics(9100, metrics)                # GET :9100/metrics
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self._writers: weakref.WeakSet[Writer] = weakref.WeakSet()
        self._readers: weakref.WeakSet[Reader] = weakref.WeakSet()
        self._sources: list[Callable[[_Families], None]] = []
        self._librdkafka: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.registry.register(self)

    # ------------------------------------------------------------------ what is watched

    def watch_writer(self, writer: Writer) -> None:
        self._writers.add(writer)

    def watch_reader(self, reader: Reader) -> None:
        self._readers.add(reader)

    def add_source(self, source: Callable[[_Families], None]) -> None:
        """``source(families)`` adds its samples at each scrape (components, sinks, servers)."""
        with self._lock:
            self._sources.append(source)

    def librdkafka_stats(self, text: str) -> None:
        """librdkafka's ``stats_cb``: keep the latest statistics of each client."""
        try:
            stats = json.loads(text)
        except ValueError:
            return
        with self._lock:
            self._librdkafka[str(stats.get("name", "?"))] = stats

    # ------------------------------------------------------------------ scraping

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        families = _Families()
        queues: dict[str, int] = {}  # per producer, shared by the writers of a session
        for writer in list(self._writers):
            _writer_samples(families, writer, queues)
        for name, length in queues.items():
            families.add("sal_kafka_producer_queue_messages", (name,), length)
        for reader in list(self._readers):
            _reader_samples(families, reader)
        with self._lock:
            sources, clients = list(self._sources), dict(self._librdkafka)
        for source in sources:
            source(families)
        for client, stats in clients.items():
            _librdkafka_samples(families, client, stats)
        return list(families)


def _writer_samples(families: _Families, writer: Writer, queues: dict[str, int]) -> None:
    stats, topic = writer.stats, writer.topic
    labels = (topic.component_name, topic.attr_name, writer.index)
    families.add("sal_kafka_writer_messages_total", labels, stats.written)
    families.add("sal_kafka_writer_bytes_total", labels, stats.bytes_written)
    families.add("sal_kafka_writer_delivered_total", labels, stats.delivered)
    families.add("sal_kafka_writer_failed_total", labels, stats.failed)
    families.add("sal_kafka_writer_unknown_total", labels, stats.unknown)
    family = families.get("sal_kafka_writer_ack_latency_seconds")
    assert isinstance(family, HistogramMetricFamily)
    add_histogram(family, [str(v) for v in labels], stats.ack_latency)
    queues[writer.producer_name] = len(writer.producer)


def _reader_samples(families: _Families, reader: Reader) -> None:
    component = reader.component.name
    for attr_name, (messages, nbytes, undecodable) in reader.topic_counts().items():
        families.add("sal_kafka_reader_messages_total", (component, attr_name), messages)
        families.add("sal_kafka_reader_bytes_total", (component, attr_name), nbytes)
        families.add("sal_kafka_reader_undecodable_total", (component, attr_name), undecodable)
    family = families.get("sal_kafka_reader_latency_seconds")
    assert isinstance(family, HistogramMetricFamily)
    for attr_name, histogram in reader.latencies().items():
        add_histogram(family, [component, attr_name], histogram)
    families.add("sal_kafka_reader_offset_resets_total", (component,), reader.stats.offset_resets)
    families.add("sal_kafka_reader_broker_down", (component,), 1.0 if reader.broker_down else 0.0)
    for kafka_topic, partition, lag in reader.lags():
        families.add("sal_kafka_consumer_lag_messages", (component, kafka_topic, partition), lag)


def _librdkafka_samples(families: _Families, client: str, stats: dict[str, Any]) -> None:
    families.add("sal_kafka_librdkafka_queue_messages", (client,), float(stats.get("msg_cnt", 0)))
    families.add("sal_kafka_librdkafka_replyq", (client,), float(stats.get("replyq", 0)))
    for name, broker in (stats.get("brokers") or {}).items():
        rtt = broker.get("rtt") or {}
        if not rtt.get("cnt"):
            continue
        for stat in ("avg", "p99"):
            value = rtt.get(stat, 0) / 1e6  # librdkafka gives microseconds
            families.add("sal_kafka_librdkafka_broker_rtt_seconds", (client, name, stat), value)


def serve_metrics(address: str | int, metrics: Metrics) -> tuple[str, int]:
    """Serve ``GET /metrics`` of ``metrics`` on ``address`` (a port, or ``host:port``;
    port 0 picks a free one) in a background thread; return the address served.

    Raises
    ------
    ConfigError
        For an address that does not parse or cannot be bound.
    """
    host, port = _address(address)
    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    bound = server.server_address
    log.info("metrics on http://%s:%d/metrics", bound[0], bound[1])
    return str(bound[0]), int(bound[1])


def _address(address: str | int) -> tuple[str, int]:
    text = str(address)
    host, sep, port = text.rpartition(":")
    try:
        return (host if sep else "127.0.0.1"), int(port)
    except ValueError:
        raise ConfigError(f"expected a metrics port or host:port, got {text!r}") from None
