"""A reader's decoding: each Kafka message into a `Received`, counted per topic.

An undecodable message (not the wire format, a corrupt body, a schema id the
registry definitely does not know) is counted, given to ``on_undecodable``
when there is one (a sink sets it aside), and logged: the first of each topic
and kind, then a count each minute. A schema the registry cannot be asked
for now raises `SchemaPending` out of the decoder: the reader holds the
message, never calls it undecodable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from time import time as _time
from types import SimpleNamespace
from typing import Any

from .._stats import LatencyHistogram
from ..classes._build import attrs_class, dataclass_class, msgspec_class
from ..codec._codec import Codec
from ..codec._time import TAI_MINUS_UTC
from ..errors import SalKafkaError
from ..options import Arrays, Postprocess
from ..schemas._model import TopicInfo
from ._received import ReaderStats, Received
from ._session import RateLimit, Session

__all__ = ["Decoder"]

#: undecodable messages: the first of each topic and kind, then a count once a minute
undecodable_log = logging.getLogger("sal_kafka.reader.undecodable")
undecodable_log.addFilter(RateLimit(period=60.0))


def _class_of(topic: TopicInfo, postprocess: Postprocess) -> Callable[..., Any] | None:
    if postprocess == "none":
        return None
    if postprocess == "simple_namespace":
        return SimpleNamespace
    return {"dataclass": dataclass_class, "attrs": attrs_class, "msgspec": msgspec_class}[postprocess](topic)


class Decoder:
    """Decodes the messages of ``topics`` by their writer's schema id (the registered id
    takes the compiled fast path), keeps one ``salIndex`` when ``index`` is given, stamps
    ``private_rcvStamp`` (TAI), and counts per topic; latencies when ``latencies``."""

    def __init__(
        self,
        session: Session,
        topics: Sequence[TopicInfo],
        stats: ReaderStats,
        *,
        index: int | None,
        postprocess: Postprocess,
        arrays: Arrays,
        latencies: bool,
        on_undecodable: Callable[[Any, Exception], None] | None = None,
    ) -> None:
        self.stats = stats
        self.on_undecodable = on_undecodable
        self.index = index
        self.attr_names = {t.kafka_name: t.attr_name for t in topics}
        # per Kafka topic, what decoding a message needs: one lookup per message
        self._routes = {
            t.kafka_name: (
                Codec(t, schema_id=session.schema_id(t, register=False), arrays=arrays).decode_message,
                _class_of(t, postprocess),
                t.attr_name,
            )
            for t in topics
        }
        self._writer_schema = session.writer_schemas
        # per Kafka topic: [messages, bytes, undecodable]
        self.counts: dict[str, list[int]] = {t.kafka_name: [0, 0, 0] for t in topics}
        self.latencies: dict[str, LatencyHistogram] | None = (
            {t.kafka_name: LatencyHistogram() for t in topics} if latencies else None
        )

    def __call__(self, message: Any) -> Received | None:
        """The `Received` of a Kafka message; None when undecodable (logged) or of another salIndex."""
        name, value = message.topic(), message.value() or b""
        stats, counts = self.stats, self.counts[name]
        stats.received += 1
        stats.bytes_received += len(value)
        counts[0] += 1
        counts[1] += len(value)
        decode, cls, attr_name = self._routes[name]
        try:  # straight into the class when there is one: no intermediate dict
            data = decode(value, cls, self._writer_schema)
        except (SalKafkaError, TypeError) as exc:
            stats.undecodable += 1
            counts[2] += 1
            self._report(name, message, exc)
            if self.on_undecodable is not None:
                self.on_undecodable(message, exc)
            return None
        is_dict = cls is None
        if (
            self.index is not None
            and (data.get("salIndex") if is_dict else getattr(data, "salIndex", None)) != self.index
        ):
            stats.filtered += 1
            return None
        rcv = _time() + TAI_MINUS_UTC
        if is_dict:
            data["private_rcvStamp"] = rcv
        else:
            data.private_rcvStamp = rcv
        if self.latencies is not None:
            self.latencies[name].add(rcv - (data["private_sndStamp"] if is_dict else data.private_sndStamp))
        return Received(
            attr_name,
            data,
            message.partition(),
            message.offset(),
            len(value),
            False,
            message.key(),
            message.timestamp()[1],
            name,
            value,
        )

    def _report(self, name: str, message: Any, exc: Exception) -> None:
        """Log the first undecodable message of a topic and kind, then a count a minute."""
        undecodable_log.warning(
            "undecodable message on %s [%d] at offset %d: %s; counted (undecodable), logged once a minute",
            name,
            message.partition(),
            message.offset(),
            exc,
            extra={"rate_key": f"{name} {type(exc).__name__}"},
        )

    def topic_counts(self) -> dict[str, tuple[int, int, int]]:
        """``{attr_name: (messages, bytes, undecodable)}`` received per topic."""
        return {self.attr_names[k]: (c[0], c[1], c[2]) for k, c in self.counts.items()}

    def topic_latencies(self) -> dict[str, LatencyHistogram]:
        """``{attr_name: histogram}`` of ``private_rcvStamp - private_sndStamp``."""
        return {self.attr_names[k]: h for k, h in (self.latencies or {}).items()}
