"""``sal-kafka dev``: the embedded stack, and the demo that runs on it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any, NamedTuple

from .._dev import Stack
from .._errors import SalKafkaError
from .._generate import load_components
from .._kafka import ensure_topics
from .._registry import SchemaRegistry
from .._util import sigint_deferred


class DemoRun(NamedTuple):
    """One writer/reader pair of the demo, on the topics of ``subname``."""

    subname: str
    component: str
    topic: str
    number: int
    writer_options: tuple[str, ...]
    reader_options: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        reader = f" | read {' '.join(self.reader_options)}" if self.reader_options else ""
        return f"{self.component}.{self.topic} n={self.number} {' '.join(self.writer_options)}{reader}"


# Runs that read live data right after others have written have topics of
# their own (another sub-namespace): after a batched run, Tansu reports the
# high watermark as the last batch's base offset + 1, and a reader starting
# there, inside a batch, is served nothing until later (Apache Kafka reports the end).
DEMO = [
    DemoRun("sal", "KMirror", "tel_forceActuatorData", 20000, ("--validation", "strict", "--acks", "1")),
    DemoRun(
        "salnumpy",
        "KMirror",
        "tel_forceActuatorData",
        20000,
        ("--validation", "strict", "--acks", "1"),
        ("--arrays", "numpy"),
    ),
    DemoRun(
        "sal50hz",
        "KMirror",
        "tel_forceActuatorData",
        250,
        ("--validation", "strict", "--rate", "50", "--linger-ms", "0"),
    ),
    DemoRun("sal", "KTest", "evt_testState", 2000, ("--validation", "strict", "--acks", "all", "--index", "1")),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="start a local broker and registry; run the demo (or --keep them running)",
        description="Start the Tansu broker and the registry on free loopback ports, create the "
        "topics and register the schemas of the bundled components, run writers and readers, "
        "print the results, and stop everything.",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running and print its addresses")
    parser.add_argument("--workdir", help="where the registry file and logs go (default: a temporary folder)")
    parser.set_defaults(func=run)


def _cli(procs: list[subprocess.Popen[str]], *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``sal-kafka ARGS`` and put it on ``procs`` before any Ctrl-C is seen."""
    with sigint_deferred():
        proc = subprocess.Popen(
            [sys.executable, "-m", "sal_kafka", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
    return proc


def _result(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0 or not out.strip():
        raise SalKafkaError(f"{what} failed (status {proc.returncode}): {err.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _run_pair(stack: Stack, run: DemoRun) -> dict[str, Any]:
    """A reader and a writer in their own processes, as operators run them."""
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=run.subname)
    options = run.writer_options
    index = options[options.index("--index") + 1] if "--index" in options else "0"
    what = (run.component, run.topic, "-n", str(run.number))
    procs: list[subprocess.Popen[str]] = []
    try:
        reader = _cli(
            procs,
            *("read", *what, "-t", "30", "--no-history", "--index", index, "--json", *run.reader_options),
            env=env,
        )
        time.sleep(1.0)  # the reader starts at the current end of the topic: let it get there
        writer = _cli(procs, "write", *what, "--json", *options, env=env)
        return {
            "written": _result(writer, f"writer of {run.topic}"),
            "read": _result(reader, f"reader of {run.topic}"),
        }
    finally:  # also on Ctrl-C: leave no process behind
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


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


def run(args: argparse.Namespace) -> int:
    stack = Stack(args.workdir)
    print(f"starting the Tansu broker on {stack.bootstrap_servers} and the registry on {stack.registry_url} ...")
    stack.start(detach=args.keep)
    print(f"broker pid {stack.processes[0].pid}, registry pid {stack.processes[1].pid}", flush=True)
    try:
        components = load_components(())
        config = stack.config()
        created = ensure_topics([t for c in components for t in c], config)
        with SchemaRegistry(config=config.registry) as registry:
            results = registry.register_components(components)
        print(
            f"created {len(created)} topics, registered {sum(r.status == 'new' for r in results)} schemas "
            f"of {', '.join(c.name for c in components)}"
        )
        if args.keep:
            pids = " ".join(str(p.pid) for p in stack.processes)
            print(f"\nexport SAL_KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers}")
            print(f"export SAL_KAFKA_SCHEMA_REGISTRY_URL={stack.registry_url}")
            print(f"export SAL_KAFKA_CONSUMER_CONFIG='{json.dumps(stack.CONSUMER)}'")
            print(f"# the stack keeps running (workdir {stack.workdir}); stop it with: kill {pids}")
            stack.detach()
            return 0
        rows = []
        for run in DEMO:
            print(f"running {run.label} ...", flush=True)
            rows.append((run.label, _run_pair(stack, run)))
        print("\n" + _table(rows))
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping the stack", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            stack.stop()
