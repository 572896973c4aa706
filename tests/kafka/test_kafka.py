"""Writers and readers against a real Apache Kafka broker (KRaft) and our registry, started by fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import msgspec
import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from sal_kafka import (
    AsyncReader,
    AsyncWriter,
    ComponentInfo,
    KafkaConfig,
    KafkaIOError,
    Reader,
    RegistryError,
    ValidationError,
    Writer,
)
from sal_kafka.observe import LatencyHistogram
from sal_kafka.registry import RegistryConfig
from sal_kafka.testing import Stack, sample_record
from sal_kafka.wire import MAX_SEQ_NUM, TAI_MINUS_UTC, message_key
from tests.conftest import BUNDLED
from tests.registry_server import free_port

pytestmark = pytest.mark.broker


def load(name: str, config: KafkaConfig) -> ComponentInfo:
    return ComponentInfo.load(name, BUNDLED, config.topic_subname)


def read_all(reader: Reader, number: int, timeout: float = 15.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < number and time.monotonic() < deadline:
        received = reader.next(1.0)
        if received is not None:
            got.append(received)
    return got


@pytest.mark.parametrize("acks", ["1", "all"])
def test_no_loss_and_order(kafka_config: KafkaConfig, acks: str) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_forceActuatorData", config=kafka_config, acks=acks) as writer:
        reader = Reader(mirror, ["tel_forceActuatorData"], config=kafka_config)
        record = sample_record(writer.topic)
        for i in range(3000):
            writer.write(record, fx=float(i))
        writer.flush()
        got = read_all(reader, 3000)
        reader.close()
    assert [r.data["private_seqNum"] for r in got] == list(range(1, 3001))
    assert [r.data["fx"] for r in got] == [float(i) for i in range(3000)]
    assert writer.stats.delivered == 3000 and writer.stats.failed == 0
    assert reader.stats.undecodable == 0


def test_private_fields_and_key(kafka_config: KafkaConfig) -> None:
    ktest = load("KTest", kafka_config)
    with Writer(ktest, "evt_testState", index=5, config=kafka_config) as writer:
        before = time.time()
        sent = writer.write(state=3, wait=True)
        after = time.time()
        writer._seq_num = MAX_SEQ_NUM - 1
        assert writer.write()["private_seqNum"] == MAX_SEQ_NUM
        assert writer.write()["private_seqNum"] == 1  # wraps
    assert sent["salIndex"] == 5 and sent["private_seqNum"] == 1
    assert before <= sent["private_efdStamp"] <= after
    assert sent["private_sndStamp"] == sent["private_kafkaStamp"] == sent["private_efdStamp"] + TAI_MINUS_UTC
    assert sent["private_revCode"] == writer.topic.rev_code and len(sent["private_revCode"]) == 8
    assert sent["private_identity"] == "KTest:5" and sent["private_origin"] == os.getpid()
    with Reader(ktest, ["evt_testState"], config=kafka_config, start="beginning") as reader:
        received = read_all(reader, 3)
    # ts_salobj 8's keys, byte for byte (compaction keeps the latest per byte key)
    assert [r.key for r in received] == [b'{ "name": "KTest", "index": 5, "topic": "logevent_testState" }'] * 3


def test_message_keys_are_ts_salobjs_byte_for_byte() -> None:
    ktest, mirror = ComponentInfo.load("KTest", BUNDLED), ComponentInfo.load("KMirror", BUNDLED)
    assert message_key(ktest["evt_scalars"], 1) == b'{ "name": "KTest", "index": 1, "topic": "logevent_scalars" }'
    assert message_key(ktest["cmd_setScalars"], 2) == b'{ "name": "KTest", "index": 2, "topic": "command_setScalars" }'
    assert message_key(ktest["ack_ackcmd"], 2) == b'{ "name": "KTest", "index": 2, "topic": "ackcmd" }'
    assert message_key(mirror["evt_detailedState"], 0) == b'{ "name": "KMirror", "topic": "logevent_detailedState" }'
    assert message_key(mirror["tel_forceActuatorData"], 0) == b""  # empty, not null
    assert message_key(ktest["tel_scalars"], 3) == b""


def test_fields_left_out_keep_their_last_value(kafka_config: KafkaConfig) -> None:
    ktest = load("KTest", kafka_config)
    with Writer(ktest, "evt_scalars", index=1, config=kafka_config) as writer:
        writer.write(int0=7, string0="a")
        second = writer.write(string0="b")
        with pytest.raises(ValidationError, match=r"Expected int in \[0, 255\] \(byte\), got 300 - at \$.byte0"):
            writer.write(byte0=300)
        assert writer.data["byte0"] == 0  # a refused write changes nothing
    assert (second["int0"], second["string0"]) == (7, "b")


def test_late_reader_gets_the_latest_event(kafka_config: KafkaConfig) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "evt_detailedState", config=kafka_config) as writer:
        for state in (1, 2, 3):
            writer.write(detailedState=state, wait=True)  # one request each: see the module docstring
    with Reader(mirror, ["evt_detailedState", "tel_inclinometer"], config=kafka_config) as reader:
        first = reader.next(5.0)
        assert first is not None and first.history and first.data["detailedState"] == 3
        assert reader.next(1.0) is None  # only the latest; telemetry has no history
    with Reader(mirror, ["evt_detailedState"], config=kafka_config, history=False) as reader:
        assert reader.next(1.0) is None


def test_history_survives_an_early_empty_poll(kafka_config: KafkaConfig) -> None:
    """A first next() with a timeout too short for the first fetch must not
    end the history phase: history is still the newest per index, marked so."""
    ktest = load("KTest", kafka_config)
    writers = {i: Writer(ktest, "evt_testState", index=i, config=kafka_config) for i in (1, 2)}
    for round_ in range(3):
        for i, writer in writers.items():
            writer.write(state=10 * i + round_, wait=True)
    with Reader(ktest, ["evt_testState"], config=kafka_config) as reader:
        early = reader.next(0.001)
        history = ([early] if early is not None else []) + read_all(reader, 2 - (early is not None), timeout=5.0)
        assert reader.next(0.5) is None
    assert sorted((r.data["salIndex"], r.data["state"]) for r in history) == [(1, 12), (2, 22)]
    assert all(r.history for r in history)


def test_indexed_history_newest_per_index_and_index_filter(kafka_config: KafkaConfig) -> None:
    ktest = load("KTest", kafka_config)
    writers = {i: Writer(ktest, "evt_testState", index=i, config=kafka_config) for i in (1, 2, 3)}
    for round_ in range(3):
        for i, writer in writers.items():
            writer.write(state=10 * i + round_, wait=True)
    with Reader(ktest, ["evt_testState"], config=kafka_config) as reader:
        history = read_all(reader, 3, timeout=5.0)
        assert reader.next(0.5) is None
    assert sorted((r.data["salIndex"], r.data["state"]) for r in history) == [(1, 12), (2, 22), (3, 32)]
    assert all(r.history for r in history)
    with Reader(ktest, ["evt_testState"], index=2, config=kafka_config) as reader:
        (only,) = read_all(reader, 1, timeout=5.0)
        assert (only.data["salIndex"], only.data["state"]) == (2, 22)
        writers[1].write(state=99, wait=True)
        writers[2].write(state=98, wait=True)
        live = reader.next(5.0)
        assert live is not None and (live.data["salIndex"], live.data["state"]) == (2, 98)
        assert reader.stats.filtered >= 1
    for writer in writers.values():
        writer.close()


def test_corrupt_messages_are_skipped_and_counted(kafka_config: KafkaConfig) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        reader = Reader(mirror, ["tel_inclinometer"], config=kafka_config)
        raw = Producer(kafka_config.producer_conf())
        for junk in (b"", b"\x01\x00\x00\x00\x01abc", b"\x00\x00\x00\x00\x01\xff\xff", b"\x00\x00\x01\x00\x00zz"):
            raw.produce(writer.topic.kafka_name, junk)
            raw.flush(10)
        writer.write(inclinometerAngle=45.0, wait=True)
        got = reader.next(10.0)
        reader.close()
    assert got is not None and got.data["inclinometerAngle"] == 45.0
    assert reader.stats.undecodable == 4 and reader.stats.received == 5


@pytest.mark.parametrize(
    ("postprocess", "kind"),
    [
        ("none", dict),
        ("simple_namespace", SimpleNamespace),
        ("dataclass", None),
        ("attrs", None),
        ("msgspec", msgspec.Struct),
    ],
)
def test_postprocess(kafka_config: KafkaConfig, postprocess: str, kind: type | None) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        reader = Reader(mirror, ["tel_inclinometer"], config=kafka_config, postprocess=postprocess)
        writer.write(inclinometerAngle=12.5, wait=True)
        got = reader.next(10.0)
        reader.close()
    assert got is not None
    data = got.data
    angle = data["inclinometerAngle"] if isinstance(data, dict) else data.inclinometerAngle
    rcv = data["private_rcvStamp"] if isinstance(data, dict) else data.private_rcvStamp
    assert angle == 12.5 and rcv > 0
    if kind is not None:
        assert isinstance(data, kind)
    if postprocess == "attrs":
        assert attrs.has(type(data))


@pytest.mark.parametrize("postprocess", ["none", "msgspec"])
def test_reading_numpy_arrays(kafka_config: KafkaConfig, postprocess: str) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_forceActuatorData", config=kafka_config) as writer:
        reader = Reader(mirror, ["tel_forceActuatorData"], config=kafka_config, arrays="numpy", postprocess=postprocess)
        sent = writer.write(sample_record(writer.topic), wait=True)
        got = reader.next(10.0)
        reader.close()
    assert got is not None
    data = got.data if postprocess == "none" else msgspec.structs.asdict(got.data)
    for name, f in writer.topic.fields.items():
        if f.count > 1:
            assert isinstance(data[name], np.ndarray) and data[name].dtype == np.float32
            assert data[name].tolist() == sent[name]
    assert data["private_seqNum"] == sent["private_seqNum"] and data["private_rcvStamp"] > 0


def test_async_writer_and_reader(kafka_config: KafkaConfig) -> None:
    mirror = load("KMirror", kafka_config)

    async def main() -> list[float]:
        seen: list[float] = []
        async with (
            AsyncWriter(mirror, "tel_inclinometer", config=kafka_config) as writer,
            AsyncReader(mirror, ["tel_inclinometer"], config=kafka_config) as reader,
        ):
            reader.add_callback(lambda r: seen.append(r.data["inclinometerAngle"]))
            for i in range(50):
                await writer.write(inclinometerAngle=float(i))
            await writer.flush()
            got = []
            async for received in reader:
                got.append(received.data["private_seqNum"])
                if len(got) == 50:
                    break
            assert got == list(range(1, 51))
        return seen

    assert asyncio.run(main()) == [float(i) for i in range(50)]


def test_broker_down_fails_clearly_within_timeout(stack: object) -> None:
    port = free_port()
    config = KafkaConfig(
        bootstrap_servers=f"127.0.0.1:{port}", registry=RegistryConfig(url="http://127.0.0.1:1"), timeout=3.0
    )
    start = time.monotonic()
    with pytest.raises(KafkaIOError, match=rf"cannot reach the Kafka broker at 127.0.0.1:{port} within 3.0 s"):
        Writer(ComponentInfo.load("KMirror", BUNDLED), "tel_inclinometer", config=config)
    assert time.monotonic() - start < 10


def test_undeliverable_messages_raise_on_flush(kafka_config: KafkaConfig) -> None:
    """The real librdkafka: a producer whose broker is not there times the message out."""
    mirror = load("KMirror", kafka_config)
    dead = attrs.evolve(kafka_config, bootstrap_servers=f"127.0.0.1:{free_port()}", timeout=1.5)
    # topic and schema exist (made on the live broker); the writer's own broker is dead
    Writer(mirror, "tel_inclinometer", config=kafka_config).close()
    writer = Writer(mirror, "tel_inclinometer", config=dead, create_topics=False)
    writer.write(inclinometerAngle=1.0)
    with pytest.raises(
        KafkaIOError,
        match=r"0 messages failed, 1 timed out \(outcome unknown\): lsst\..*\.KMirror\.inclinometer: outcome "
        r"unknown \(the broker may have stored it\): Local: Message timed out",
    ):
        writer.flush(10)
    # timed out: librdkafka cannot tell whether a sent message was stored
    assert (writer.stats.failed, writer.stats.unknown, writer.stats.delivered) == (0, 1, 0)


def test_registry_down_fails_start_up_clearly(stack: object, kafka_config: KafkaConfig) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = attrs.evolve(kafka_config, registry=RegistryConfig(url=url, max_retries=0, timeout=2.0))
    with pytest.raises(
        RegistryError, match=rf"url={url}, subject=lsst\.{config.topic_subname}\.KMirror\.inclinometer-value"
    ):
        Writer(load("KMirror", config), "tel_inclinometer", config=config)


@pytest.mark.parametrize("read_options", [[], ["--arrays", "numpy", "--postprocess", "msgspec"]])
def test_write_and_read_commands_report(stack: object, kafka_config: KafkaConfig, read_options: list[str]) -> None:
    env = {
        **os.environ,
        "SAL_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,  # type: ignore[attr-defined]
        "SAL_KAFKA_SCHEMA_REGISTRY_URL": stack.registry_url,
        "SAL_KAFKA_TOPIC_SUBNAME": kafka_config.topic_subname,
    }  # type: ignore[attr-defined]
    cli = [sys.executable, "-m", "sal_kafka"]
    subprocess.run(
        cli + ["write", "KTest", "tel_arrays", "-n", "1", "--index", "1"], env=env, check=True, capture_output=True
    )
    ready = Path(os.environ.get("TMPDIR", "/tmp")) / f"sal-kafka-ready-{kafka_config.topic_subname}"
    reader = subprocess.Popen(
        cli
        + ["read", "KTest", "tel_arrays", "-n", "500", "-t", "20", "--json", "--ready-file", str(ready), *read_options],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():  # the reader is at the end of the topic: what is written now, it reads
        assert reader.poll() is None and time.monotonic() < deadline, "the reader did not get ready"
        time.sleep(0.01)
    ready.unlink()
    written = subprocess.run(
        cli + ["write", "KTest", "tel_arrays", "-n", "500", "--index", "2", "--validation", "msgspec", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    out, _ = reader.communicate(timeout=60)
    w, r = json.loads(written.stdout), json.loads(out)
    assert w["messages"] == 500 and w["failed"] == 0 and w["messages_per_s"] > 0 and w["mb_per_s"] > 0
    assert r["messages"] == 500 and r["lost"] == 0 and r["undecodable"] == 0
    assert set(r["latency_ms"]) == {"mean", "stdev", "min", "p50", "p99", "max"} and r["latency_ms"]["min"] > 0
    assert r["arrays"] == ("numpy" if read_options else "list")
    ack = w["ack_latency_ms"]
    assert 0 < ack["p50"] <= ack["p99"] <= ack["max"] + 0.05 and ack["mean"] > 0


def test_latency_histogram_percentiles_within_a_bin() -> None:
    rng = random.Random(3)
    values = [rng.expovariate(1 / 0.002) for _ in range(5000)] + [2.5]  # one beyond the last bin
    histogram = LatencyHistogram()
    for v in values:
        histogram.add(v)
    ordered = sorted(values)
    for p in (1, 50, 90, 99, 99.9):
        exact = ordered[math.ceil(p / 100 * len(ordered)) - 1]
        assert exact <= histogram.percentile(p) <= exact + histogram.resolution  # type: ignore[operator]
    assert histogram.percentile(100) == histogram.max == 2.5
    assert histogram.mean == pytest.approx(sum(values) / len(values))
    assert LatencyHistogram().percentile(50) is None and LatencyHistogram().mean is None


def _processes_using_broker(port: str) -> list[int]:
    """Processes whose environment points at this broker: the demo's readers and writers."""
    marker = f"SAL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}\0".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker in environ.read_bytes():
                found.append(int(environ.parent.name))
    return found


def test_ctrl_c_on_dev_leaves_no_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "dev"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    pids: list[int] = []
    port = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("starting Apache Kafka ("):
            port = line.split(" on 127.0.0.1:", 1)[1].split()[0]
        if line.startswith("broker and registry pids"):
            pids = [int(w) for w in line.split() if w.isdigit()]
        if line.startswith("running "):
            break
    deadline = time.monotonic() + 30
    while not _processes_using_broker(port):  # the demo's first reader has started
        assert time.monotonic() < deadline, "the demo's reader did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    assert len(pids) == 2
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert _processes_using_broker(port) == []


def test_ctrl_c_during_a_spawn_still_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands while a demo process is being started (seen in CI) must not leak it."""
    from sal_kafka.testing import _stack as _dev
    from sal_kafka.testing import spawn_cli

    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args: object, **kwargs: object) -> subprocess.Popen[str]:
        child = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], text=True)
        os.kill(os.getpid(), signal.SIGINT)  # arrives before the child is recorded, unless deferred
        return child

    monkeypatch.setattr(_dev.subprocess, "Popen", popen_then_ctrl_c)
    procs: list[subprocess.Popen[str]] = []
    with pytest.raises(KeyboardInterrupt):
        spawn_cli(procs, "read", "KMirror", env={})
    assert len(procs) == 1
    procs[0].kill()
    assert procs[0].wait(10) == -signal.SIGKILL


def test_ctrl_c_is_held_back_whichever_thread_the_kernel_gives_it_to() -> None:
    """The process's SIGINT may reach a thread other than the main one (here one that is
    waiting, as librdkafka's are): the spawn is still not interrupted before it is recorded."""
    import threading

    from sal_kafka._util import sigint_deferred

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    got: list[str] = []
    with pytest.raises(KeyboardInterrupt), sigint_deferred():
        signal.pthread_kill(other.ident or 0, signal.SIGINT)
        time.sleep(0.2)  # Python runs its handler in the main thread meanwhile
        got.append("recorded")
    stop.set()
    assert got == ["recorded"]


def test_delivery_errors_reach_the_callback_instead(kafka_config: KafkaConfig) -> None:
    errors: list[str] = []
    mirror = load("KMirror", kafka_config)
    Writer(mirror, "tel_inclinometer", config=kafka_config).close()
    dead = attrs.evolve(kafka_config, bootstrap_servers=f"127.0.0.1:{free_port()}", timeout=1.5)
    writer = Writer(mirror, "tel_inclinometer", config=dead, create_topics=False, on_delivery_error=errors.append)
    writer.write(inclinometerAngle=1.0)
    writer.write(inclinometerAngle=2.0)
    writer.flush(10)  # failures went to the callback: no exception, still counted
    assert writer.stats.unknown == 2 and len(errors) == 2
    assert all("KMirror.inclinometer: outcome unknown (the broker may have stored it)" in e for e in errors)


def test_async_writer_reports_a_failure_without_another_write(kafka_config: KafkaConfig) -> None:
    """An event written once, then nothing: its failure still reaches the callback (served in the loop)."""
    errors: list[str] = []

    mirror = load("KMirror", kafka_config)
    Writer(mirror, "evt_detailedState", config=kafka_config).close()
    dead = attrs.evolve(kafka_config, bootstrap_servers=f"127.0.0.1:{free_port()}", timeout=1.0)

    async def scenario() -> None:
        writer = AsyncWriter(
            mirror, "evt_detailedState", config=dead, create_topics=False, on_delivery_error=errors.append
        )
        await writer.start()
        await writer.write(detailedState=2)
        for _ in range(50):  # no write, flush or close: only the loop's report serving
            await asyncio.sleep(0.1)
            if errors:
                break
        assert writer.stats.unknown == 1 and len(errors) == 1
        await writer.close()  # flushes nothing more: the failure went to the callback

    asyncio.run(scenario())


def test_poll_serves_reports_and_gives_the_ack_latency(kafka_config: KafkaConfig) -> None:
    with Writer(load("KMirror", kafka_config), "tel_inclinometer", config=kafka_config) as writer:
        writer.write(inclinometerAngle=1.0)
        served = 0
        for _ in range(100):
            served += writer.poll(0.05)
            if served:
                break
        assert served == 1 and writer.stats.delivered == 1
        assert 0 < writer.stats.ack_latency.max < 1.0


def test_batched_writes_before_and_after_a_reader_starts(kafka_config: KafkaConfig) -> None:
    """Messages written in batches: the end the broker reports is the true end (the
    last offset + 1), so a reader starting at the end gets exactly what is written
    after it started, none of what came before."""
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config, linger_ms=50) as writer:
        for i in range(1000):
            writer.write(inclinometerAngle=float(i))
        writer.flush()
        probe = Consumer(kafka_config.consumer_conf(**{"group.id": "probe"}))
        _, reported_end = probe.get_watermark_offsets(TopicPartition(writer.topic.kafka_name, 0), timeout=10)
        probe.close()
        with Reader(mirror, ["tel_inclinometer"], config=kafka_config) as reader:
            for i in range(1000, 1500):
                writer.write(inclinometerAngle=float(i))
            writer.flush()
            got = read_all(reader, 500, timeout=20)
            assert reader.next(0.5) is None
    assert reported_end == 1000
    assert [r.data["inclinometerAngle"] for r in got] == [float(i) for i in range(1000, 1500)]


def test_batched_events_give_the_true_latest_as_history(kafka_config: KafkaConfig) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "evt_detailedState", config=kafka_config, linger_ms=50) as writer:
        for state in range(1, 301):
            writer.write(detailedState=state)  # a few batches, not one request each
    with Reader(mirror, ["evt_detailedState"], config=kafka_config) as reader:
        history = read_all(reader, 1, timeout=10)
        assert reader.next(0.5) is None
    assert [(r.history, r.data["detailedState"]) for r in history] == [(True, 300)]


def test_a_topic_written_one_message_per_request_is_read_whole(kafka_config: KafkaConfig) -> None:
    """ts_salobj's producer (and any writer at a low rate with linger 0) makes one batch
    per message; a reader from the beginning reads all of them (within 30 s: a bound on
    correctness, not a speed target: docs/benchmarks.md has the speed)."""
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config, linger_ms=0) as writer:
        for i in range(3000):
            writer.write(inclinometerAngle=float(i), wait=True)  # one produce request each
    with Reader(mirror, ["tel_inclinometer"], config=kafka_config, start="beginning") as reader:
        got = read_all(reader, 3000, timeout=30)
    assert [r.data["inclinometerAngle"] for r in got] == [float(i) for i in range(3000)]


def test_a_reader_knows_the_broker_is_gone_and_resumes_after_a_restart() -> None:
    """Kill the broker under a reader: it says so; restart it: the topics and messages are
    kept (Apache Kafka stores its log on disk), and the reader goes on from its position,
    reading what is written after the restart and nothing twice."""
    with Stack() as own:
        config = own.config(timeout=3.0)
        mirror = ComponentInfo.load("KMirror", BUNDLED)
        with Writer(mirror, "tel_inclinometer", config=config) as writer:
            for i in range(20):
                writer.write(inclinometerAngle=float(i))
        reader = Reader(mirror, ["tel_inclinometer"], config=config, start="beginning")
        assert len(read_all(reader, 20, timeout=10)) == 20 and not reader.broker_down
        own.kill_broker()
        deadline = time.monotonic() + 30
        while not reader.broker_down:
            assert reader.next(0.5) is None and time.monotonic() < deadline, "broker loss not seen"
        assert reader.stats.broker_down_events == 1 and reader.broker_down_for > 0
        own.restart_broker()
        with Writer(mirror, "tel_inclinometer", config=config) as writer:
            for i in range(5):
                writer.write(inclinometerAngle=100.0 + i, wait=True)
        got = read_all(reader, 5, timeout=30)
        assert reader.next(0.5) is None
        reader.close()
    assert [(r.offset, r.data["inclinometerAngle"]) for r in got] == [(20 + i, 100.0 + i) for i in range(5)]
    assert not reader.broker_down and reader.stats.offset_resets == 0


def test_a_position_the_broker_no_longer_has_resumes_from_its_first_message(kafka_config: KafkaConfig) -> None:
    """Records removed below a reader's position (retention, delete_records): the broker
    answers "offset out of range"; the reader counts it, says so, and reads from the first
    message the partition still has."""
    from confluent_kafka.admin import AdminClient

    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        for i in range(10):
            writer.write(inclinometerAngle=float(i))
    name = writer.topic.kafka_name
    admin = AdminClient(kafka_config.admin_conf())
    for future in admin.delete_records([TopicPartition(name, 0, 6)]).values():
        future.result(10)
    with Reader(mirror, ["tel_inclinometer"], config=kafka_config, start=2) as reader:
        got = read_all(reader, 4, timeout=10)
        assert reader.next(0.5) is None
    assert [r.offset for r in got] == [6, 7, 8, 9] and reader.stats.offset_resets == 1


def test_read_reports_missing_messages_and_fails(stack: Stack, kafka_config: KafkaConfig) -> None:
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "read", "KMirror", "tel_inclinometer", "-n", "10", "-t", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["missing"] == 10
    assert done.stderr.strip().splitlines()[-1] == (
        "sal-kafka read: error: 10 of 10 messages missing (no message for 1.0 s)"
    )


def test_sigterm_on_dev_leaves_nothing_behind() -> None:
    import tempfile

    def runtime_dirs() -> set[Path]:  # the embedded PostgreSQL's (before: one left in $TMPDIR for good)
        return set(Path(tempfile.gettempdir()).glob("sal-kafka-runtime-*"))

    before = runtime_dirs()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "dev"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    pids: list[int] = []
    version, workdir = "", None
    for line in proc.stdout:
        if line.startswith("Apache Kafka ") and " ready in " in line:
            version = line.split()[2]
        if line.startswith("broker and registry pids"):
            pids = [int(w) for w in line.split() if w.isdigit()]
        if line.startswith("work folder "):
            workdir = Path(line.split(" ", 2)[2].strip())
        if line.startswith("running "):
            break
    assert workdir is not None and workdir.is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 130  # as interrupted
    assert version.startswith("4.") and len(pids) == 2
    for pid in pids:  # stop() waited for both
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not workdir.exists()
    assert runtime_dirs() - before == set()


def test_read_jsonl_prints_one_object_per_message(stack: Stack, kafka_config: KafkaConfig) -> None:
    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "evt_detailedState", config=kafka_config) as writer:
        writer.write(detailedState=4, wait=True)
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "read", "KMirror", "evt_detailedState", "-n", "1", "--jsonl"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    record = json.loads(line)
    assert set(record) == {"topic", "partition", "offset", "key", "timestamp", "message"}
    assert record["topic"] == writer.topic.kafka_name and record["partition"] == 0 and record["offset"] == 0
    assert record["key"] == {"name": "KMirror", "topic": "logevent_detailedState"}  # ts_salobj's key: JSON
    assert record["message"]["detailedState"] == 4 and record["timestamp"] > 0


def test_read_starts_and_stops_where_told(stack: Stack, kafka_config: KafkaConfig) -> None:
    """``read`` of SAL topics: --from-beginning, --offset, --since and --until (a backfill of a
    time range without code), and a summary that says how the run ended."""
    import datetime

    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        for i in range(5):
            writer.write(inclinometerAngle=float(i), wait=True)
        time.sleep(0.05)
        middle = datetime.datetime.now(datetime.UTC)
        time.sleep(0.05)
        for i in range(5, 10):
            writer.write(inclinometerAngle=float(i), wait=True)
        time.sleep(0.05)
        after = datetime.datetime.now(datetime.UTC)
        time.sleep(0.05)
        for i in range(10, 12):
            writer.write(inclinometerAngle=float(i), wait=True)
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)

    def read(*args: str) -> tuple[list[float], dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "sal_kafka", "read", "KMirror", "tel_inclinometer", "--jsonl", "-t", "3", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        angles = [json.loads(line)["message"]["inclinometerAngle"] for line in done.stdout.splitlines()]
        summaries = [line for line in done.stderr.splitlines() if line.startswith("{")]  # then any error line
        return angles, json.loads(summaries[-1])

    angles, summary = read("--from-beginning", "-n", "12")
    assert angles == [float(i) for i in range(12)] and summary["ended"] == "count"
    assert read("--offset", "10", "-n", "2")[0] == [10.0, 11.0]
    angles, summary = read("--since", middle.isoformat(), "--until", after.isoformat(), "-n", "100")
    assert angles == [float(i) for i in range(5, 10)] and summary["ended"] == "until"
    angles, summary = read("--from-end", "-n", "1")
    assert angles == [] and summary["ended"] == "idle 3 s"


def test_a_reader_starting_at_a_time(kafka_config: KafkaConfig) -> None:
    """start=datetime starts at the first message at or after the time (the broker's
    offsets_for_times), whatever the messages before it; a time after the last message
    starts at the end."""
    import datetime

    mirror = load("KMirror", kafka_config)
    with Writer(mirror, "tel_inclinometer", config=kafka_config) as writer:
        for i in range(5):
            writer.write(inclinometerAngle=float(i), wait=True)
        time.sleep(0.05)  # timestamps are in ms: the last message before must be a ms older than the time
        middle = datetime.datetime.now(datetime.UTC)
        time.sleep(0.05)
        for i in range(5, 10):
            writer.write(inclinometerAngle=float(i), wait=True)
    probe = Consumer(kafka_config.consumer_conf(**{"group.id": "probe"}))
    (answer,) = probe.offsets_for_times(
        [TopicPartition(writer.topic.kafka_name, 0, int(middle.timestamp() * 1000))], timeout=10
    )
    probe.close()
    with Reader(mirror, ["tel_inclinometer"], config=kafka_config, start=middle) as reader:
        got = read_all(reader, 10 - answer.offset, timeout=10)
        assert reader.next(0.5) is None
    assert answer.offset == 5
    assert [r.data["inclinometerAngle"] for r in got] == [float(i) for i in range(5, 10)]
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    with Reader(mirror, ["tel_inclinometer"], config=kafka_config, start=later) as reader:
        assert reader.next(0.5) is None


def test_read_ends_with_an_error_once_the_broker_has_been_gone_for_broker_timeout() -> None:
    """Before: ``sal-kafka read -t 300`` whose broker was killed logged "the reader waits
    for them" and was still running 60 s later."""
    with Stack() as own:
        mirror = ComponentInfo.load("KMirror", BUNDLED)
        with Writer(mirror, "tel_inclinometer", config=own.config()) as writer:
            writer.write(inclinometerAngle=1.0, wait=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "sal_kafka", "read", "KMirror", "tel_inclinometer", "-t", "300"]
            + ["--broker-timeout", "3", "--xml-dir", str(BUNDLED)],
            env=own.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4.0)  # started and reading
        own.kill_broker()
        killed = time.monotonic()
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        took = time.monotonic() - killed
    assert proc.returncode == 1 and took < 30, (took, stderr[-500:])
    assert "sal-kafka read: error: the broker at" in stderr and "is unreachable (down for" in stderr


def test_dev_keep_uses_the_bundled_components_whatever_the_xml_dir(tmp_path: Path) -> None:
    """Before: with $SAL_KAFKA_XML_DIR at the corpus, ``dev --keep`` tried to create every
    topic of the corpus, failed, and left the broker and registry running, no kill line."""
    env = {**os.environ, "SAL_KAFKA_XML_DIR": "/nonexistent/ts_xml"}
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "dev", "--keep", "--workdir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    kill = [line for line in done.stdout.splitlines() if "stop it with: kill" in line]
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "of KTest, KMirror, HostMetrics" in done.stdout
    finally:
        for pid in (int(w) for line in kill for w in line.split("kill", 1)[1].split()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
