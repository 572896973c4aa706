"""Writes while the broker is killed and restarted: is every message accounted for?

For acks=1 and acks=all, each run starts its own embedded stack, writes
``--rate`` messages/s of KMirror ``tel_inclinometer`` for ``--seconds``
seconds through a `Writer`, kills the Tansu broker (SIGKILL) a third of the
way in and starts it again a little later, flushes, then reads the topic
back from the beginning. Every message gets exactly one delivery report
(``Writer(on_delivery=...)``); each written message is then one of:

- acknowledged and read back;
- acknowledged before the restart and gone with the broker's memory (Tansu
  keeps everything in memory: reported as such, the broker's loss, not hidden);
- failed and reported (the writer's delivery error);
- missing although acknowledged after the restart, or never reported: the
  target is zero of these, on every run.

Run: ``.venv/bin/python benchmarks/fault_bench.py [--runs 3] [--rate 2000] [--seconds 6]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import ComponentInfo, Reader, Writer  # noqa: E402
from sal_kafka.testing import Stack  # noqa: E402


def one_run(acks: str, rate: float, seconds: float, down: float) -> dict[str, int | float]:
    reports: dict[int, tuple[float, str | None]] = {}
    lock = threading.Lock()

    def on_delivery(seq: int, error: str | None) -> None:
        with lock:
            reports[seq] = (time.monotonic(), error)

    mirror = ComponentInfo.load("KMirror")
    with Stack() as stack:
        config = stack.config(timeout=4.0)  # message.timeout.ms: a message not delivered in 4 s fails
        writer = Writer(mirror, "tel_inclinometer", config=config, acks=acks, on_delivery=on_delivery)
        kill_at, restart_at = seconds / 3, seconds / 3 + down
        killed = restarted = False
        restarted_time = 0.0
        written = 0
        start = time.monotonic()
        while (now := time.monotonic() - start) < seconds:
            if not killed and now >= kill_at:
                stack.kill_broker()
                killed = True
            if killed and not restarted and now >= restart_at:
                stack.restart_broker()
                # the topic is gone with the broker: made again, as a deployment's start-up would
                writer.session.ensure_topics([writer.topic], recheck=True)
                restarted, restarted_time = True, time.monotonic()
            writer.write(inclinometerAngle=float(written))
            written += 1
            writer.poll(0)
            target = start + written / rate
            while time.monotonic() < target:
                writer.poll(min(0.001, max(0.0, target - time.monotonic())))
        writer.close()  # failures went to on_delivery, one by one: counted below
        with Reader(mirror, ["tel_inclinometer"], config=config, start="beginning") as reader:
            present = set()
            while (received := reader.next(2.0)) is not None:
                present.add(received.data["private_seqNum"])
    acked_after = {s for s, (t, e) in reports.items() if e is None and t >= restarted_time}
    acked_before = {s for s, (t, e) in reports.items() if e is None and t < restarted_time}
    failed = {s for s, (_, e) in reports.items() if e is not None}
    unreported = set(range(1, written + 1)) - set(reports)
    return {
        "written": written,
        "acknowledged": len(acked_before) + len(acked_after),
        "failed_reported": len(failed),
        "read_back": len(present),
        "lost_with_broker_memory": len(acked_before - present),
        "acked_after_restart_missing": len(acked_after - present),
        "unreported": len(unreported),
        "failed_yet_present": len(failed & present),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--down", type=float, nargs="+", default=[1.0, 5.0], help="seconds the broker stays down (4 s is the timeout)"
    )
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; a Writer at "
        f"{args.rate:.0f} msg/s for {args.seconds} s plus the time down, broker SIGKILLed at "
        f"{args.seconds / 3:.1f} s and restarted after --down seconds; message.timeout.ms 4000\n"
    )
    columns = [
        "written",
        "acknowledged",
        "failed_reported",
        "read_back",
        "lost_with_broker_memory",
        "acked_after_restart_missing",
        "unreported",
        "failed_yet_present",
    ]
    print("| acks | down s | run | " + " | ".join(columns) + " |")
    print("|---|---:|---:|" + "---:|" * len(columns))
    for down in args.down:
        for acks in ("1", "all"):
            for run in range(args.runs):
                result = one_run(acks, args.rate, args.seconds + down, down)
                cells = " | ".join(f"{result[c]}" for c in columns)
                print(f"| {acks} | {down:g} | {run + 1} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
