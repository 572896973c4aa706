"""Transports: what a `sal_kafka.Session` gets its broker clients from, side by side."""

from .base import AdminLike, ConsumerLike, ProducerLike, Transport
from .librdkafka import KafkaTransport
from .memory import MemoryMessage, MemoryTransport
from .turn import TurnProducer

__all__ = [
    "Transport",
    "ProducerLike",
    "ConsumerLike",
    "AdminLike",
    "KafkaTransport",
    "MemoryTransport",
    "MemoryMessage",
    "TurnProducer",
]
