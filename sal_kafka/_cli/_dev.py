"""``sal-kafka dev``: the embedded stack, and the demo that runs on it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any

from ..kafka import Session
from ..schemas._loader import load_components
from ..schemas._model import ComponentInfo, bundled_xml_dir
from ..testing._broker._cluster import free_port
from ..testing._stack import DEMO, EmbeddedPostgres, Stack, run_pair


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="start a local broker and registry; run the demo (or --keep them running)",
        description="Start Apache Kafka (KRaft, its jars fetched from Maven Central once and cached) and the "
        "registry on free loopback ports, create the topics and register the schemas of the bundled "
        "components, run writers and readers, print the results, and stop everything.",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running and print its addresses")
    parser.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="Kafka nodes: 1, or 3 (topics with 3 replicas and min.insync.replicas=2; default 1)",
    )
    parser.add_argument(
        "--workdir",
        help="where the broker's storage and log, the registry file and logs go (default: a temporary folder)",
    )
    parser.add_argument(
        "--metrics-port", metavar="[HOST:]PORT", help="serve the registry's Prometheus metrics at /metrics there"
    )
    pipeline = parser.add_argument_group(
        "the whole pipeline",
        "with any of these, dev starts the parts and runs until Ctrl-C or SIGTERM (or, with --keep, leaves "
        "them running), printing their addresses, instead of the demo",
    )
    pipeline.add_argument(
        "--sink", action="store_true", help="PostgreSQL 18 (embedded) and the sink of the bundled components"
    )
    pipeline.add_argument(
        "--prometheus",
        action="store_true",
        help="Prometheus (Debian's package) scraping every part, with the generated alerts and Grafana files",
    )
    pipeline.add_argument(
        "--connect",
        action="store_true",
        help="Kafka Connect with Debezium's PostgreSQL connector on the sink's tables, and its JMX exporter",
    )
    parser.set_defaults(func=run)


def _table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{'run':<{width}} {'write msg/s':>11} {'MB/s':>6} {'read msg/s':>10} {'lat p50 ms':>10} "
        f"{'p99 ms':>7} {'lost':>5} {'undec.':>6}",
    ]
    for name, r in rows:
        w, rd = r["written"], r["read"]
        lat = rd["latency_ms"]
        lines.append(
            f"{name:<{width}} {w['messages_per_s']:>11,.0f} {w['mb_per_s']:>6.1f} {rd['messages_per_s']:>10,.0f} "
            f"{lat['p50'] or 0:>10.2f} {lat['p99'] or 0:>7.2f} {rd['lost']:>5} {rd['undecodable']:>6}"
        )
    return "\n".join(lines)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the demo as Ctrl-C does: the stack and its folder are cleaned up."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    pipeline = args.sink or args.prometheus or args.connect
    registry_metrics = args.metrics_port or (f"127.0.0.1:{free_port()}" if args.prometheus else None)
    stack = Stack(args.workdir, registry_metrics=registry_metrics, brokers=args.brokers)
    nodes = f"{args.brokers} nodes" if args.brokers > 1 else "one node"
    print(f"starting Apache Kafka ({nodes}, KRaft) on {stack.bootstrap_servers} ...")
    print(f"starting the registry on {stack.registry_url} ...")
    print(f"Apache Kafka {stack.kafka.version} (jars in {stack.kafka.jars.libs})", flush=True)
    stack.start(detach=args.keep)
    print(f"Apache Kafka {stack.kafka.version} ready in {stack.kafka.startup_seconds:.1f} s", flush=True)
    print(f"broker and registry pids {' '.join(str(p) for p in stack.pids)}", flush=True)
    print(f"work folder {stack.workdir}", flush=True)
    print(f"the broker's log: {', '.join(str(n.log) for n in stack.kafka.nodes)}", flush=True)
    postgres: EmbeddedPostgres | None = None
    detached = False
    try:
        # the bundled components, whatever $SAL_KAFKA_XML_DIR says: the demo's, and
        # what --keep prepares (a corpus of 3,348 topics is not a development stack's)
        components = load_components(xml_dir=bundled_xml_dir())
        with Session(stack.config()) as session:
            created = session.ensure_topics([t for c in components for t in c])
            results = session.registry.register_components(components)
        print(
            f"created {len(created)} topics, registered {sum(r.status == 'new' for r in results)} schemas "
            f"of {', '.join(c.name for c in components)}"
        )
        if pipeline:
            detached = _pipeline(args, stack, registry_metrics)
            return 0
        if args.keep:
            pids = " ".join(str(p) for p in stack.pids)
            print(f"\nexport SAL_KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers}")
            print(f"export SAL_KAFKA_SCHEMA_REGISTRY_URL={stack.registry_url}")
            print(f"export SAL_KAFKA_REPLICATION_FACTOR={stack.replication_factor}")
            print(f"# the stack keeps running (workdir {stack.workdir}); stop it with: kill {pids}")
            stack.detach()
            detached = True
            return 0
        postgres = EmbeddedPostgres(stack.workdir / "postgres").start()
        print(f"PostgreSQL 18 (embedded) at {postgres.url}", flush=True)
        rows = []
        for run in DEMO:
            print(f"running {run.label} ...", flush=True)
            rows.append((run.label, run_pair(stack, run)))
        print("\n" + _table(rows))
        _sink_demo(stack, postgres.url)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping the stack", file=sys.stderr)
        return 130
    finally:
        if postgres is not None:
            postgres.stop()
        if not detached:  # --keep keeps only a stack that is ready: a failed one is stopped
            stack.stop()


def _sink_demo(stack: Stack, url: str) -> None:
    """The sink stores what the demo wrote; rows arriving, then a query."""
    import psycopg  # optional: here, not at the CLI's start

    from ..sinks.postgres import PostgresSink  # optional: here, not at the CLI's start

    components = [ComponentInfo.load("KMirror"), ComponentInfo.load("KTest")]
    config = stack.config()
    sink = PostgresSink(
        url, components, config=config, topics=["tel_forceActuatorData", "evt_testState"], max_delay=0.2
    )
    print("\nthe PostgreSQL sink stores what the demo wrote (topics of 'sal': KMirror forces, KTest testState):")
    thread = threading.Thread(target=sink.run, name="sal-kafka sink")
    thread.start()
    expected = {"kmirror_tel_forceactuatordata": 20000, "ktest_evt_teststate": 2000}
    start = time.monotonic()
    try:
        while time.monotonic() - start < 120:
            counts = {table: sink.stats.rows.get(table, 0) for table in expected}
            print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
            if all(counts[t] >= n for t, n in expected.items()):
                break
            time.sleep(0.5)
    finally:
        sink.stop()
        thread.join(60)
    query = (
        "SELECT count(*) AS rows, min(time) AS first, max(time) AS last, round(avg(fx)::numeric, 3) AS avg_fx, "
        "round(avg(zforce[1])::numeric, 3) AS avg_zforce_1 FROM kmirror_tel_forceactuatordata"
    )
    with psycopg.connect(url) as db:
        cursor = db.execute(query)
        names = [c.name for c in cursor.description or []]
        values = cursor.fetchone() or ()
    print(f"\n{query};")
    for name, value in zip(names, values, strict=False):
        print(f"  {name:>13}: {value}")


def _pipeline(args: argparse.Namespace, stack: Stack, registry_metrics: str | None) -> bool:
    """Start the parts asked for on ``stack``; with ``--keep`` leave them running (True),
    else wait for Ctrl-C or SIGTERM and stop them (False)."""
    import subprocess

    from ..observe import alert_rules, prometheus_config, write_provisioning
    from ..testing._process import end_process

    started: list[Any] = []  # what to stop, last first
    kept = False
    pids = list(stack.pids)
    urls: list[tuple[str, str]] = [("Kafka", stack.bootstrap_servers), ("registry", stack.registry_url)]
    targets: dict[str, list[str]] = {}
    if registry_metrics:
        targets["sal-kafka-registry"] = [registry_metrics]
    try:
        postgres = None
        if args.sink or args.connect:
            postgres = EmbeddedPostgres(
                stack.workdir / "postgres", port=free_port(), settings={"wal_level": "logical"}, keep=args.keep
            ).start()
            started.append(postgres)
            pids += [postgres.pid] if postgres.pid else []
            urls.append(("PostgreSQL 18", postgres.url))
        if args.sink:
            assert postgres is not None
            sink_metrics = f"127.0.0.1:{free_port()}"
            log = open(stack.workdir / "sink.log", "ab")  # noqa: SIM115 - the process owns it
            sink = subprocess.Popen(
                [sys.executable, "-m", "sal_kafka", "sink", "postgres", "--url", postgres.url, "KTest", "KMirror"]
                + ["--xml-dir", str(bundled_xml_dir()), "--metrics-port", sink_metrics],
                env={**os.environ, **stack.env()},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=args.keep,
            )
            log.close()
            started.append(sink)
            pids.append(sink.pid)
            targets["sal-kafka-sink"] = [sink_metrics]
            urls.append(("sink metrics", f"http://{sink_metrics}/metrics (log {stack.workdir / 'sink.log'})"))
        if args.connect:
            from ..testing._broker._connect import KafkaConnect, debezium_postgres

            assert postgres is not None
            source = debezium_postgres(
                "sal-kafka-postgres",
                host="127.0.0.1",
                port=postgres.port or 0,
                database="postgres",
                user="postgres",
                topic_prefix="salkafka_cdc",
                schemas=["public"],  # every table of the schema: the sink's, and any made later
            )
            print("starting Kafka Connect with Debezium's PostgreSQL connector ...", flush=True)
            connect = KafkaConnect(stack.bootstrap_servers, [source], stack.workdir / "connect")
            connect.start(detach=args.keep)
            started.append(connect)
            pids.append(connect.process.pid if connect.process else 0)
            targets["kafka-connect"] = [connect.metrics_url.split("/")[2]]
            urls += [("Kafka Connect REST", connect.rest_url), ("Kafka Connect metrics", connect.metrics_url)]
        if args.prometheus:
            from ..testing._prometheus import PrometheusServer

            rules = alert_rules(jobs=targets)
            config = prometheus_config(targets)
            config["global"] = {"scrape_interval": "5s", "evaluation_interval": "5s"}  # a development stack
            prometheus = PrometheusServer(config, {"alerts.yml": rules}, folder=stack.workdir / "prometheus")
            prometheus.start(detach=args.keep)
            started.append(prometheus)
            pids.append(prometheus.process.pid if prometheus.process else 0)
            grafana = write_provisioning(stack.workdir / "grafana-files", prometheus_url=prometheus.url)
            urls += [
                ("Prometheus", prometheus.url),
                ("Grafana provisioning", str(grafana[0].parents[2])),
            ]
        print()
        for name, url in urls:
            print(f"{name:>22}: {url}")
        print(f"\nexport SAL_KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers}")
        print(f"export SAL_KAFKA_SCHEMA_REGISTRY_URL={stack.registry_url}")
        if args.keep:
            for part in started:
                if hasattr(part, "detach"):
                    part.detach()
            stack.detach()
            print(f"# all of it keeps running (workdir {stack.workdir}); stop it with: kill {' '.join(map(str, pids))}")
            kept = True
            return True
        print(f"# pids {' '.join(map(str, pids))}; running until Ctrl-C or SIGTERM", flush=True)
        while True:
            time.sleep(1)
            for part in started:
                if isinstance(part, subprocess.Popen) and part.poll() is not None:
                    print(f"the sink (pid {part.pid}) exited with status {part.returncode}: stopping", file=sys.stderr)
                    return False
    finally:
        if not kept:  # stopped, failed or interrupted: nothing is left running
            for part in reversed(started):
                if isinstance(part, subprocess.Popen):
                    end_process(part, 30)
                else:
                    part.stop()
