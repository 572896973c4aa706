"""The real transport: librdkafka's clients, from confluent-kafka."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from .base import AdminLike, ConsumerLike, ProducerLike

__all__ = ["KafkaTransport"]


class KafkaTransport:
    """The real thing: librdkafka clients from confluent-kafka."""

    def producer(self, conf: dict[str, Any]) -> ProducerLike:
        return Producer(conf)

    def consumer(self, conf: dict[str, Any]) -> ConsumerLike:
        return Consumer(conf)

    def admin(self, conf: dict[str, Any]) -> AdminLike:
        return AdminClient(conf)
