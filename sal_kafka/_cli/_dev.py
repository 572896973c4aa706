"""``sal-kafka dev``: the embedded stack, and the demo that runs on it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from ..kafka import Session
from ..schemas._loader import load_components
from ..schemas._model import ComponentInfo, bundled_xml_dir
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
    stack = Stack(args.workdir, registry_metrics=args.metrics_port, brokers=args.brokers)
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
