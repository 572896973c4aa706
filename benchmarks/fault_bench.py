"""Faults on Apache Kafka: is every message and command accounted for?

In one invocation, on the embedded Apache Kafka:

1. **one broker, killed and restarted**: a `Writer` writes ``--rate``
   messages/s of KMirror ``tel_inclinometer`` while the only node is SIGKILLed
   a third of the way in and started again ``--down`` seconds later;
2. **three brokers, the leader killed**: the same on a cluster of three
   (replication factor 3, ``min.insync.replicas=2``) while the node leading
   the topic's partition is SIGKILLed and brought back ``--down`` s later;
   with ``acks=all`` and with ``acks=1``;
3. **commands across the election**: a Remote commands the example CSC
   (KTest:1) one command at a time (5 s timeout) on the cluster while the
   leader of the command topic is killed and brought back.

A reader reads live throughout each write run, and the topic is read back from
the beginning after it. Every written message gets exactly one delivery report
(``Writer(on_delivery=...)``), so each is one of: acknowledged (and then read
back, or missing: the target is 0 with acks=all), failed and reported (an
unknown outcome: it may be stored, counted as "failed yet present"), or never
reported (the target is 0 always). The writers' message timeout is
``--timeout`` seconds (above the ~9 s election with Kafka's defaults).

Run: ``.venv/bin/python benchmarks/fault_bench.py [--runs 3] [--rate 500] [--seconds 20] [--down 6]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka.testing import Stack, command_through, kill_leader_schedule, write_through  # noqa: E402

COLUMNS = [
    "written",
    "acknowledged",
    "failed_reported",
    "read_back",
    "acked_missing",
    "unreported",
    "failed_yet_present",
    "duplicates",
    "live_acked_missing",
]


def _subname() -> str:
    return f"fault{uuid.uuid4().hex[:8]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--down", type=float, default=6.0, help="seconds a killed node stays down")
    parser.add_argument("--timeout", type=float, default=30.0, help="the writers' message.timeout.ms, in s")
    args = parser.parse_args()
    kill_at = args.seconds / 4
    print("| broker | fault | acks | run | " + " | ".join(COLUMNS) + " | election s |")
    print("|---|---|---|---:|" + "---:|" * (len(COLUMNS) + 1))

    def row(broker: str, fault: str, acks: str, run: int, tally: object, election: dict[str, float]) -> None:
        cells = " | ".join(str(tally.row()[c]) for c in COLUMNS)  # type: ignore[attr-defined]
        took = election.get("elected", 0) - election.get("killed", 0) if "elected" in election else None
        print(f"| {broker} | {fault} | {acks} | {run} | {cells} | {took and f'{took:.1f}' or '-'} |", flush=True)

    with Stack() as single:
        version = single.kafka.version
        node = single.kafka.nodes[0].node_id

        def restart_schedule(topic: str) -> list[tuple[float, object]]:
            def kill_node() -> str:
                single.kafka.kill(node)
                return "killed"

            def restart_node() -> str:
                single.kafka.restart(node)
                return "back"

            return [(kill_at, kill_node), (kill_at + args.down, restart_node)]

        for acks in ("1", "all"):
            for run in range(args.runs):
                tally = write_through(
                    single, restart_schedule, acks=acks, rate=args.rate, seconds=args.seconds,
                    subname=_subname(), timeout=args.timeout,
                )  # fmt: skip
                row("1 node", "kill -9, restart", acks, run + 1, tally, {})
    with Stack(brokers=3) as cluster:
        for acks in ("all", "1"):
            for run in range(args.runs):
                election: dict[str, float] = {}
                tally = write_through(
                    cluster,
                    lambda t, e=election: kill_leader_schedule(cluster, t, kill_at, args.down, e),
                    acks=acks, rate=args.rate, seconds=args.seconds, subname=_subname(), timeout=args.timeout,
                )  # fmt: skip
                row("3 nodes", "kill -9 the leader", acks, run + 1, tally, election)
        print("\n| commands, 3 nodes, kill -9 the command topic's leader | run | sent | completed | failed "
              "| errors | election s | first completed after the election, s | longest round trip s |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for run in range(args.runs):
            election = {}
            tally = asyncio.run(
                command_through(
                    cluster,
                    lambda t, e=election: kill_leader_schedule(cluster, t, kill_at, args.down + 2, e),
                    seconds=args.seconds + 6,
                    subname=_subname(),
                    election=election,
                )  # fmt: skip
            )
            print(
                f"| setScalars, one at a time, 5 s timeout | {run + 1} | {tally.sent} | {tally.completed} | "
                f"{tally.failed} | {tally.errors or '-'} | {tally.election_seconds or 0:.1f} | "
                f"{tally.recovered_after_election if tally.recovered_after_election is not None else '-'} | "
                f"{tally.longest_round_trip:.1f} |",
                flush=True,
            )
    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Apache Kafka {version}; "
        f"writers at {args.rate:.0f} msg/s for {args.seconds} s, the fault at {kill_at:.1f} s, down {args.down} s; "
        f"message.timeout.ms {args.timeout * 1000:.0f}"
    )


if __name__ == "__main__":
    main()
