"""What a reader gives: each message read, and the counts of what it did."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Received", "ReaderStats"]


@attrs.define(slots=True)
class Received:
    """One message read: the topic's attr name, the data, where it was.

    ``key`` is the message's Kafka key (``b""`` for telemetry), ``timestamp``
    its Kafka timestamp in ms (creation time), ``history`` True for history
    delivered at start, ``kafka_topic`` the Kafka topic's name, ``value``
    the message as it came (the Confluent frame: what a sink sets aside).
    """

    topic: str
    data: Any
    partition: int
    offset: int
    size: int
    history: bool = False
    key: bytes | None = None
    timestamp: int = 0
    kafka_topic: str = ""
    value: bytes = b""


@attrs.define
class ReaderStats:
    """Counters: ``received`` from Kafka, ``delivered`` to the caller,
    ``undecodable`` (logged and skipped), ``filtered`` (other salIndex),
    ``broker_down_events`` (times all brokers were reported down),
    ``offset_resets`` (positions the broker no longer had, e.g. removed by
    retention: reset to the first message it has; logged), ``holds`` (times a
    partition was held for the registry: its schema could not be asked for)."""

    received: int = 0
    delivered: int = 0
    undecodable: int = 0
    filtered: int = 0
    bytes_received: int = 0
    broker_down_events: int = 0
    offset_resets: int = 0
    holds: int = 0
