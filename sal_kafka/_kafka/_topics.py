"""Create Kafka topics explicitly (never by auto-creation)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .._errors import KafkaIOError
from .._model import TopicInfo
from ._config import KafkaConfig

__all__ = ["ensure_topics", "topic_settings"]


def topic_settings(topic: TopicInfo) -> dict[str, str]:
    """Topic-level settings: events are compacted, so the latest of each key stays."""
    return {"cleanup.policy": "compact"} if topic.kind == "event" else {}


def ensure_topics(topics: Iterable[TopicInfo], config: KafkaConfig, admin: AdminClient | None = None) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Raises
    ------
    KafkaIOError
        If the broker cannot be reached within ``config.timeout`` or refuses.
    """
    admin = admin or AdminClient(config.admin_conf())
    wanted = {t.kafka_name: t for t in topics}
    try:
        existing = set(admin.list_topics(timeout=config.timeout).topics)
    except KafkaException as exc:
        raise KafkaIOError(
            f"cannot reach the Kafka broker at {config.bootstrap_servers} within {config.timeout} s: {exc}"
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
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=config.timeout).items():
        try:
            future.result(config.timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created meanwhile by another writer or reader
            raise KafkaIOError(f"cannot create topic {name} at {config.bootstrap_servers}: {exc}") from None
    return created
