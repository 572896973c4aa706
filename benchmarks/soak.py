"""Soak on Apache Kafka: a CSC writing 50 Hz telemetry and 1 Hz events for ``--minutes``,
a Remote with callbacks, and a late-joining ``sal-kafka read``.

- The CSC (KTest:1, its own process) writes ``tel_scalars`` every 20 ms and
  ``evt_scalars`` every second, on an absolute schedule, and reports how many
  it wrote of each.
- A Remote in this process has a callback on each topic; it records every
  message's delay (``private_rcvStamp - private_sndStamp``, TAI) and its
  ``private_seqNum``. Per minute: messages, p50/p99/max delay.
- Half-way through, ``sal-kafka read KTest tel_scalars evt_scalars --index 1``
  joins and reads until the end (its own report: count, lost, latency).
- The broker's CPU and resident memory are sampled every minute.

Targets: every message received (none missing, no seqNum gap); the p99 delay
flat and under 10 ms.

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import BaseCsc, Remote  # noqa: E402
from sal_kafka.testing import Stack  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstat import cpu_seconds, percentile, rss_mb  # noqa: E402


class SoakCsc(BaseCsc):
    """KTest:1 writing ``tel_scalars`` at 50 Hz and ``evt_scalars`` at 1 Hz."""

    def __init__(self) -> None:
        super().__init__("KTest", 1, allow_missing_callbacks=True)

    async def stream(self, seconds: float) -> dict[str, int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = 0
        events = 0
        while (now := loop.time()) - start < seconds:
            await self.tel_scalars.set_write(int0=ticks)
            ticks += 1
            if ticks % 50 == 1:
                await self.evt_scalars.set_write(int0=events, force_output=True)
                events += 1
            await asyncio.sleep(max(0.0, start + ticks * 0.02 - loop.time()))
        del now
        return {"tel_scalars": ticks, "evt_scalars": events}


async def csc_main(seconds: float) -> None:
    csc = SoakCsc()
    await csc.start_task
    print("ready", flush=True)
    await asyncio.sleep(3.0)  # the Remote is reading
    written = await csc.stream(seconds)
    await asyncio.sleep(1.0)
    await csc.close()
    print(json.dumps(written), flush=True)


async def soak(stack: Stack, seconds: float) -> None:
    subname = f"soak{time.monotonic_ns()}"
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=subname)
    csc = subprocess.Popen(
        [sys.executable, __file__, "--csc", str(seconds)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert csc.stdout is not None
    assert (await asyncio.to_thread(csc.stdout.readline)).strip() == "ready"
    remote = Remote("KTest", 1, config=stack.config(topic_subname=subname), include=["scalars", "summaryState"])
    await remote.start_task
    delays: dict[str, dict[int, list[float]]] = {"tel_scalars": defaultdict(list), "evt_scalars": defaultdict(list)}
    seqs: dict[str, list[int]] = {"tel_scalars": [], "evt_scalars": []}
    t0 = time.monotonic() + 3.0

    def recorder(name: str) -> Any:
        def record(data: Any) -> None:
            minute = int((time.monotonic() - t0) // 60)
            delays[name][minute].append(data.private_rcvStamp - data.private_sndStamp)
            seqs[name].append(data.private_seqNum)

        return record

    remote.tel_scalars.callback = recorder("tel_scalars")
    remote.evt_scalars.callback = recorder("evt_scalars")
    broker = stack.kafka.nodes[0].pid
    samples = []
    late: subprocess.Popen[str] | None = None
    last_cpu, last_t = cpu_seconds(broker), time.monotonic()
    while csc.poll() is None:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        if now - last_t >= 60:
            cpu = cpu_seconds(broker)
            samples.append(((cpu - last_cpu) / (now - last_t) * 100, rss_mb(broker)))
            last_cpu, last_t = cpu, now
        if late is None and now - t0 > seconds / 2:
            late = subprocess.Popen(
                [sys.executable, "-m", "sal_kafka", "read", "KTest", "tel_scalars", "evt_scalars", "--index", "1",
                 "-t", str(seconds / 2 + 3), "--json"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
    written = json.loads((csc.stdout.read() or "{}").strip().splitlines()[-1])
    await asyncio.sleep(2.0)
    await remote.close()
    _report(delays, seqs, written)
    late_out: dict[str, Any] = {}
    if late is not None:
        try:
            late_out = json.loads(late.communicate(timeout=60)[0].strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, IndexError, ValueError) as exc:
            late.kill()
            print(f"\nthe late-joining sal-kafka read gave no report: {exc}")
    if late_out:
        lat = late_out["latency_ms"]
        print(
            f"\nlate-joining sal-kafka read (joined at {seconds / 2:.0f} s): {late_out['messages']:,} messages, "
            f"lost {late_out['lost']}, undecodable {late_out['undecodable']}, latency p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, max {lat['max']} ms"
        )
    if samples:
        print(
            "\nbroker CPU % per minute: " + ", ".join(f"{c:.1f}" for c, _ in samples)
            + f"; resident memory at the end {samples[-1][1]:.0f} MB"
        )  # fmt: skip


def _report(delays: dict[str, dict[int, list[float]]], seqs: dict[str, list[int]], written: dict[str, int]) -> None:
    print("| minute | tel_scalars received | p50 ms | p99 ms | max ms | evt_scalars received | p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for minute in sorted(delays["tel_scalars"]):
        tel, evt = delays["tel_scalars"][minute], delays["evt_scalars"].get(minute, [])
        print(
            f"| {minute + 1} | {len(tel):,} | {percentile(tel, 50) * 1e3:.2f} | {percentile(tel, 99) * 1e3:.2f} | "
            f"{max(tel) * 1e3:.2f} | {len(evt)} | {percentile(evt, 99) * 1e3 if evt else 0:.2f} |"
        )
    for name in ("tel_scalars", "evt_scalars"):
        got = seqs[name]
        gaps = sum(1 for a, b in zip(got, got[1:], strict=False) if b != a + 1)
        every = [d for m in delays[name].values() for d in m]
        print(
            f"\n{name}: written {written.get(name)}, received by the Remote {len(got)} "
            f"({len(set(got))} distinct), seqNum gaps {gaps}; whole run p50 {percentile(every, 50) * 1e3:.2f} ms, "
            f"p99 {percentile(every, 99) * 1e3:.2f} ms, max {max(every) * 1e3:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--csc", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.csc is not None:
        asyncio.run(csc_main(args.csc))
        return
    with Stack() as stack:
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka "
            f"{stack.kafka.version} (one KRaft node) and sal-kafka registry on loopback; {args.minutes:g} minutes\n"
        )
        asyncio.run(soak(stack, args.minutes * 60))


if __name__ == "__main__":
    main()
