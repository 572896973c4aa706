"""Command round trips: a Remote commanding the example CSC in another process, on the embedded
Apache Kafka broker (one KRaft node), beside librdkafka's floor measured on the same broker in the
same run (``benchmarks/broker_floor.py``: the same process layout with plain clients).

Measures, in one invocation (so the figures come from one machine state):

1. one command at a time (``setScalars`` to KTest:1, which writes an event and a
   telemetry message before it acknowledges, as ts_salobj's TestCsc does):
   round trip from ``start`` to CMD_COMPLETE, p50 and p99, commands/s, and the
   Remote process's CPU per command;
2. the same with 10 commands in flight;
3. the time for a ``Remote`` of MTM1M3 (all its topics, from ../shared/ts_xml)
   to be ready once its schemas are registered.

Run: ``.venv/bin/python benchmarks/command_bench.py [--commands 1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import ComponentInfo, Remote, SalRetCode, Session, State  # noqa: E402
from sal_kafka.testing import Stack  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_floor import LAYOUTS, round_trip_floor  # noqa: E402
from procstat import cpu_seconds, percentile  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "ts_xml" / "sal_interfaces"


async def one_at_a_time(remote: Remote, n: int) -> tuple[list[float], float, float]:
    """Round trips (s), commands/s, Remote CPU s per command."""
    command = remote.cmd_setScalars
    trips = []
    cpu0, start = time.process_time(), time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        ack = await command.set_start(int0=i, timeout=10)
        trips.append(time.perf_counter() - t0)
        assert ack.ack == SalRetCode.CMD_COMPLETE
    elapsed = time.perf_counter() - start
    return trips, n / elapsed, (time.process_time() - cpu0) / n


async def in_flight(remote: Remote, n: int, window: int) -> tuple[float, float]:
    """Commands/s and Remote CPU s per command with ``window`` commands outstanding."""
    command = remote.cmd_setScalars
    sem = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with sem:
            ack = await command.set_start(int0=i, timeout=30)
            assert ack.ack == SalRetCode.CMD_COMPLETE

    cpu0, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    return n / elapsed, (time.process_time() - cpu0) / n


async def ready_time(stack: Stack) -> float | None:
    if not (CORPUS / "SALSubsystems.xml").is_file():
        return None
    config = stack.config(topic_subname=f"ready{time.monotonic_ns()}")
    component = ComponentInfo.load("MTM1M3", CORPUS, config.topic_subname)
    with Session(config) as session:
        session.ensure_topics(list(component))
        session.register(list(component))
    start = time.perf_counter()
    remote = Remote(component, config=config)
    await remote.start_task
    seconds = time.perf_counter() - start
    await remote.close()
    return seconds


async def one_round(stack: Stack, subname: str, n: int) -> dict[str, float]:
    """Both phases, each with a CSC process and a Remote on topics of its own."""
    one = await phase(stack, f"{subname}a", lambda r: one_at_a_time(r, n), n)
    ten = await phase(stack, f"{subname}b", lambda r: in_flight(r, n, 10), n)
    return {**one, **{f"ten_{k}": v for k, v in ten.items()}}


async def phase(stack: Stack, subname: str, measure: Callable[[Remote], Awaitable[Any]], n: int) -> dict[str, float]:
    """``measure(remote)`` with a CSC process and a Remote on topics of their own (``subname``),
    and the CPU each process spent on it per command (the Remote's, the CSC's, the broker's)."""
    csc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "example-csc", "--index", "1"],
        env=stack.env(SAL_KAFKA_TOPIC_SUBNAME=subname),
        stderr=subprocess.DEVNULL,
    )
    remote = Remote("KTest", 1, config=stack.config(topic_subname=subname), include=["summaryState"])  # a commander
    broker = stack.kafka.nodes[0].pid
    try:
        await remote.start_task
        while (s := remote.evt_summaryState.get()) is None or s.summaryState != State.STANDBY:
            await remote.evt_summaryState.next(flush=False, timeout=30)
        await remote.cmd_start.start(timeout=10)
        await remote.cmd_enable.start(timeout=10)
        await one_at_a_time(remote, 50)  # warm up: codecs compiled, connections up
        before = cpu_seconds(csc.pid), cpu_seconds(broker)
        result = await measure(remote)
        spent = {"csc_cpu": (cpu_seconds(csc.pid) - before[0]) / n, "broker_cpu": (cpu_seconds(broker) - before[1]) / n}
        if len(result) == 3:  # one at a time: round trips -> p50, p99
            trips, rate, cpu = result
            return {"p50": percentile(trips, 50), "p99": percentile(trips, 99), "rate": rate, "cpu": cpu, **spent}
        rate, cpu = result
        return {"rate": rate, "cpu": cpu, **spent}
    finally:
        await remote.close()
        csc.terminate()
        csc.wait(20)


def _row(label: str, row: dict[str, float]) -> str:
    us = {k: f"{row[k] * 1e6:,.0f}" for k in row if "cpu" in k}
    return (
        f"| {label} | {row['p50'] * 1e3:.2f} | {row['p99'] * 1e3:.2f} | {row['rate']:,.0f} | {us['cpu']} | "
        f"{us['csc_cpu']} | {us['broker_cpu']} | {row['ten_rate']:,.0f} | {us['ten_cpu']} | {us['ten_csc_cpu']} | "
        f"{us['ten_broker_cpu']} |"
    )


async def run(stack: Stack, args: argparse.Namespace) -> None:
    for w in range(args.warmup):  # the broker's JIT compiles its hot paths in the first minute
        print(
            _row(
                f"warm-up {w + 1} (not counted)",
                await one_round(stack, f"warm{w}x{time.monotonic_ns()}", args.commands),
            ),
            flush=True,
        )
    rows = []
    for r in range(args.rounds):
        rows.append(await one_round(stack, f"cmd{r}x{time.monotonic_ns()}", args.commands))
        print(_row(f"round {r + 1}", rows[-1]), flush=True)
    print(_row("median", {k: statistics.median(row[k] for row in rows) for k in rows[0]}))
    for layout in LAYOUTS:
        floors = [round_trip_floor(stack, layout, args.commands) for _ in range(args.rounds)]
        f = {k: statistics.median(x[k] for x in floors) for k in floors[0]}
        print(
            f"| floor: librdkafka alone, {layout} (median of {args.rounds}) | {f['p50'] * 1e3:.2f} | "
            f"{f['p99'] * 1e3:.2f} | {1 / f['p50']:,.0f} | {f['cpu'] * 1e6:,.0f} | | | | | | |",
            flush=True,
        )
    ready = [await ready_time(stack) for _ in range(args.rounds)]
    if ready[0] is not None:
        print(f"\nRemote of MTM1M3 ready after its schemas are registered: {', '.join(f'{s:.3f}' for s in ready)} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    parser.add_argument(
        "--broker-setting", action="append", default=[], metavar="KEY=VALUE", help="a server.properties setting"
    )
    args = parser.parse_args()
    settings = dict(kv.split("=", 1) for kv in args.broker_setting)
    with Stack(broker_settings=settings) as stack:
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka "
            f"{stack.kafka.version} (one KRaft node{', ' + str(settings) if settings else ''}"
            f"{', JVM ' + os.environ['SAL_KAFKA_JVM_OPTIONS'] if os.environ.get('SAL_KAFKA_JVM_OPTIONS') else ''}) "
            f"and sal-kafka registry on loopback; example CSC KTest:1 in its own process; {args.commands} setScalars "
            "per run\n"
        )
        print(
            "| run | one at a time p50 ms | p99 ms | commands/s | CPU µs/command: Remote | CSC | broker "
            "| 10 in flight: commands/s | CPU µs/command: Remote | CSC | broker |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        asyncio.run(run(stack, args))


if __name__ == "__main__":
    main()
