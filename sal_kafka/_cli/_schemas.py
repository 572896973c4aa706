"""``sal-kafka schemas``: generate or check the Avro schema files."""

from __future__ import annotations

import argparse
import sys

from ..schemas._files import check_schemas, write_schemas
from ..schemas._loader import load_components


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="write one .avsc per topic (or --check them)",
        description="Generate Avro schemas from ts_xml: OUT/<Component>/<sal_name>.avsc.",
    )
    add_xml_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the files in OUT instead of writing; exit 1 on any difference",
    )
    parser.set_defaults(func=run)


def add_xml_arguments(parser: argparse.ArgumentParser) -> None:
    """``--xml-dir``, ``--subname`` and the component names, shared by several subcommands."""
    parser.add_argument(
        "--xml-dir",
        default=None,
        help="folder holding SALSubsystems.xml (default: $SAL_KAFKA_XML_DIR, then the bundled xml_schemas/)",
    )
    parser.add_argument("--subname", default="sal", help="topic sub-namespace (default: sal)")
    parser.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")


def run(args: argparse.Namespace) -> int:
    components = load_components(args.components, args.xml_dir, args.subname)
    if args.check:
        summary = check_schemas(components, args.out)
        for diff in summary.diffs:
            print(diff, file=sys.stderr)
        print(f"checked {summary}")
        return 1 if summary.diffs else 0
    summary = write_schemas(components, args.out)
    print(f"wrote {args.out}: {summary}")
    return 0
