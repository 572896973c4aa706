"""``sal-kafka read --kafka-topics``: any Kafka topic as JSON lines.

For topics that are not a SAL component's, e.g. the change events Debezium
writes from PostgreSQL through Kafka Connect: each message is printed as
``{"topic", "partition", "offset", "key", "message", "timestamp"}``. The
value is decoded by what it is: the Confluent wire format (magic byte 0 and a
schema id the registry knows: Avro, decoded with that writer schema), else
JSON, else UTF-8 text, else ``{"base64": ...}``; the key likewise, without
the registry. Nothing is dropped silently: a value framed with an id the
registry does not know is printed as base64 and counted as undecodable.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import json
import signal
import sys
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

from ..errors import ConfigError, KafkaIOError, RegistryError
from ..kafka import KafkaConfig, Session

__all__ = ["run_read_any", "decode_value", "parse_since"]


def parse_since(text: str) -> int:
    """``--since``: an ISO 8601 time (UTC unless it says), or seconds before now
    (``300s``); as Kafka's milliseconds since the epoch."""
    if text.endswith("s") and text[:-1].replace(".", "", 1).isdigit():
        return int((time.time() - float(text[:-1])) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: expected an ISO 8601 time or seconds ago (e.g. 300s)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _text_or_json(data: bytes) -> Any:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}
    try:
        return json.loads(text)
    except ValueError:
        return text


def decode_value(data: bytes | None, registry: Any) -> tuple[Any, bool]:
    """``(the value as JSON-able data, whether it was decodable as what it claims)``."""
    if data is None:
        return None, True
    if len(data) >= 5 and data[0] == 0 and registry is not None:
        schema_id = int.from_bytes(data[1:5], "big")
        try:
            schema = registry.writer_schema(schema_id)
        except RegistryError:
            schema = None
        if schema is None:
            return {"base64": base64.b64encode(data).decode(), "schema_id": schema_id}, False
        import fastavro

        try:
            return fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema), None), True
        except Exception:  # a corrupt body: shown raw, counted
            return {"base64": base64.b64encode(data).decode(), "schema_id": schema_id}, False
    return _text_or_json(data), True


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _assign(consumer: Any, topics: list[str], args: argparse.Namespace, since_ms: int | None, timeout: float) -> None:
    try:
        metadata = consumer.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaIOError(f"cannot reach the Kafka brokers: {exc}") from None
    partitions = []
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            raise ConfigError(f"topic {topic!r} does not exist")
        for p in sorted(meta.partitions):
            partitions.append(TopicPartition(topic, p, OFFSET_END if args.from_end else OFFSET_BEGINNING))
    if since_ms is not None:
        wanted = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in partitions]
        try:
            found = consumer.offsets_for_times(wanted, timeout=timeout)
        except KafkaException as exc:
            raise KafkaIOError(f"cannot find the offsets at --since {args.since}: {exc}") from None
        # no message at or after that time: the partition's end
        partitions = [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found
        ]
    elif args.offset is not None:
        partitions = [TopicPartition(tp.topic, tp.partition, args.offset) for tp in partitions]
    consumer.assign(partitions)


def run_read_any(args: argparse.Namespace, config: KafkaConfig) -> int:
    """Print the messages of any Kafka topics as JSON lines; a summary on stderr."""
    topics = [args.component, *args.topics]
    counts = {"messages": 0, "undecodable": 0}
    stop = {"asked": False, "until": False}
    until_ms = parse_since(args.until) if args.until else None
    since_ms = parse_since(args.since) if args.since is not None else None  # a bad time: said before connecting

    def interrupted(*_: Any) -> None:  # Ctrl-C: end as after the last message, with the summary
        stop["asked"] = True

    previous = signal.signal(signal.SIGINT, interrupted)
    started = time.monotonic()
    try:
        with Session(config) as session:
            registry = session.registry if config.registry.url else None
            consumer = session.consumer(**{"enable.auto.commit": False, "group.id": "sal-kafka-read-any"})
            try:
                _assign(consumer, topics, args, since_ms, config.timeout)
                if args.ready_file:
                    open(args.ready_file, "a").close()
                idle_since = time.monotonic()
                while not stop["asked"] and (not args.number or counts["messages"] < args.number):
                    message = consumer.poll(0.2)
                    if message is None:
                        if time.monotonic() - idle_since > args.time:
                            break
                        continue
                    if message.error():
                        print(f"warning: {message.topic()}: {message.error().str()}", file=sys.stderr)
                        continue
                    idle_since = time.monotonic()
                    if until_ms is not None and message.timestamp()[1] > until_ms:
                        stop["until"] = True
                        break
                    value, ok = decode_value(message.value(), registry)
                    counts["undecodable"] += not ok
                    counts["messages"] += 1
                    key = message.key()
                    line: dict[str, Any] = {
                        "topic": message.topic(),
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "key": _text_or_json(key) if key is not None else None,
                        "message": value,
                        "timestamp": message.timestamp()[1],
                    }
                    if args.headers:
                        line["headers"] = [
                            [k, _text_or_json(v) if v is not None else None] for k, v in message.headers() or []
                        ]
                    print(json.dumps(line, default=_plain), flush=True)
            finally:
                consumer.close()
    finally:
        signal.signal(signal.SIGINT, previous)
    complete = bool(args.number) and counts["messages"] >= args.number
    ended = "interrupted" if stop["asked"] else "until" if stop["until"] else ("count" if complete else "idle")
    summary = {
        "topics": topics,
        **counts,
        "seconds": round(time.monotonic() - started, 3),
        "ended": ended,
        "idle_timeout_s": args.time,
    }
    print(json.dumps(summary), file=sys.stderr)
    if args.number and counts["messages"] < args.number:
        return 1
    return 0
