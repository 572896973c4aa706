"""``sal-kafka write`` and ``sal-kafka read``: the read/write benchmark tools."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import msgspec

from .._stats import LatencyHistogram
from ..errors import ConfigError
from ..kafka import KafkaConfig, Reader, Session, Writer
from ..kafka._sample import sample_record
from ..options import ACKS, ARRAYS, POSTPROCESS, VALIDATION_MODES
from ..schemas._model import ComponentInfo
from ._connection import add_connection_arguments, add_metrics_argument, kafka_config, metrics_session


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", metavar="COMPONENT")
    parser.add_argument("--index", type=int, default=0, help="salIndex (indexed components)")
    add_connection_arguments(parser)
    parser.add_argument("--xml-dir", help="folder holding SALSubsystems.xml (default: bundled xml_schemas/)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_metrics_argument(parser)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    write = subparsers.add_parser("write", help="write messages of one topic and report the rate")
    _common(write)
    write.add_argument("topic", metavar="TOPIC")
    write.add_argument("-n", "--number", type=int, default=10000, help="messages to write (default 10000)")
    write.add_argument("--validation", choices=VALIDATION_MODES, default="strict")
    write.add_argument("--acks", choices=ACKS, default="1")
    write.add_argument(
        "--nowait-ack",
        "--nowait_ack",
        dest="nowait_ack",
        action="store_true",
        help="acks=0: do not wait for the broker",
    )
    write.add_argument("--rate", type=float, default=0.0, help="messages per second (0: as fast as possible)")
    write.add_argument("--linger-ms", type=float, default=None)
    write.add_argument("--compression", default=None)
    write.set_defaults(func=run_write)

    read = subparsers.add_parser("read", help="read topics and report rate, latency and losses")
    _common(read)
    read.add_argument("topics", nargs="*", metavar="TOPIC")
    read.add_argument("-n", "--number", type=int, default=0, help="stop after this many messages (0: no limit)")
    read.add_argument(
        "-t",
        "--time",
        type=float,
        default=10.0,
        help="with -n: stop after this many seconds without a message; without: after this many seconds in all",
    )
    read.add_argument(
        "--broker-timeout",
        type=float,
        default=15.0,
        help="end with an error once the brokers have been unreachable this many seconds (default 15)",
    )
    read.add_argument("--postprocess", choices=POSTPROCESS, default="none")
    read.add_argument("--arrays", choices=ARRAYS, default="list", help="array fields as lists or numpy arrays")
    read.add_argument(
        "--max-history-read",
        "--max_history_read",
        dest="max_history_read",
        type=int,
        default=None,
        help="how far back the history of an indexed component looks (default 1000, or $LSST_MAX_HISTORY_READ)",
    )
    read.add_argument("--no-history", action="store_true", help="skip the history of events")
    read.add_argument(
        "--jsonl",
        action="store_true",
        help='print each message as a JSON line: {"topic", "partition", "offset", "key", "timestamp", "message"}',
    )
    read.add_argument(
        "--ready-file", help="create this file once the reader is assigned its start positions (for scripts)"
    )
    raw = read.add_argument_group(
        "any Kafka topic",
        "with --kafka-topics, COMPONENT and TOPIC are Kafka topic names of any content (e.g. Debezium's "
        "change events): each message is printed as a JSON line, its value decoded as Avro (Confluent "
        "wire format, through the registry), JSON or text; -t is then the idle timeout (seconds without "
        "a message) and the start is the beginning unless said",
    )
    raw.add_argument("--kafka-topics", action="store_true", help="read these Kafka topics, not a SAL component's")
    raw.add_argument("--headers", action="store_true", help="print each message's headers too")
    positions = read.add_argument_group(
        "where to start and stop (a SAL component's topics start with their history, then live, unless said)"
    )
    start = positions.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the first message kept")
    start.add_argument("--from-end", action="store_true", help="start at the end: only what is written next")
    start.add_argument(
        "--since", metavar="TIME", help="start at the first message at or after TIME (ISO 8601, or 300s: ago)"
    )
    start.add_argument("--offset", type=int, metavar="N", help="start at offset N of every partition")
    positions.add_argument(
        "--until",
        metavar="TIME",
        help="stop at the first message written after TIME (its Kafka time; ISO 8601, or 300s: ago): a backfill",
    )
    read.set_defaults(func=run_read)


def _session(args: argparse.Namespace, config: KafkaConfig) -> Session:
    """The command's session; with ``--metrics-port``, its metrics served there."""
    return metrics_session(args, config)


def _component(args: argparse.Namespace, config: KafkaConfig) -> ComponentInfo:
    return ComponentInfo.load(args.component, args.xml_dir, config.topic_subname)


def _progress(label: str, done: int, total: int, start: float) -> None:
    rate = done / max(time.perf_counter() - start, 1e-9)
    end = f"/{total}" if total else ""
    print(f"\r{label}: {done}{end} messages, {rate:,.0f}/s", end="", file=sys.stderr, flush=True)


def run_write(args: argparse.Namespace) -> int:
    config = kafka_config(args)
    component = _component(args, config)
    acks = "0" if args.nowait_ack else args.acks
    with (
        _session(args, config) as session,
        Writer(
            component,
            args.topic,
            index=args.index,
            session=session,
            validation=args.validation,
            acks=acks,
            linger_ms=args.linger_ms,
            compression=args.compression,
        ) as writer,
    ):
        record = sample_record(writer.topic)
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        start = last = time.perf_counter()
        for i in range(args.number):
            if period:
                target = start + i * period
                while (now := time.perf_counter()) < target:
                    writer.poll(min(target - now, 0.001))  # wait serving reports: exact ack latency
            writer.write(record)
            if time.perf_counter() - last > 1.0:
                last = time.perf_counter()
                _progress("write", i + 1, args.number, start)
        written = time.perf_counter() - start
        writer.flush()
        elapsed = time.perf_counter() - start
    stats = writer.stats
    result = {
        "topic": writer.topic.kafka_name,
        "messages": stats.written,
        "delivered": stats.delivered if acks != "0" else None,
        "failed": stats.failed,
        "unknown_outcome": stats.unknown,  # timed out: perhaps stored (count the topic to know)
        "bytes": stats.bytes_written,
        "seconds": round(elapsed, 4),
        "messages_per_s": round(stats.written / written, 1),
        "mb_per_s": round(stats.bytes_written / written / 1e6, 2),
        "messages_per_s_with_flush": round(stats.written / elapsed, 1),
        "ack_latency_ms": _histogram_ms(stats.ack_latency),
        "acks": acks,
        "validation": args.validation,
    }
    if last != start:
        print(file=sys.stderr)
    _report(result, args.json)
    return 1 if stats.failed or stats.unknown else 0


def _in_ms(seconds: dict[str, float | None]) -> dict[str, float | None]:
    """Statistics in seconds as milliseconds, to the µs."""
    return {k: (round(v * 1000.0, 3) if v is not None else None) for k, v in seconds.items()}


def _histogram_ms(histogram: LatencyHistogram) -> dict[str, float | None]:
    """Mean, p50, p99 and max of a histogram, in ms (its bins are 0.05 ms wide)."""
    return _in_ms(
        {
            "mean": histogram.mean,
            "p50": histogram.percentile(50),
            "p99": histogram.percentile(99),
            "max": histogram.max if histogram.count else None,
        }
    )


def _latency_stats(latencies: Sequence[float]) -> dict[str, float | None]:
    if not latencies:
        return {k: None for k in ("mean", "stdev", "min", "p50", "p99", "max")}
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {
        "mean": statistics.fmean(ordered),
        "stdev": statistics.pstdev(ordered),
        "min": ordered[0],
        "p50": pct(50),
        "p99": pct(99),
        "max": ordered[-1],
    }


class _Tally:
    """Latency and losses of the live messages read (history is not timed).

    A gap in ``private_seqNum`` between two messages of one writer (topic,
    salIndex, process) counts as lost. Latencies are kept in seconds and
    scaled to ms once, in the statistics: this runs for every message.
    """

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.lost = 0
        self._last_seq: dict[tuple[str, Any, Any], int] = {}

    def add(self, received: Any) -> None:
        if received.history:
            return
        data = received.data
        if type(data) is dict:
            rcv, snd, seq = data["private_rcvStamp"], data["private_sndStamp"], data["private_seqNum"]
            key = (received.topic, data.get("salIndex"), data["private_origin"])
        else:
            rcv, snd, seq = data.private_rcvStamp, data.private_sndStamp, data.private_seqNum
            key = (received.topic, getattr(data, "salIndex", None), data.private_origin)
        self.latencies.append(rcv - snd)
        previous = self._last_seq.get(key)
        if previous is not None and seq > previous + 1:
            self.lost += seq - previous - 1
        self._last_seq[key] = seq

    def latency_ms(self) -> dict[str, float | None]:
        return _in_ms(_latency_stats(self.latencies))


def run_read(args: argparse.Namespace) -> int:
    if not args.broker_timeout > 0:  # 0 or less would end the run at once, the broker up or not
        raise ConfigError(f"--broker-timeout must be above 0 seconds, got {args.broker_timeout:g}")
    config = kafka_config(args)
    if args.kafka_topics:
        from ._raw import run_read_any

        return run_read_any(args, config)
    if args.headers:
        raise ConfigError("--headers goes with --kafka-topics (SAL messages carry none)")
    if not args.topics:
        raise ConfigError(f"name the topics of {args.component} to read (e.g. evt_summaryState)")
    component = _component(args, config)
    tally = _Tally()
    history = False if args.no_history else None
    until_ms = _time_ms(args.until) if args.until else None
    with (
        _session(args, config) as session,
        Reader(
            component,
            args.topics,
            index=args.index or None,
            session=session,
            history=history,
            start=_start(args),
            max_history_read=args.max_history_read,
            postprocess=args.postprocess,
            arrays=args.arrays,
        ) as reader,
    ):
        kafka_names = {t.attr_name: t.kafka_name for t in reader.topics}
        if args.ready_file:
            Path(args.ready_file).touch()
        start = first = last_progress = time.perf_counter()
        count = 0
        broker_down = 0.0
        ended = "count"
        try:
            while not args.number or count < args.number:
                received = _next(reader, args, start)
                if received is None:  # idle for --time seconds, the run's time is up, or the broker gone
                    broker_down = reader.broker_down_for
                    ended = "broker down" if broker_down else (f"idle {args.time:g} s" if args.number else "time")
                    break
                if until_ms is not None and received.timestamp > until_ms:  # the backfill's end
                    ended = "until"
                    break
                if count == 0:
                    first = last_progress = time.perf_counter()
                count += 1
                tally.add(received)
                if args.jsonl:
                    print(_json_line(received, kafka_names[received.topic]), flush=args.number == 0)
                now = time.perf_counter()
                if now - last_progress > 1.0:
                    last_progress = now
                    _progress("read", count, args.number, first)
                if now - start > args.time and not args.number:
                    ended = "time"
                    break
        except KeyboardInterrupt:  # Ctrl-C: the summary of what was read
            ended = "interrupted"
        elapsed = max(time.perf_counter() - first, 1e-9)
        stats = reader.stats
    if last_progress != start:
        print(file=sys.stderr)
    result = {
        "topics": [t.kafka_name for t in reader.topics],
        "messages": count,
        "ended": ended,  # count, idle N s (-t with -n), time (-t without), until, interrupted, broker down
        "bytes": stats.bytes_received,
        "seconds": round(elapsed, 4),
        "messages_per_s": round(count / elapsed, 1),
        "mb_per_s": round(stats.bytes_received / elapsed / 1e6, 2),
        "latency_ms": tally.latency_ms(),
        "lost": tally.lost,
        "missing": max(0, args.number - count) if args.number else None,
        "undecodable": stats.undecodable,
        "filtered": stats.filtered,
        "offset_resets": stats.offset_resets,
        "broker_down_events": stats.broker_down_events,
        "postprocess": args.postprocess,
        "arrays": args.arrays,
    }
    if not args.jsonl:  # the JSON lines are the output: the report would break jq
        _report(result, args.json)
    else:
        print(json.dumps(result), file=sys.stderr)
    return _read_status(args, count, tally.lost, broker_down)


def _time_ms(text: str) -> int:
    from ._raw import parse_since

    return parse_since(text)


def _start(args: argparse.Namespace) -> Any:
    """The Reader's ``start`` from --from-beginning / --from-end / --since / --offset."""
    import datetime

    if args.from_beginning:
        return "beginning"
    if args.from_end:
        return "end"
    if args.offset is not None:
        return args.offset
    if args.since is not None:
        return datetime.datetime.fromtimestamp(_time_ms(args.since) / 1000, datetime.UTC)
    return None


def _next(reader: Reader, args: argparse.Namespace, start: float) -> Any:
    """The next message; None once idle for ``--time`` (with ``-n``), at the end of the
    run's ``--time`` (without), or once the brokers have been down ``--broker-timeout`` s
    (the library would wait for them; a benchmark run must end, and say why)."""
    idle_end = time.perf_counter() + args.time
    while True:
        end = idle_end if args.number else start + args.time
        wait = end - time.perf_counter()
        if wait <= 0:
            return None
        received = reader.next(min(wait, 0.5))
        if received is not None:
            return received
        if reader.broker_down_for > args.broker_timeout:
            return None


def _read_status(args: argparse.Namespace, count: int, lost: int, broker_down: float) -> int:
    """1, with one line saying why, when the read did not get what it was asked for."""
    problems = []
    if broker_down:
        problems.append(
            f"the broker at {args.bootstrap_servers or 'the configured address'} is unreachable "
            f"(down for {broker_down:.1f} s)"
        )
    if args.number and count < args.number:
        problems.append(f"{args.number - count} of {args.number} messages missing (no message for {args.time} s)")
    if lost:
        problems.append(f"{lost} messages lost (gaps in private_seqNum)")
    if problems:
        print(f"sal-kafka read: error: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def _json_line(received: Any, kafka_topic: str) -> str:
    """One message as simple Kafka consumers print it."""
    data = received.data
    message = data if isinstance(data, dict) else _fields_of(data)
    key = _key_of(received.key)
    return json.dumps(
        {
            "topic": kafka_topic,
            "partition": received.partition,
            "offset": received.offset,
            "key": key,
            "timestamp": received.timestamp,
            "message": message,
        },
        default=_plain,
    )


def _key_of(key: bytes | None) -> Any:
    """ts_salobj's keys are JSON text: parsed; anything else as text (an empty key: "")."""
    if key is None:
        return None
    text = key.decode(errors="replace")
    try:
        return json.loads(text) if text else text
    except ValueError:
        return text


def _fields_of(data: Any) -> dict[str, Any]:
    if isinstance(data, msgspec.Struct):
        return msgspec.structs.asdict(data)
    if attrs.has(type(data)):
        return attrs.asdict(data, recurse=False)
    return dict(vars(data))


def _plain(value: Any) -> Any:
    """JSON for what the decoder gives besides plain values: numpy arrays and scalars."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key:>26}: {value}")
