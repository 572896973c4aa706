"""``sal-kafka grafana``: Grafana provisioning and Prometheus configuration files."""

from __future__ import annotations

import argparse

from ..schemas._model import ComponentInfo


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "grafana",
        help="write Grafana provisioning (datasources, dashboards) and a Prometheus configuration",
        description="Write OUT/grafana/{datasources,dashboards}/ (the 'sal-kafka pipeline' dashboard on "
        "Prometheus) and OUT/prometheus/{prometheus.yml,alerts.yml} (scrape jobs for the --metrics-port of "
        "each command, alerting rules).",
    )
    parser.add_argument("--out", required=True, help="folder to write into")
    parser.add_argument("--prometheus-url", default="http://127.0.0.1:9090", help="the datasource's URL")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the sink's database, for the components' dashboards",
    )
    parser.add_argument("--xml-dir", help="folder holding SALSubsystems.xml (default: bundled xml_schemas/)")
    parser.add_argument(
        "--topic",
        action="append",
        dest="topics",
        help="only this topic's panels (as the sink's --topic; repeatable); default: the tables the database has",
    )
    parser.add_argument("components", nargs="*", metavar="COMPONENT", help="a dashboard per component (sink tables)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..observe._grafana import write_provisioning  # optional: here, not at the CLI's start
    from ..sinks.postgres import write_component_dashboards  # optional: here, not at the CLI's start

    files = write_provisioning(args.out, args.prometheus_url)
    if args.components:
        components = [ComponentInfo.load(name, args.xml_dir) for name in args.components]
        files += write_component_dashboards(args.out, components, args.postgres_url, args.topics)
    for path in files:
        print(path)
    return 0
