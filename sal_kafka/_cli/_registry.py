"""``sal-kafka registry register|serve``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence

from ..errors import ConfigError
from ..registry import COMPATIBILITY_LEVELS, RegistrationResult, RegistryConfig, SchemaRegistry
from ..schemas._loader import load_components
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
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="require HTTP basic authentication with this user (repeatable; also $SAL_KAFKA_REGISTRY_USERS, "
        "comma-separated)",
    )
    serve.add_argument(
        "--allow-anonymous-writes",
        action="store_true",
        help="without --user, let anyone change schemas (register, delete, config) also beyond loopback "
        "(default: read-only there)",
    )
    serve.add_argument("--max-connections", type=int, default=256, help="open at once at most (default 256)")
    serve.add_argument(
        "--idle-timeout", type=float, default=30.0, help="close a connection silent this long, in s (default 30)"
    )
    serve.add_argument("--metrics-port", metavar="[HOST:]PORT", help="serve Prometheus metrics at /metrics there")
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
    gone = next((r for r in results if r.unreachable), None)  # the registry stopped answering
    if args.json:
        summary = {"url": config.url, "dry_run": args.dry_run, "seconds": round(seconds, 3), "counts": dict(counts)}
        print(json.dumps({"summary": summary, "results": [r.as_dict() for r in results]}, indent=2))
    else:
        # once the registry is gone, one line says it, not one per subject
        shown = results if gone is None else [r for r in results if r.status not in ("error", "skipped") or r is gone]
        print(format_table(shown))
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        dry = " (dry run: nothing changed)" if args.dry_run else ""
        print(f"\n{len(results)} subjects at {config.url}: {tally}; {seconds:.2f} s{dry}")
    refused = [r for r in results if r.refused]
    if gone is not None:
        done = sum(r.status in ("new", "updated", "unchanged") for r in results)
        print(
            f"sal-kafka registry register: error: the registry at {config.url} stopped answering: {done} of "
            f"{len(results)} subjects registered or unchanged, {counts['skipped']} not attempted; {gone.detail}",
            file=sys.stderr,
        )
    elif refused:
        print(f"sal-kafka registry register: {len(refused)} subjects refused or failed", file=sys.stderr)
    return 1 if refused else 0


def run_serve(args: argparse.Namespace) -> int:
    from ..registry.server._app import serve

    if args.max_connections < 1 or args.idle_timeout <= 0:
        raise ConfigError("--max-connections must be at least 1 and --idle-timeout above 0")
    serve(
        args.host,
        args.port,
        args.db,
        parse_users(args.user + _env_users()),
        args.metrics_port,
        allow_anonymous_writes=args.allow_anonymous_writes,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
    )
    return 0


def _env_users() -> list[str]:
    return [u for u in os.environ.get("SAL_KAFKA_REGISTRY_USERS", "").split(",") if u.strip()]


def parse_users(items: list[str]) -> dict[str, str]:
    """``["alice:secret"]`` -> ``{"alice": "secret"}``."""
    users = {}
    for item in items:
        name, sep, password = item.strip().partition(":")
        if not sep or not name:
            raise ConfigError(f"expected NAME:PASSWORD, got {item!r}")
        users[name] = password
    return users
