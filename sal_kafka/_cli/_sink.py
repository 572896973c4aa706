"""``sal-kafka sink postgres``: SAL topics into PostgreSQL/TimescaleDB."""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
from typing import Any

from ..errors import SinkError
from ..kafka import Session
from ._connection import add_connection_arguments, add_metrics_argument, kafka_config, metrics_session, served_metrics


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sink", help="store SAL topics in a database")
    kinds = parser.add_subparsers(dest="sink_kind", required=True, metavar="KIND")
    postgres = kinds.add_parser(
        "postgres",
        help="store every message of components' topics in PostgreSQL (TimescaleDB when it has it)",
        description="One table per topic (docs/sink.md has the naming rule); each batch and the Kafka offsets "
        "it covers committed in one transaction; resumes from the stored offsets.",
    )
    postgres.add_argument("--url", required=True, help="postgresql://user:password@host:port/database")
    postgres.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help="components whose topics to store (default: every registered one)",
    )
    postgres.add_argument("--topic", action="append", dest="topics", help="only this topic (tel_x, evt_x; repeatable)")
    postgres.add_argument("--batch-size", type=int, default=5000, help="rows per transaction at most (default 5000)")
    postgres.add_argument("--max-delay", type=float, default=0.5, help="seconds a row waits at most (default 0.5)")
    postgres.add_argument("--xml-dir", help="folder holding SALSubsystems.xml (default: bundled xml_schemas/)")
    postgres.add_argument(
        "--since",
        metavar="TIME",
        help="partitions never stored start at the first message at or after TIME (ISO 8601, or 300s: ago)",
    )
    postgres.add_argument(
        "--until",
        metavar="TIME",
        help="a backfill: store every message up to TIME (none after it), then stop",
    )
    postgres.add_argument(
        "--retention",
        metavar="INTERVAL",
        help="TimescaleDB: drop data older than this (a PostgreSQL interval, e.g. '30 days')",
    )
    postgres.add_argument(
        "--aggregates",
        action="store_true",
        help="TimescaleDB: a continuous aggregate of 1-minute means per telemetry table (<table>_1m)",
    )
    postgres.add_argument(
        "--group-id",
        default="sal-kafka-sink",
        help="consumer group the stored offsets are also committed to, for Kafka's lag tools (default sal-kafka-sink)",
    )
    add_connection_arguments(postgres)
    postgres.add_argument("--metrics-port", metavar="[HOST:]PORT", help="serve Prometheus metrics at /metrics there")
    postgres.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C or SIGTERM)")
    postgres.set_defaults(func=run)


def _moment(text: str | None) -> datetime.datetime | None:
    from ._raw import parse_since

    return None if text is None else datetime.datetime.fromtimestamp(parse_since(text) / 1000, datetime.UTC)


def registered_components(session: Session, xml_dir: str | None) -> list[str]:
    """The components of the XML that have a subject in the registry (``lsst.<subname>.<C>.<topic>-value``)."""
    from ..schemas._model import ComponentInfo

    prefix = f"lsst.{session.config.topic_subname}."
    found = {s[len(prefix) :].split(".", 1)[0] for s in session.registry.subjects() if s.startswith(prefix)}
    known = ComponentInfo.list_components(xml_dir)
    names = [name for name in known if name in found]
    if not names:
        raise SinkError(f"no component of {prefix}* is registered at {session.registry.url}: name the components")
    print(f"storing the registered components: {', '.join(names)}", file=sys.stderr)
    return names


def run(args: argparse.Namespace) -> int:
    from ..schemas._model import ComponentInfo
    from ..sinks.postgres import PostgresSink  # optional: here, not at the CLI's start

    config = kafka_config(args)
    served = served_metrics(args)
    session = Session(config, metrics=served[0] if served else None)
    names = args.components or registered_components(session, args.xml_dir)
    components = [ComponentInfo.load(name, args.xml_dir, config.topic_subname) for name in names]
    sink = PostgresSink(
        args.url,
        components,
        session=session,
        batch_size=args.batch_size,
        max_delay=args.max_delay,
        topics=args.topics,
        group_id=args.group_id,
        retention=args.retention,
        aggregates=args.aggregates,
        since=_moment(args.since),
        until=_moment(args.until),
    )

    def stop(signum: int, frame: Any) -> None:
        sink.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        sink.run(args.seconds)
    finally:
        session.close()
    rows = sum(sink.stats.rows.values())
    print(f"stored {rows} rows in {len(sink.stats.rows)} tables, {sink.stats.batches} batches", file=sys.stderr)
    return 0


def add_hostmetrics_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hostmetrics",
        help="publish this host's CPU, memory, disk and network metrics (the HostMetrics component)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C or SIGTERM)")
    parser.add_argument("--index", type=int, help="this host's salIndex (default: a stable number from its name)")
    parser.add_argument("--hostname", help="this host's name in the data (default: socket.gethostname())")
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds a value stays beyond a threshold before it is reported"
    )
    parser.add_argument(
        "--hysteresis", type=float, default=5.0, help="how far below a threshold a value must go to be back below"
    )
    add_connection_arguments(parser)
    add_metrics_argument(parser)
    parser.set_defaults(func=run_hostmetrics)


def run_hostmetrics(args: argparse.Namespace) -> int:
    from ..apps.hostmetrics import HostMetricsPublisher

    config = kafka_config(args)
    with metrics_session(args, config) as session:
        publisher = HostMetricsPublisher(
            session, hold=args.hold, hysteresis=args.hysteresis, hostname=args.hostname, index=args.index
        )
        print(f"HostMetrics:{publisher.index} of {publisher.hostname}", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, lambda signum, frame: publisher.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: publisher.stop())
        count = publisher.run(args.interval, args.seconds)
    print(f"published {count} samples of HostMetrics", file=sys.stderr)
    return 0
