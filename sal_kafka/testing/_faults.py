"""Faults injected into a running stack, and every message and command accounted for.

Shared by the cluster fault tests and ``benchmarks/fault_bench.py``: a writer
(or a Remote commanding a Controller) runs at a steady pace while a schedule
kills and restarts broker nodes; afterwards each message is put in exactly one
class (acknowledged and read back, failed and reported, acknowledged and
missing, never reported), so that nothing can be lost without a number
saying so.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..kafka import Reader, Writer
from ..schemas._model import ComponentInfo
from ._stack import Stack

__all__ = ["WriteTally", "CommandTally", "write_through", "command_through", "kill_leader_schedule"]

#: (seconds after the start, action) pairs, run in order in a thread of their own
Schedule = Sequence[tuple[float, Callable[[], Any]]]


@attrs.define
class WriteTally:
    """What happened to every message a `write_through` run wrote.

    ``acked_missing`` (acknowledged by the broker, then not in the topic) is
    the figure that must be 0 with ``acks=all``; ``unreported`` (no delivery
    report at all) must be 0 always.
    """

    acks: str
    written: int = 0
    acknowledged: int = 0
    failed_reported: int = 0
    read_back: int = 0
    acked_missing: int = 0
    unreported: int = 0
    failed_yet_present: int = 0
    duplicates: int = 0
    live_read: int = 0
    live_acked_missing: int = 0
    reader_broker_down_events: int = 0
    events: list[str] = attrs.field(factory=list)

    def row(self) -> dict[str, Any]:
        return attrs.asdict(self, filter=lambda a, _: a.name != "events")


@attrs.define
class CommandTally:
    """What happened to the commands of a `command_through` run."""

    sent: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = attrs.field(factory=dict)
    #: seconds from the new leader's election to the first command that completed after it
    recovered_after_election: float | None = None
    election_seconds: float | None = None
    longest_round_trip: float = 0.0
    events: list[str] = attrs.field(factory=list)


def _run_schedule(schedule: Schedule, start: float, events: list[str]) -> threading.Thread:
    def run() -> None:
        for at, action in schedule:
            time.sleep(max(0.0, start + at - time.monotonic()))
            result = action()
            events.append(f"{time.monotonic() - start:6.2f} s {getattr(action, '__name__', action)}: {result}")

    thread = threading.Thread(target=run, name="sal-kafka faults", daemon=True)
    thread.start()
    return thread


def kill_leader_schedule(
    stack: Stack, kafka_topic: str, at: float, down: float, election: dict[str, float]
) -> list[tuple[float, Callable[[], Any]]]:
    """Kill the node leading ``kafka_topic`` [0] at ``at`` s, restart it ``down`` s later.

    ``election`` receives ``killed`` and ``elected`` (monotonic times) and ``leader``s.
    """
    victim: dict[str, int] = {}

    def kill_leader() -> str:
        victim["node"] = node = stack.kafka.leader(kafka_topic)
        election["killed"] = time.monotonic()
        stack.kafka.kill(node)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the controller quorum elects a new leader
            try:
                leader = stack.kafka.leader(kafka_topic, timeout=2.0)
            except Exception:  # noqa: BLE001 - metadata from the dead node's peers may lag
                leader = -1
            if leader not in (-1, node):
                election["elected"] = time.monotonic()
                election["leader"] = leader
                return f"node {node} killed; node {leader} leads after {election['elected'] - election['killed']:.2f} s"
            time.sleep(0.05)
        return f"node {node} killed; no new leader within 30 s"

    def restart_node() -> str:
        stack.kafka.restart(victim["node"])
        return f"node {victim['node']} back"

    return [(at, kill_leader), (at + down, restart_node)]


def write_through(
    stack: Stack,
    schedule_of: Callable[[str], Schedule],
    *,
    acks: str,
    rate: float,
    seconds: float,
    subname: str,
    component: str = "KMirror",
    topic: str = "tel_inclinometer",
    timeout: float = 10.0,
) -> WriteTally:
    """Write ``rate`` messages/s for ``seconds`` while ``schedule_of(kafka_topic)`` runs,
    with a reader reading live throughout; then read the topic back and account.

    ``timeout`` is the writer's ``message.timeout.ms`` (s): a message not
    acknowledged by then is reported failed.
    """
    tally = WriteTally(acks=acks)
    reports: dict[int, str | None] = {}
    lock = threading.Lock()

    def on_delivery(seq: int, error: str | None) -> None:
        with lock:
            reports[seq] = error

    config = stack.config(topic_subname=subname, timeout=timeout)
    info = ComponentInfo.load(component, topic_subname=subname)
    writer = Writer(info, topic, config=config, acks=acks, on_delivery=on_delivery)
    live: list[int] = []
    stop = threading.Event()
    reader = Reader(info, [topic], config=config, start="end")
    reading = threading.Thread(
        target=reader.run, args=(lambda r: live.append(r.data["private_seqNum"]), stop), daemon=True
    )
    reading.start()
    start = time.monotonic()
    faults = _run_schedule(schedule_of(writer.topic.kafka_name), start, tally.events)
    written = 0
    while time.monotonic() - start < seconds:
        writer.write(inclinometerAngle=float(written))
        written += 1
        target = start + written / rate
        while (left := target - time.monotonic()) > 0:
            writer.poll(min(0.002, left))
    faults.join(120)
    writer.close()  # every message reported by now: delivered, or failed at message.timeout.ms
    acked = {s for s, e in reports.items() if e is None}
    deadline = time.monotonic() + 30
    while not acked <= set(live) and time.monotonic() < deadline:
        time.sleep(0.1)  # the live reader catches up
    stop.set()
    reading.join(10)
    tally.reader_broker_down_events = reader.stats.broker_down_events
    reader.close()
    with Reader(info, [topic], config=config, start="beginning") as back:
        present: list[int] = []
        while (received := back.next(3.0)) is not None:
            present.append(received.data["private_seqNum"])
    failed = {s for s, e in reports.items() if e is not None}
    tally.written = written
    tally.acknowledged = len(acked)
    tally.failed_reported = len(failed)
    tally.read_back = len(set(present))
    tally.duplicates = len(present) - len(set(present))
    tally.acked_missing = len(acked - set(present))
    tally.unreported = len(set(range(1, written + 1)) - set(reports))
    tally.failed_yet_present = len(failed & set(present))
    tally.live_read = len(set(live))
    tally.live_acked_missing = len(acked - set(live))
    return tally


async def command_through(
    stack: Stack,
    schedule_of: Callable[[str], Schedule],
    *,
    seconds: float,
    subname: str,
    election: dict[str, float],
    command_timeout: float = 5.0,
) -> CommandTally:
    """A Remote commands the example CSC (KTest:1, in this process) one command at a
    time for ``seconds`` while ``schedule_of(command kafka topic)`` runs."""
    from ..apps.example import ExampleCsc
    from ..components import Remote, SalRetCode

    tally = CommandTally()
    config = stack.config(topic_subname=subname, timeout=command_timeout)
    csc = ExampleCsc(1, config=config)
    await csc.start_task
    remote = Remote("KTest", 1, config=config)
    await remote.start_task
    try:
        await remote.cmd_start.start(timeout=30)
        await remote.cmd_enable.start(timeout=30)
        start = time.monotonic()
        kafka_topic = remote.cmd_setScalars.topic.kafka_name
        faults = _run_schedule(schedule_of(kafka_topic), start, tally.events)
        while time.monotonic() - start < seconds:
            tally.sent += 1
            began = time.monotonic()
            try:
                ack = await remote.cmd_setScalars.set_start(int0=tally.sent, timeout=command_timeout)
                ok = ack.ack == SalRetCode.CMD_COMPLETE
            except Exception as exc:  # noqa: BLE001 - each kind is counted and reported
                ok = False
                kind = type(exc).__name__
                tally.errors[kind] = tally.errors.get(kind, 0) + 1
            ended = time.monotonic()
            tally.longest_round_trip = max(tally.longest_round_trip, ended - began)
            if ok:
                tally.completed += 1
                elected = election.get("elected")
                if elected is not None and tally.recovered_after_election is None and began >= election["killed"]:
                    tally.recovered_after_election = max(0.0, ended - elected)
            else:
                tally.failed += 1
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.02)
        await asyncio.to_thread(faults.join, 120)
        if "elected" in election:
            tally.election_seconds = election["elected"] - election["killed"]
    finally:
        await remote.close()
        await csc.close()
    return tally
