"""The sink loop behind its seam: the in-memory back-end over the in-memory broker.

What PostgreSQL's tests show on a real database holds for any `Backend`:
every message stored once across restarts, and a store that goes down and
comes back loses nothing. No broker, no database: seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sal_kafka import ComponentInfo, KafkaConfig, SchemaRegistry, Session, Writer
from sal_kafka.sinks import SinkError, SinkRunner
from sal_kafka.testing import MemoryBackend, MemoryTransport
from tests.conftest import BUNDLED

TOPICS = ["evt_detailedState", "tel_inclinometer"]


@pytest.fixture
def session() -> Iterator[Session]:
    config = KafkaConfig(timeout=2.0)
    with Session(config, transport=MemoryTransport(), registry=SchemaRegistry("mock://runner")) as s:
        yield s


def _write(session: Session, first: int, n: int) -> None:
    mirror = ComponentInfo.load("KMirror", BUNDLED)
    with (
        Writer(mirror, "tel_inclinometer", session=session) as forces,
        Writer(mirror, "evt_detailedState", session=session) as state,
    ):
        for i in range(first, first + n):
            forces.write(inclinometerAngle=float(i))
            state.write(detailedState=i % 5)


def _sink(session: Session, backend: MemoryBackend) -> SinkRunner:
    mirror = ComponentInfo.load("KMirror", BUNDLED)
    return SinkRunner(backend, [mirror], session=session, topics=TOPICS, max_delay=0.02)


def _angles(backend: MemoryBackend) -> list[float]:
    return [record["inclinometerAngle"] for _, record in backend.rows["tel_inclinometer"]]


def test_every_message_once_across_restarts(session: Session) -> None:
    backend = MemoryBackend()
    _write(session, 0, 30)
    sink = _sink(session, backend)
    sink.run(duration=0.5)
    assert backend.prepared == TOPICS and _angles(backend) == [float(i) for i in range(30)]
    assert sink.stats.rows == {"evt_detailedState": 30, "tel_inclinometer": 30} and sink.stats.batches >= 1
    _sink(session, backend).run(duration=0.3)  # started again: resumes from the stored offsets
    assert len(backend.rows["tel_inclinometer"]) == 30
    _write(session, 30, 5)
    _sink(session, backend).run(duration=0.5)
    assert _angles(backend) == [float(i) for i in range(35)]
    assert [offset for offset, _ in backend.rows["evt_detailedState"]] == list(range(35))


def test_a_store_that_goes_down_is_retried_and_loses_nothing(session: Session) -> None:
    backend = MemoryBackend()
    backend.down = True
    _write(session, 0, 10)
    sink = _sink(session, backend)
    thread = threading.Thread(target=sink.run)
    thread.start()
    deadline = time.monotonic() + 10
    while sink.stats.retries < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert backend.rows["tel_inclinometer"] == [] and backend.offsets == {}  # nothing taken as stored
    backend.down = False
    while len(backend.rows["tel_inclinometer"]) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.stop()
    thread.join(10)
    assert _angles(backend) == [float(i) for i in range(10)] and sink.stats.retries >= 1


def test_stopped_while_the_store_is_down_says_the_batch_is_not_stored(session: Session) -> None:
    backend = MemoryBackend()
    backend.down = True
    _write(session, 0, 3)
    sink = _sink(session, backend)
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(sink, failure))
    thread.start()
    deadline = time.monotonic() + 10
    while sink.stats.retries < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.stop()
    thread.join(10)
    assert len(failure) == 1 and isinstance(failure[0], SinkError)
    assert "stopped while the in-memory sink was down: the last batch is not stored" in str(failure[0])


def _capture(sink: SinkRunner, failure: list[BaseException]) -> None:
    try:
        sink.run()
    except SinkError as exc:
        failure.append(exc)


def test_no_topic_to_store_is_an_error(session: Session) -> None:
    with pytest.raises(SinkError, match=r"no topic to store \(components \['KMirror'\], topics \{'nothing'\}\)"):
        SinkRunner(MemoryBackend(), [ComponentInfo.load("KMirror", BUNDLED)], session=session, topics=["nothing"])
