"""The connection options every command that talks to Kafka shares, and the config they make."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..kafka import KafkaConfig, Session

if TYPE_CHECKING:
    from ..observe._metrics import Metrics


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--bootstrap-servers`` and ``--registry-url`` (both default to the environment)."""
    parser.add_argument("--bootstrap-servers", help="default: $SAL_KAFKA_BOOTSTRAP_SERVERS, then 127.0.0.1:9092")
    parser.add_argument("--registry-url", help="default: $SAL_KAFKA_SCHEMA_REGISTRY_URL, then http://127.0.0.1:8081")


def kafka_config(args: argparse.Namespace) -> KafkaConfig:
    """The config of the command line's connection options, the environment filling the rest."""
    return KafkaConfig.from_env(bootstrap_servers=args.bootstrap_servers, registry_url=args.registry_url)


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", metavar="[HOST:]PORT", help="serve Prometheus metrics at /metrics there")


def metrics_session(args: argparse.Namespace, config: KafkaConfig) -> Session:
    """The command's session; with ``--metrics-port``, its metrics served there (said on stderr)."""
    served = served_metrics(args)
    if served is None:
        return Session(config)
    metrics, host, port = served
    print(f"metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    return Session(config, metrics=metrics)


def served_metrics(args: argparse.Namespace) -> tuple[Metrics, str, int] | None:
    """With ``--metrics-port``: new metrics served there, and the host and port they are at."""
    if not args.metrics_port:
        return None
    from ..observe._metrics import Metrics, serve_metrics  # optional: prometheus-client

    metrics = Metrics()
    host, port = serve_metrics(args.metrics_port, metrics)
    return metrics, host, port
