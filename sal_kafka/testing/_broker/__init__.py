"""The embedded Apache Kafka broker: its jars (fetched once, cached) and its KRaft nodes."""

from ._cluster import KafkaCluster, KafkaNode, free_port
from ._jars import KAFKA_VERSION, KafkaJars, cache_root, find_java, kafka_jars

__all__ = [
    "KafkaCluster",
    "KafkaNode",
    "free_port",
    "KAFKA_VERSION",
    "KafkaJars",
    "cache_root",
    "find_java",
    "kafka_jars",
]
