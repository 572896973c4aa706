"""Kafka keys and sequence numbers of SAL messages, as ts_salobj 8 makes them."""

from __future__ import annotations

from ..schemas._model import TopicInfo

__all__ = ["MAX_SEQ_NUM", "message_key"]

#: private_seqNum runs from 1 to this, then wraps to 1 (4-byte signed, as ts_salobj).
MAX_SEQ_NUM = (1 << 31) - 1


def message_key(topic: TopicInfo, index: int) -> bytes:
    """The Kafka key ts_salobj 8 gives, byte for byte (compaction is per byte key).

    Events, commands and ackcmd: ``{ "name": "Test", "index": 1, "topic":
    "logevent_scalars" }`` (a space inside each brace; ``index`` only for an
    indexed component, before ``topic``); telemetry: ``b""`` (empty, not null).
    """
    if topic.kind == "telemetry":
        return b""
    index_part = f'"index": {int(index)}, ' if topic.indexed else ""
    return f'{{ "name": "{topic.component_name}", {index_part}"topic": "{topic.sal_name}" }}'.encode()
