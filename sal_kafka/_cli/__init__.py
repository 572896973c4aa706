"""The ``sal-kafka`` command: thin subcommands over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..errors import SalKafkaError
from . import _codegen, _commander, _component, _dev, _grafana, _kafka, _registry, _schemas, _sink

__all__ = ["main"]

# Each subcommand module offers ``add_parser(subparsers)``, which sets
# ``func`` on its parser; ``func(args) -> exit status``.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _schemas.add_parser,
    _codegen.add_parser,
    _registry.add_parser,
    _kafka.add_parser,
    _component.add_parser,
    _commander.add_parser,
    _grafana.add_parser,
    _sink.add_parser,
    _sink.add_hostmetrics_parser,
    _dev.add_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sal-kafka`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="sal-kafka", description="SAL topics over Kafka: schemas, registry, codecs, I/O."
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v what each part does (a sink's start, new columns, progress), -vv debug",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sal-kafka``; library errors are printed without a traceback."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    try:
        status: int = args.func(args)
    except SalKafkaError as exc:
        print(f"sal-kafka {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # an optional part not installed: the message names its extra
        if "pip install 'sal-kafka[" not in str(exc):
            raise
        print(f"sal-kafka {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sal-kafka {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
