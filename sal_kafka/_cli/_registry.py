"""``sal-kafka registry register|serve``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence

from .._loader import load_components
from .._registry import COMPATIBILITY_LEVELS, RegistrationResult, RegistryConfig, SchemaRegistry
from ._schemas import add_xml_arguments


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("registry", help="register schemas; run a local registry")
    commands = parser.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    register = commands.add_parser(
        "register",
        help="register every topic's schema under its subject",
        description="Register topic schemas, idempotently, refusing incompatible changes.",
    )
    add_xml_arguments(register)
    register.add_argument(
        "--url",
        help="registry URL (default: $SAL_KAFKA_SCHEMA_REGISTRY_URL, then http://127.0.0.1:8081)",
    )
    register.add_argument(
        "--compatibility",
        type=str.upper,
        choices=COMPATIBILITY_LEVELS,
        help="level checked before registering a changed schema (default: the subject's level in the registry)",
    )
    register.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    register.add_argument("--json", action="store_true", help="print the results as JSON")
    register.add_argument("--workers", type=int, default=8, help="concurrent requests (default 8)")
    register.set_defaults(func=run_register)

    serve = commands.add_parser(
        "serve",
        help="run the local Confluent-compatible registry",
        description="Serve the Confluent Schema Registry REST API (AVRO) from a SQLite file.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument("--db", default="sal-kafka-registry.db", help="SQLite file (created if missing)")
    serve.set_defaults(func=run_serve)


def format_table(results: Sequence[RegistrationResult]) -> str:
    """The report as an aligned text table, details on the next line."""
    headers = ("subject", "id", "version", "status")
    rows = [
        (
            r.subject,
            "" if r.schema_id is None else str(r.schema_id),
            "" if r.version is None else str(r.version),
            r.status,
        )
        for r in results
    ]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    for result, row in zip(results, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if result.detail:
            lines.append(f"    {result.detail}")
    return "\n".join(lines)


def run_register(args: argparse.Namespace) -> int:
    components = load_components(args.components, args.xml_dir, args.subname)
    config = RegistryConfig.from_env(url=args.url)
    start = time.perf_counter()
    with SchemaRegistry(config=config, workers=args.workers) as registry:
        results = registry.register_components(components, args.compatibility, args.dry_run)
    seconds = time.perf_counter() - start
    counts = Counter(r.status for r in results)
    if args.json:
        summary = {
            "url": config.url,
            "dry_run": args.dry_run,
            "seconds": round(seconds, 3),
            "counts": dict(counts),
        }
        print(json.dumps({"summary": summary, "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(format_table(results))
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        dry = " (dry run: nothing changed)" if args.dry_run else ""
        print(f"\n{len(results)} subjects at {config.url}: {tally}; {seconds:.2f} s{dry}")
    refused = [r for r in results if r.refused]
    if refused:
        print(
            f"sal-kafka registry register: {len(refused)} subjects refused or failed",
            file=sys.stderr,
        )
    return 1 if refused else 0


def run_serve(args: argparse.Namespace) -> int:
    from .._registry._server import serve

    serve(args.host, args.port, args.db)
    return 0
