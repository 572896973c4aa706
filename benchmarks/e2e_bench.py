"""End-to-end benchmarks: writer and reader in separate processes, through the
embedded Apache Kafka broker (one KRaft node) and our registry, both started
here on free ports; each figure beside librdkafka's floor on the same broker in
the same run (``benchmarks/broker_floor.py``: plain clients, same message size).

Runs, in this order, in one invocation (so the ratios come from one machine state), after
``--warmup`` throughput pairs that warm the broker's JIT and are not reported:

1. latency: ``sal-kafka write`` (strict validation, acks=1) and ``sal-kafka
   read`` at the same time at 50 Hz, KMirror ``tel_forceActuatorData`` (811
   floats, 3.3 kB a message; ``--linger-ms 0``: a 50 Hz writer has nothing to batch);
2. throughput: the same pair as fast as it goes, in four configurations
   alternated ``--repeat`` times: the defaults (the reader gives lists, the
   writer lingers 1 ms), the reader giving numpy arrays (``--arrays numpy``),
   that with the writer lingering 20 ms (fewer, larger batches), and that
   with Prometheus metrics on in both (``--metrics-port``: the cost of metrics);
   then small events (KTest:1 ``evt_scalars``), and the floor of each size;
3. the baseline ts_salobj's approach amounts to, in its own process: a stdlib
   dataclass, ``dataclasses.asdict``, confluent-kafka's ``AvroSerializer``,
   ``Producer`` (acks=1);
4. acks 0, 1 and all, side by side (writer alone).

Run: ``.venv/bin/python benchmarks/e2e_bench.py [--messages 60000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import ComponentInfo, Session, dataclass_class  # noqa: E402
from sal_kafka.testing import DemoRun, Stack, cli_result, run_pair, sample_record, spawn_cli  # noqa: E402
from sal_kafka.wire import TAI_MINUS_UTC  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_floor import latency_floor, throughput_floor  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

COMPONENT, TOPIC = "KMirror", "tel_forceActuatorData"
#: throughput configurations: label, writer options, reader options
THROUGHPUT = [
    ("defaults: reader gives lists, writer lingers 1 ms", (), ("--arrays", "list")),
    ("reader gives numpy arrays", (), ("--arrays", "numpy")),
    ("reader gives numpy arrays, writer lingers 20 ms", ("--linger-ms", "20"), ("--arrays", "numpy")),
    (
        "reader gives numpy arrays, metrics on (both serve /metrics)",
        ("--metrics-port", "0"),
        ("--arrays", "numpy", "--metrics-port", "0"),
    ),
]


def pair(
    stack: Stack,
    subname: str,
    number: int,
    writer_args: tuple[str, ...],
    reader_args: tuple[str, ...] = (),
    what: tuple[str, str] = (COMPONENT, TOPIC),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Writer and reader processes on the topics of ``subname``, as ``sal-kafka dev`` runs them."""
    run = run_pair(stack, DemoRun(subname, *what, number, writer_args, reader_args))
    return run["written"], run["read"]


def baseline_writer(bootstrap: str, registry_url: str, number: int, extract: str = "asdict") -> None:
    """ts_salobj's way: DataType(**data), ``dataclasses.asdict`` (or ``vars``), AvroSerializer, Producer."""
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = ComponentInfo.load(COMPONENT)[TOPIC]
    data_type = dataclass_class(topic)
    client = SchemaRegistryClient({"url": registry_url})
    serializer = AvroSerializer(client, json.dumps(topic.avro_schema), conf={"auto.register.schemas": True})
    ctx = SerializationContext(topic.kafka_name, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 1, "log.connection.close": False})
    fields = sample_record(topic)
    start = time.perf_counter()
    nbytes = 0
    for seq in range(1, number + 1):
        now = time.time()
        data = data_type(
            **fields,
            private_sndStamp=now + TAI_MINUS_UTC,
            private_kafkaStamp=now + TAI_MINUS_UTC,
            private_efdStamp=now,
            private_seqNum=seq,
            private_revCode=topic.rev_code,
            private_identity=COMPONENT,
            private_origin=os.getpid(),
        )
        value = serializer(dataclasses.asdict(data) if extract == "asdict" else vars(data), ctx)
        nbytes += len(value)
        while True:
            try:
                producer.produce(topic.kafka_name, value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    written = time.perf_counter() - start
    producer.flush(60)
    print(
        json.dumps(
            {
                "messages": number,
                "messages_per_s": round(number / written, 1),
                "mb_per_s": round(nbytes / written / 1e6, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=3, help="throughput pairs of each reader kind")
    parser.add_argument("--warmup", type=int, default=2, help="throughput pairs run first and not reported")
    parser.add_argument(
        "--baseline-writer", nargs=3, metavar=("BOOTSTRAP", "REGISTRY", "EXTRACT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline_writer:
        bootstrap, registry_url, extract = args.baseline_writer
        baseline_writer(bootstrap, registry_url, args.messages, extract)
        return
    n = args.messages
    with Stack() as stack:
        components = [ComponentInfo.load(COMPONENT)]
        with Session(stack.config()) as session:
            session.ensure_topics(list(components[0]))
            session.registry.register_components(components)
        # each phase that reads uses topics of its own (another sub-namespace), so its counts are its own
        env = stack.env()
        broker_pid = stack.kafka.nodes[0].pid
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"Apache Kafka {stack.kafka.version} (one KRaft node) and sal-kafka registry on loopback; "
            f"{n} messages of {COMPONENT}.{TOPIC}\n"
        )

        # a broker that has just started runs its hot paths interpreted until the JIT compiles
        # them (the first rounds of command_bench: p50 3.0 ms, then 1.7): warm it as production's is
        for i in range(args.warmup):
            pair(stack, f"warmup{i}", n // 3, ("--validation", "strict", "--acks", "1"))
        # first: the run that needs the machine otherwise idle
        w50, r50 = pair(
            stack, "latency", 500, ("--validation", "strict", "--acks", "1", "--rate", "50", "--linger-ms", "0")
        )
        lat, ack = r50["latency_ms"], w50["ack_latency_ms"]
        print("| 50 Hz, 500 messages, ms | mean | stdev | min | p50 | p99 | max | lost |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(
            f"| private_rcvStamp - private_sndStamp | {lat['mean']:.2f} | {lat['stdev']:.2f} | {lat['min']:.2f} | "
            f"{lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} | {r50['lost']} |"
        )
        print(
            f"| of which write to broker ack (writer's report) | {ack['mean']:.2f} | | | "
            f"{ack['p50']:.2f} | {ack['p99']:.2f} | {ack['max']:.2f} | |"
        )
        floor = latency_floor(stack, 3300, 50, 500)
        print(
            f"| floor: librdkafka alone, 3.3 kB at 50 Hz | | | | {floor['p50'] * 1e3:.2f} | {floor['p99'] * 1e3:.2f} | | |\n"
        )

        print(
            "| run: writer (strict, acks=1) and reader together | writer msg/s | writer MB/s "
            "| reader msg/s | reader MB/s | lost | undecodable | broker CPU µs/msg |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {label: [] for label, _, _ in THROUGHPUT}
        for i in range(args.repeat):  # alternated, so that every configuration meets the same moments
            for k, (label, writer_args, reader_args) in enumerate(THROUGHPUT):
                strict = ("--validation", "strict", "--acks", "1", *writer_args)
                broker_before = cpu_seconds(broker_pid)
                w, r = pair(stack, f"run{k}x{i}", n, strict, reader_args)
                broker_us = (cpu_seconds(broker_pid) - broker_before) / n * 1e6
                runs[label].append((w, r))
                print(
                    f"| {i + 1}: {label} | {w['messages_per_s']:,.0f} | {w['mb_per_s']} | "
                    f"{r['messages_per_s']:,.0f} | {r['mb_per_s']} | {r['lost']} | {r['undecodable']} | {broker_us:.0f} |"
                )
        for label, done in runs.items():
            print(
                f"| median: {label} | {statistics.median(w['messages_per_s'] for w, _ in done):,.0f} | | "
                f"{statistics.median(r['messages_per_s'] for _, r in done):,.0f} | | | | |"
            )
        big = throughput_floor(stack, 3300, n)
        print(f"| floor: librdkafka alone, 3.3 kB | {big['write']:,.0f} | | {big['read']:,.0f} | | | | |")
        small_runs = []
        for i in range(args.repeat):
            args_small = ("--validation", "strict", "--acks", "1", "--index", "1")
            broker_before = cpu_seconds(broker_pid)
            w, r = pair(stack, f"small{i}", n, args_small, (), ("KTest", "evt_scalars"))
            broker_us = (cpu_seconds(broker_pid) - broker_before) / n * 1e6
            small_runs.append((w, r))
            print(
                f"| {i + 1}: small events, KTest:1 evt_scalars | {w['messages_per_s']:,.0f} | {w['mb_per_s']} | "
                f"{r['messages_per_s']:,.0f} | {r['mb_per_s']} | {r['lost']} | {r['undecodable']} | {broker_us:.0f} |"
            )
        size = round(statistics.median(w["mb_per_s"] * 1e6 / w["messages_per_s"] for w, _ in small_runs))
        print(
            f"| median: small events ({size} B) | {statistics.median(w['messages_per_s'] for w, _ in small_runs):,.0f} "
            f"| | {statistics.median(r['messages_per_s'] for _, r in small_runs):,.0f} | | | | |"
        )
        small = throughput_floor(stack, size, n)
        print(f"| floor: librdkafka alone, {size} B | {small['write']:,.0f} | | {small['read']:,.0f} | | | | |")
        defaults = runs[THROUGHPUT[0][0]]
        w = {"messages_per_s": statistics.median(w["messages_per_s"] for w, _ in defaults)}
        ratios = []
        for extract in ("asdict", "vars"):
            base = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--messages",
                    str(n // 2),
                    "--baseline-writer",
                    stack.bootstrap_servers,
                    stack.registry_url,
                    extract,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            b = json.loads(base.stdout.strip().splitlines()[-1])
            ratios.append(f"{w['messages_per_s'] / b['messages_per_s']:.1f}x over {extract}")
            print(
                f"| baseline: dataclass, {extract}, AvroSerializer, Producer; acks=1, writer alone | "
                f"{b['messages_per_s']:,.0f} | {b['mb_per_s']} | | | | | |"
            )
        print(f"\nsal-kafka writer (defaults, reader running) / baseline writer: {', '.join(ratios)}\n")

        print("| acks (writer alone, strict) | msg/s | MB/s | delivered | failed | ack p50 ms | ack p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for acks in ("0", "1", "all"):
            proc = spawn_cli(
                [],
                "write",
                COMPONENT,
                TOPIC,
                "-n",
                str(n // 2),
                "--json",
                "--validation",
                "strict",
                "--acks",
                acks,
                env=env,
            )
            a = cli_result(proc, f"writer with acks={acks}")
            al = a["ack_latency_ms"]
            print(
                f"| acks={acks} | {a['messages_per_s']:,.0f} | {a['mb_per_s']} | {a['delivered']} | {a['failed']} "
                f"| {al['p50']} | {al['p99']} |"
            )


if __name__ == "__main__":
    main()
