"""Controllers, Remotes and CSCs in one process, on the in-memory broker (no server, fast).

The same behaviour across processes on the real broker is in test_components_stack.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sal_kafka import (
    AckError,
    AckTimeoutError,
    BaseCsc,
    Codec,
    ComponentInfo,
    ConfigError,
    ConfigurableCsc,
    Controller,
    ExpectedError,
    KafkaConfig,
    Remote,
    SalRetCode,
    SchemaRegistry,
    Session,
    State,
    ValidationError,
)
from sal_kafka.testing import MemoryTransport, sample_record
from tests.conftest import BUNDLED

KTEST = ComponentInfo.load("KTest", BUNDLED)
KMIRROR = ComponentInfo.load("KMirror", BUNDLED)


def new_session() -> Session:
    return Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://components"))


@contextlib.asynccontextmanager
async def started(csc: Any) -> AsyncIterator[tuple[Any, Remote]]:
    """``csc`` started, with a Remote of it on its session; both closed after, and the session."""
    try:
        await csc.start_task
        remote = Remote(csc.io.component, csc.io.index, session=csc.session)
        await remote.start_task
        try:
            yield csc, remote
        finally:
            await remote.close()
    finally:
        await csc.close()
        csc.session.close()


class Csc(BaseCsc):
    async def do_setScalars(self, data: object) -> None:  # noqa: N802
        self.assert_enabled()
        await self.evt_scalars.set_write(int0=data.int0, force_output=True)  # type: ignore[attr-defined]

    async def do_setArrays(self, data: object) -> None:  # noqa: N802
        raise RuntimeError("broken on purpose")

    async def do_fault(self, data: object) -> None:
        await self.fault(code=7, report="asked")

    async def do_wait(self, data: object) -> None:
        duration = data.duration  # type: ignore[attr-defined]
        await self.cmd_wait.ack_in_progress(data, timeout=duration)
        await asyncio.sleep(duration)


@pytest.fixture
async def csc_and_remote() -> AsyncIterator[tuple[Csc, Remote, Session]]:
    session = new_session()
    csc = Csc(KTEST, 1, session=session, allow_missing_callbacks=True)
    await csc.start_task
    remote = Remote(KTEST, 1, session=session)
    await remote.start_task
    yield csc, remote, session
    await remote.close()
    await csc.close()
    session.close()


async def test_every_ack_path(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    csc, remote, _ = csc_and_remote
    ack = await remote.cmd_start.start(timeout=5)
    assert (ack.ack, ack.result) == (SalRetCode.CMD_COMPLETE, "Done")
    await remote.cmd_enable.start(timeout=5)
    assert csc.summary_state is State.ENABLED
    done = await remote.cmd_setScalars.set_start(int0=42, timeout=5)
    assert done.ack == SalRetCode.CMD_COMPLETE
    event = await remote.evt_scalars.next(flush=False, timeout=5)
    assert event.int0 == 42
    with pytest.raises(AckError, match="Failed: broken on purpose") as failed:
        await remote.cmd_setArrays.start(timeout=5)
    assert failed.value.ackcmd.ack == SalRetCode.CMD_FAILED and failed.value.ackcmd.error == 1
    first = await remote.cmd_wait.set_start(duration=0.3, timeout=5, wait_done=False)
    assert first.ack == SalRetCode.CMD_INPROGRESS and first.timeout == pytest.approx(0.3)
    final = await remote.cmd_wait.next_ackcmd(first, timeout=5)
    assert final.ack == SalRetCode.CMD_COMPLETE
    # in progress extends the wait: a 0.1 s timeout with a 0.4 s command still completes
    assert (await remote.cmd_wait.set_start(duration=0.4, timeout=0.1)).ack == SalRetCode.CMD_COMPLETE


async def test_slow_and_timed_out_commands() -> None:
    """A callback slower than the commander's timeout: AckTimeoutError carrying the last
    ack seen; a callback that raises TimeoutError: CMD_TIMEOUT."""
    session = new_session()
    async with Controller(KTEST, 1, session=session) as controller, Remote(KTEST, 1, session=session) as remote:

        async def slow(data: object) -> None:
            await asyncio.sleep(3)

        async def times_out(data: object) -> None:
            raise TimeoutError

        controller.cmd_wait.callback = slow
        controller.cmd_fault.callback = times_out
        with pytest.raises(AckTimeoutError, match="no final acknowledgement within 0.3 s") as slow_error:
            await remote.cmd_wait.start(timeout=0.3)
        assert slow_error.value.ackcmd.ack == SalRetCode.CMD_NOACK
        with pytest.raises(AckError, match="ack=CMD_TIMEOUT") as timed_out:
            await remote.cmd_fault.start(timeout=5)
        assert not isinstance(timed_out.value, AckTimeoutError)
    session.close()


async def test_no_controller_gives_a_timeout_within_the_timeout() -> None:
    session = new_session()
    async with Remote(KTEST, 1, session=session) as remote:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(AckTimeoutError) as timed_out:
            await remote.cmd_start.start(timeout=0.5)
        assert 0.5 <= loop.time() - start < 1.5
        assert timed_out.value.ackcmd.ack == SalRetCode.CMD_NOACK
    session.close()


async def test_the_ack_echoes_the_command(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    csc, remote, _ = csc_and_remote
    ack = await remote.cmd_start.start(timeout=5)
    command = csc.cmd_start.get()
    sal_names = sorted(t.sal_name for t in KTEST)
    assert ack.private_seqNum == command.private_seqNum
    assert (ack.identity, ack.origin, ack.cmdtype) == (
        remote.io.identity,
        os.getpid(),
        sal_names.index("command_start"),
    )
    assert command.private_identity == remote.io.identity and "@" in remote.io.identity
    assert ack.private_identity == "KTest:1" and ack.salIndex == 1


async def test_sequence_numbers_are_drawn_from_a_range_per_command(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    _, remote, _ = csc_and_remote
    names = remote.command_names
    step = (2**31 - 1) // len(names)
    for i, name in enumerate(names):
        command = getattr(remote, f"cmd_{name}")
        assert (command.min_seq_num, command.max_seq_num) == (i * step + 1, (i + 1) * step)
        assert command.min_seq_num <= command._next_seq <= command.max_seq_num


async def test_two_remotes_get_only_their_own_acks(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    csc, first, session = csc_and_remote
    second = Remote(KTEST, 1, session=session, identity="other@host")
    await second.start_task
    seen: dict[str, list[int]] = {"first": [], "second": []}
    first.ack_ackcmd.callback = lambda a: seen["first"].append(a.private_seqNum)
    second.ack_ackcmd.callback = lambda a: seen["second"].append(a.private_seqNum)
    acks = await asyncio.gather(
        *[first.cmd_wait.set_start(duration=0.01, timeout=5) for _ in range(5)],
        *[second.cmd_wait.set_start(duration=0.01, timeout=5) for _ in range(5)],
    )
    assert all(a.ack == SalRetCode.CMD_COMPLETE for a in acks)
    mine = {a.private_seqNum for a in acks[:5]}
    theirs = {a.private_seqNum for a in acks[5:]}
    assert set(seen["first"]) == mine and set(seen["second"]) == theirs
    await second.close()


async def test_state_machine_allowed_and_refused(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    csc, remote, _ = csc_and_remote
    states = []
    remote.evt_summaryState.callback = lambda d: states.append(State(d.summaryState))
    with pytest.raises(AckError, match="enable is only allowed in DISABLED, not in STANDBY"):
        await remote.cmd_enable.start(timeout=5)
    for command in ("start", "enable", "disable", "standby"):
        await getattr(remote, f"cmd_{command}").start(timeout=5)
    assert csc.summary_state is State.STANDBY
    with pytest.raises(AckError, match="disable is only allowed in ENABLED, not in STANDBY"):
        await remote.cmd_disable.start(timeout=5)
    await remote.cmd_start.start(timeout=5)
    await remote.cmd_enable.start(timeout=5)
    await remote.cmd_fault.start(timeout=5)
    assert csc.summary_state is State.FAULT
    error = await remote.evt_errorCode.aget(timeout=5)
    assert (error.errorCode, error.errorReport) == (7, "asked")
    with pytest.raises(AckError, match="enable is only allowed in DISABLED, not in FAULT"):
        await remote.cmd_enable.start(timeout=5)
    await remote.cmd_standby.start(timeout=5)
    await remote.cmd_exitControl.start(timeout=5)
    await asyncio.wait_for(csc.done_task, 5)
    assert states == [
        State.DISABLED,
        State.ENABLED,
        State.DISABLED,
        State.STANDBY,
        State.DISABLED,
        State.ENABLED,
        State.FAULT,
        State.STANDBY,
        State.OFFLINE,
    ]


async def test_set_write_writes_only_on_change() -> None:
    session = new_session()
    async with Controller(KMIRROR, session=session) as controller, Remote(KMIRROR, session=session) as remote:
        event = controller.evt_detailedState
        results = [await event.set_write(detailedState=s) for s in (1, 1, 2, 2)]
        assert [r.was_written for r in results] == [True, False, True, False]
        assert [r.did_change for r in results] == [True, False, True, False]
        assert (await event.set_write(detailedState=2, force_output=True)).was_written
        telemetry = controller.tel_inclinometer
        assert (await telemetry.set_write(inclinometerAngle=1.0)).was_written
        assert (await telemetry.set_write(inclinometerAngle=1.0)).was_written  # telemetry: always
        seen = [await remote.evt_detailedState.next(flush=False, timeout=5) for _ in range(3)]
        assert [d.detailedState for d in seen] == [1, 2, 2]
    session.close()


async def test_a_late_remote_gets_the_latest_event_as_history() -> None:
    session = new_session()
    async with Controller(KMIRROR, session=session) as controller:
        for state in (1, 2, 3):
            await controller.evt_detailedState.set_write(detailedState=state)
        async with Remote(KMIRROR, session=session, include=["detailedState"]) as remote:
            assert remote.evt_detailedState.has_data  # history is in once started
            assert remote.evt_detailedState.get().detailedState == 3
            assert not hasattr(remote, "tel_inclinometer")
    session.close()


async def test_unauthorized_identities_get_noperm() -> None:
    session = new_session()
    csc = Csc(KTEST, 1, session=session, allow_missing_callbacks=True, authorize=True)
    await csc.start_task
    async with Remote(KTEST, 1, session=session, identity="intruder@elsewhere") as intruder:
        with pytest.raises(AckError, match="Not authorized: user 'intruder@elsewhere'") as refused:
            await intruder.cmd_start.start(timeout=5)
        assert refused.value.ackcmd.ack == SalRetCode.CMD_NOPERM
        assert csc.summary_state is State.STANDBY
        csc.set_auth_list(authorized_users="+intruder@elsewhere")
        assert (await intruder.cmd_start.start(timeout=5)).ack == SalRetCode.CMD_COMPLETE
    async with Remote(KTEST, 1, session=session, identity="MTPtg") as csc_commander:
        csc.set_auth_list(non_authorized_cscs="MTPtg:0")
        with pytest.raises(AckError, match="Not authorized: CSC 'MTPtg'"):
            await csc_commander.cmd_standby.start(timeout=5)
    await csc.close()
    session.close()


async def test_log_records_become_log_message_events(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    csc, remote, _ = csc_and_remote
    remote.evt_logMessage.flush()
    csc.log.warning("the %s is %d", "answer", 42)
    message = await remote.evt_logMessage.next(flush=False, timeout=5)
    assert (message.message, message.level) == ("the answer is 42", 30)
    heartbeat = await remote.evt_heartbeat.aget(timeout=5)
    assert heartbeat.private_identity == "KTest:1"


def test_expected_error_is_an_exception() -> None:
    assert issubclass(ExpectedError, Exception)


async def test_a_refused_set_write_changes_nothing() -> None:
    session = new_session()
    async with Controller(KMIRROR, session=session) as controller:
        event = controller.evt_detailedState
        await event.set_write(detailedState=2)
        with pytest.raises(
            ValidationError,
            match=r"Expected int in \[-2147483648, 2147483647\] \(int\), got 4294967296 - at \$.detailedState",
        ):
            await event.set_write(detailedState=2**32)
        with pytest.raises(ValidationError, match="KMirror.evt_detailedState has no field 'nosuch'"):
            await event.set_write(nosuch=1)
        assert event.data.detailedState == 2
    session.close()


async def test_strings_longer_than_idl_size_are_read_intact() -> None:
    """ts_salobj does not enforce IDL_Size: what it writes must be read whole (strict writing refuses)."""
    topic = KTEST["evt_scalars"]
    size = topic.fields["shortString"].max_length
    assert size is not None
    long_text = "x" * (size + 24)
    codec = Codec(topic)
    record = {n: list(f.default) if f.count > 1 else f.default for n, f in topic.fields.items()}
    record.update(sample_record(topic), shortString=long_text)
    assert codec.decode(codec.encode(record, validation="none"))["shortString"] == long_text
    with pytest.raises(ValidationError, match=f"Expected str of at most {size} characters, got {size + 24}"):
        codec.encode(record, validation="strict")


class RecordingProducer:
    """A producer that records each ``produce`` call, and can refuse them (a full queue)."""

    def __init__(self, full: bool = False) -> None:
        self.produced: list[tuple[str, bytes | None]] = []
        self.full = full

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, *, on_delivery=None) -> None:  # type: ignore[no-untyped-def]
        if self.full:
            raise BufferError("full")
        self.produced.append((topic, value))

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return 0

    def __len__(self) -> int:
        return 0


async def test_what_one_turn_writes_is_handed_over_together_in_order() -> None:
    from sal_kafka.kafka.transports import TurnProducer

    inner = RecordingProducer()
    turn = TurnProducer(inner, asyncio.get_running_loop(), threading.get_ident())
    for n in range(3):
        turn.produce("t", bytes([n]))
    assert inner.produced == [] and len(turn) == 3  # held until the turn ends
    await asyncio.sleep(0)
    assert inner.produced == [("t", b"\x00"), ("t", b"\x01"), ("t", b"\x02")]
    # another thread's message goes straight through; flush hands over what is pending
    await asyncio.to_thread(turn.produce, "other", b"x")
    assert inner.produced[-1] == ("other", b"x")
    turn.produce("t", b"\x03")
    turn.flush(1.0)
    assert inner.produced[-1] == ("t", b"\x03") and len(turn) == 0


async def test_a_message_a_full_queue_refuses_is_reported_failed() -> None:
    from sal_kafka.kafka.transports import TurnProducer

    reports: list[object] = []
    turn = TurnProducer(RecordingProducer(full=True), asyncio.get_running_loop(), threading.get_ident())
    turn.produce("t", b"x", on_delivery=lambda error, message: reports.append(error))
    await asyncio.sleep(0)
    (error,) = reports
    assert "full" in error.str()  # type: ignore[attr-defined]


async def test_a_callback_s_event_and_its_ack_go_out_in_one_hand_over(
    csc_and_remote: tuple[Csc, Remote, Session],
) -> None:
    csc, remote, _ = csc_and_remote
    await remote.cmd_start.start(timeout=5)
    await remote.cmd_enable.start(timeout=5)
    (turn,) = csc.io._turn_producers.values()
    handed: list[list[str]] = []
    original = turn.hand_over

    def record() -> None:
        handed.append([topic for topic, *_ in turn._pending])
        original()

    turn.hand_over = record  # type: ignore[method-assign]
    await remote.cmd_setScalars.set_start(int0=5, timeout=5)
    batches = [[topic.rsplit(".", 1)[-1] for topic in batch] for batch in handed]
    assert ["logevent_scalars", "ackcmd"] in batches, batches


class RefusingProducer(RecordingProducer):
    """Refuses messages larger than ``limit`` as librdkafka does (MSG_SIZE_TOO_LARGE at produce)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, *, on_delivery=None) -> None:  # type: ignore[no-untyped-def]
        from confluent_kafka import KafkaError, KafkaException

        if value is not None and len(value) > self.limit:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        super().produce(topic, value, key, on_delivery=on_delivery)


async def test_a_produce_error_is_reported_and_never_drops_the_rest_of_the_turn() -> None:
    """Before: KafkaException(MSG_SIZE_TOO_LARGE) escaped hand_over (asyncio's "Exception in
    callback"), no delivery report, and the rest of the turn's messages were dropped."""
    from sal_kafka.kafka.transports import TurnProducer

    inner = RefusingProducer(limit=10)
    reports: list[object] = []
    turn = TurnProducer(inner, asyncio.get_running_loop(), threading.get_ident())
    turn.produce("t", b"small")
    turn.produce("t", b"x" * 100, on_delivery=lambda error, message: reports.append(error))
    turn.produce("t", b"after")
    await asyncio.sleep(0)
    assert inner.produced == [("t", b"small"), ("t", b"after")]
    from confluent_kafka import KafkaError

    (error,) = reports
    assert error.code() == KafkaError.MSG_SIZE_TOO_LARGE  # type: ignore[attr-defined]


class HugeFailure(BaseCsc):
    async def do_setScalars(self, data: object) -> None:  # noqa: N802
        raise ExpectedError("x" * 1_100_000)


async def test_a_huge_failure_result_is_cut_so_that_the_ack_arrives() -> None:
    """Before: a 1.1 MB ExpectedError text made an ack larger than message.max.bytes: it
    was never delivered and the commander waited its whole timeout."""
    from sal_kafka.components._topics import MAX_RESULT_CHARS

    async with started(
        HugeFailure(KTEST, 1, session=new_session(), allow_missing_callbacks=True, initial_state=State.ENABLED)
    ) as (csc, remote):
        with pytest.raises(AckError) as failed:
            await remote.cmd_setScalars.set_start(int0=1, timeout=5)
        result = failed.value.ackcmd.result
        assert result.startswith("Failed: xxx") and result.endswith("more characters in the controller's log)")
        assert len(result) < MAX_RESULT_CHARS + 100


def test_private_seqnum_by_name_is_honoured_and_stamps_are_refused() -> None:
    """Before: write(private_seqNum=N) on an ackcmd topic silently sent the writer's own counter."""
    from sal_kafka import ConfigError, Writer

    with new_session() as session, Writer(KTEST, "ackcmd", index=1, session=session) as writer:
        assert writer.write(ack=303, private_seqNum=77)["private_seqNum"] == 77
        assert writer.write(ack=303, seq_num=78, private_seqNum=78)["private_seqNum"] == 78
        with pytest.raises(ConfigError, match="private_seqNum=5 and seq_num=6 disagree"):
            writer.write(ack=303, seq_num=6, private_seqNum=5)
        with pytest.raises(ConfigError, match="private_sndStamp cannot be given: the writer stamps"):
            writer.write(ack=303, private_sndStamp=1.0)


async def test_a_misspelled_field_names_the_topic_s_fields(csc_and_remote: tuple[Csc, Remote, Session]) -> None:
    """Before: ``set_start(azimth=3)`` raised a bare TypeError ("Unexpected keyword argument")."""
    from sal_kafka import UnknownFieldError

    _, remote, _ = csc_and_remote
    with pytest.raises(UnknownFieldError, match=r"KTest.cmd_setScalars has no field 'int00'; did you mean 'int0'\?"):
        await remote.cmd_setScalars.set_start(int00=3, timeout=5)
    with pytest.raises(AttributeError):  # as ts_salobj raises
        remote.cmd_setScalars.set(int00=3)


def test_an_index_the_subsystems_file_does_not_name_is_refused() -> None:
    """Before: ``sal-kafka command MTHexapod:7 enable`` (indexes 1 and 2) just timed out."""
    from tests.conftest import SAL_INTERFACES, needs_corpus

    if not SAL_INTERFACES.is_dir():
        pytest.skip("the ts_xml corpus is expected in ../shared/ts_xml")
    del needs_corpus
    hexapod = ComponentInfo.load("MTHexapod", SAL_INTERFACES)
    with (
        new_session() as session,
        pytest.raises(
            ConfigError,
            match=r"MTHexapod has no index 7: its IndexEnumeration names 1 \(CameraHexapod\), 2 \(M2Hexapod\)",
        ),
    ):
        Remote(hexapod, 7, session=session)


async def test_the_example_csc_is_ktest_whatever_the_xml_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: with $SAL_KAFKA_XML_DIR at the ts_xml corpus, ``sal-kafka example-csc``
    said "running", then "unknown component 'KTest'"."""
    from sal_kafka.apps.example import ExampleCsc
    from tests.conftest import SAL_INTERFACES

    monkeypatch.setenv("SAL_KAFKA_XML_DIR", str(SAL_INTERFACES if SAL_INTERFACES.is_dir() else "/nonexistent"))
    session = new_session()
    csc = ExampleCsc(1, session=session)
    try:
        await csc.start_task
        assert csc.io.component.name == "KTest" and csc.summary_state is State.STANDBY
    finally:
        await csc.close()
        session.close()


class LifeCycle(BaseCsc):
    """Records ts_salobj's life-cycle hooks; ``refuse`` names a hook that raises."""

    valid_simulation_modes = (0, 1)

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.calls: list[str] = []
        self.refuse = ""
        self.simulated: list[int] = []
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    async def implement_simulation_mode(self, simulation_mode: int) -> None:
        self.simulated.append(simulation_mode)

    async def handle_summary_state(self) -> None:
        self.calls.append(f"handle:{self.summary_state.name}")

    def __getattribute__(self, name: str) -> object:
        if name.startswith(("begin_", "end_")):

            async def hook(data: object) -> None:
                self.calls.append(name)
                if name == self.refuse:
                    raise ExpectedError(f"{name} refused")

            return hook
        return super().__getattribute__(name)


async def test_the_life_cycle_hooks_run_as_ts_salobj_s() -> None:
    session = new_session()
    csc = LifeCycle(
        KTEST, 1, session=session, initial_state=State.ENABLED, simulation_mode=1, allow_missing_callbacks=True
    )
    await csc.start_task
    remote = Remote(KTEST, 1, session=session)
    await remote.start_task
    try:
        # the initial state is reached by the commands, hooks included
        assert csc.calls == [
            "handle:STANDBY",
            "begin_start",
            "end_start",
            "handle:DISABLED",
            "begin_enable",
            "end_enable",
            "handle:ENABLED",
        ]
        assert csc.simulated == [1] and csc.simulation_mode == 1 and csc.disabled_or_enabled
        assert (await remote.evt_simulationMode.aget(timeout=5)).mode == 1
        versions = await remote.evt_softwareVersions.aget(timeout=5)
        assert versions.cscVersion == "?" and versions.xmlVersion  # the ts_xml package's, or "?"
        csc.calls.clear()
        csc.refuse = "begin_disable"  # refused before: the state does not change
        with pytest.raises(AckError, match="begin_disable refused"):
            await remote.cmd_disable.start(timeout=5)
        assert csc.summary_state is State.ENABLED and csc.calls == ["begin_disable"]
        csc.calls.clear()
        csc.refuse = "end_disable"  # refused after: the state goes back
        with pytest.raises(AckError, match="end_disable refused"):
            await remote.cmd_disable.start(timeout=5)
        assert csc.summary_state is State.ENABLED and csc.calls == ["begin_disable", "end_disable"]
        csc.refuse = ""
        await remote.cmd_disable.start(timeout=5)
        assert csc.summary_state is State.DISABLED and csc.calls[-1] == "handle:DISABLED"
    finally:
        await remote.close()
        await csc.close()
        session.close()


def test_a_simulation_mode_the_csc_does_not_support_is_refused() -> None:
    async def make() -> None:
        LifeCycle(KTEST, 1, session=new_session(), simulation_mode=2, allow_missing_callbacks=True)

    with pytest.raises(ValueError, match=r"simulation_mode=2 not in valid_simulation_modes=\(0, 1\)"):
        asyncio.run(make())


class FromCommandLine(BaseCsc):
    """A ts_salobj-style CSC: ``__init__(index, initial_state, simulation_mode)``."""

    valid_simulation_modes = (0, 1)
    enable_cmdline_state = True
    version = "1.2.3"

    def __init__(self, index: int, initial_state: State = State.STANDBY, simulation_mode: int = 0, **kw: object):
        self.extra = kw.pop("extra", None)
        super().__init__(
            name=KTEST,
            index=index,
            initial_state=initial_state,
            simulation_mode=simulation_mode,
            allow_missing_callbacks=True,
            **kw,  # type: ignore[arg-type]
        )

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--extra", default="none")

    @classmethod
    def add_kwargs_from_args(cls, args: Any, kwargs: dict[str, Any]) -> None:
        kwargs["extra"] = args.extra


async def test_make_from_cmd_line_takes_ts_salobj_s_arguments() -> None:
    session = new_session()
    csc = FromCommandLine.make_from_cmd_line(
        True,
        argv=["3", "--simulate", "--state", "disabled", "--loglevel", "10", "--extra", "x"],
        session=session,
    )
    try:
        await csc.start_task
        assert (csc.io.index, csc.simulation_mode, csc.summary_state, csc.extra) == (3, 1, State.DISABLED, "x")
        assert csc.log.level == 10
    finally:
        await csc.close()
        session.close()
    with pytest.raises(SystemExit):  # argparse refuses, as ts_salobj's
        FromCommandLine.make_from_cmd_line(True, argv=["3", "--state", "nowhere"], session=new_session())


async def test_amain_runs_the_csc_until_exit_control(monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session()
    monkeypatch.setattr("sys.argv", ["my_csc", "2"])
    task = asyncio.ensure_future(FromCommandLine.amain(index=True, session=session))
    remote = Remote(KTEST, 2, session=session)
    await remote.start_task
    try:
        await remote.evt_summaryState.aget(timeout=10)  # the CSC is up (it reads commands from now on)
        await remote.cmd_exitControl.start(timeout=10)
        await asyncio.wait_for(task, 10)  # the program ends
    finally:
        await remote.close()
        session.close()


def test_ts_salobj_s_names_for_topics_and_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    from sal_kafka import components

    async def check() -> None:
        session = new_session()
        async with Controller(KTEST, 1, session=session) as controller, Remote(KTEST, 1, session=session) as remote:
            assert isinstance(controller.evt_scalars, components.ControllerEvent)
            assert isinstance(controller.tel_scalars, components.ControllerTelemetry)
            assert isinstance(remote.evt_scalars, components.RemoteEvent)
            assert isinstance(remote.tel_scalars, components.RemoteTelemetry)
            assert isinstance(remote.evt_scalars, components.ReadTopic)  # as ts_salobj's hierarchy
            assert isinstance(controller.salinfo, components.SalInfo)
        session.close()

    asyncio.run(check())
    import time as _time

    assert abs(components.current_tai() - (_time.time() + 37.0)) < 1.0
    monkeypatch.delenv("SAL_KAFKA_TOPIC_SUBNAME", raising=False)
    monkeypatch.delenv("LSST_TOPIC_SUBNAME", raising=False)
    first, second = components.set_random_topic_subname(), components.set_random_topic_subname()
    assert first != second and first.startswith("test_") and KafkaConfig.from_env().topic_subname == second


CONFIG_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "KTest v1",
    "type": "object",
    "properties": {
        "speed": {"type": "number"},
        "name": {"type": "string"},
        "limits": {"type": "object"},
        "retries": {"type": "integer", "default": 3},
    },
    "required": ["speed", "name"],
    "additionalProperties": False,
}


class Configured(ConfigurableCsc):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.configs: list[Any] = []
        super().__init__(KTEST, 1, config_schema=CONFIG_SCHEMA, allow_missing_callbacks=True, **kwargs)

    @staticmethod
    def get_config_pkg() -> str:
        return "ts_config_test"

    async def configure(self, config: Any) -> None:
        self.configs.append(config)


@pytest.fixture
def config_pkg(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    folder = tmp_path / "KTest" / "v1"
    folder.mkdir(parents=True)
    (folder / "_init.yaml").write_text("speed: 1.0\nname: init\nlimits: {low: 1, high: 9}\n")
    (folder / "_summit.yaml").write_text("name: summit\n")
    (folder / "fast.yaml").write_text("speed: 5.5\nlimits: {high: 20}\n")
    (folder / "bad.yaml").write_text("speed: fast\n")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    monkeypatch.setenv("TS_CONFIG_TEST_DIR", str(tmp_path))
    monkeypatch.setenv("LSST_SITE", "summit")
    return folder


async def test_a_configurable_csc_reads_validates_and_applies_its_configuration(config_pkg: Any) -> None:
    """Before: ``start configurationOverride=foo.yaml`` was accepted and ignored, and
    configurationsAvailable / configurationApplied were never written."""
    async with started(Configured(session=new_session())) as (csc, remote):
        assert csc.config_dir == config_pkg.resolve() and csc.schema_version == "v1"
        available = await remote.evt_configurationsAvailable.aget(timeout=5)
        assert available.overrides == "bad.yaml,fast.yaml,list.yaml" and available.schemaVersion == "v1"
        assert available.url == config_pkg.resolve().as_uri()
        with pytest.raises(AckError, match=r"refused by the schema: 'fast' is not of type 'number' - at \$.speed"):
            await remote.cmd_start.set_start(configurationOverride="bad.yaml", timeout=5)
        with pytest.raises(AckError, match="does not hold a mapping"):
            await remote.cmd_start.set_start(configurationOverride="list.yaml", timeout=5)
        with pytest.raises(AckError, match="nosuch.yaml' does not exist"):
            await remote.cmd_start.set_start(configurationOverride="nosuch.yaml", timeout=5)
        with pytest.raises(AckError, match="must not start with '_'"):
            await remote.cmd_start.set_start(configurationOverride="_init.yaml", timeout=5)
        assert csc.summary_state is State.STANDBY and csc.configs == []  # refused: nothing applied
        await remote.cmd_start.set_start(configurationOverride="fast.yaml", timeout=5)
        assert csc.summary_state is State.DISABLED
        (config,) = csc.configs  # _init, then the site's file, then the override; mappings merged
        assert (config.speed, config.name, config.limits) == (5.5, "summit", {"low": 1, "high": 20})
        assert config.retries == 3  # no file sets it: the schema's default
        applied = await remote.evt_configurationApplied.next(flush=False, timeout=5)
        assert applied.configurations == "_init.yaml,_summit.yaml,fast.yaml" and applied.schemaVersion == "v1"


async def test_a_configurable_csc_s_initial_state_uses_its_override(config_pkg: Any) -> None:
    session = new_session()
    csc = Configured(session=session, initial_state=State.ENABLED, override="fast.yaml")
    try:
        await csc.start_task
        assert csc.summary_state is State.ENABLED and csc.configs[0].speed == 5.5
    finally:
        await csc.close()
        session.close()


def test_a_configurable_csc_says_what_its_configuration_lacks(config_pkg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def make(**kwargs: Any) -> None:
        Configured(session=new_session(), **kwargs)

    monkeypatch.delenv("LSST_SITE")
    with pytest.raises(ConfigError, match=r"\$LSST_SITE is not set"):
        asyncio.run(make())
    monkeypatch.setenv("LSST_SITE", "summit")
    monkeypatch.setenv("TS_CONFIG_TEST_DIR", "/nonexistent")
    with pytest.raises(ConfigError, match=r"/nonexistent/KTest/v1 \(\$TS_CONFIG_TEST_DIR/KTest/v1\) does not exist"):
        asyncio.run(make())


def test_the_salobj_namespace_is_ts_salobj_s_names_for_sal_kafka_s_objects() -> None:
    """``from sal_kafka import salobj`` is the one import a ported CSC changes."""
    from sal_kafka import components, salobj, testing

    assert salobj.BaseCsc is components.BaseCsc and salobj.ConfigurableCsc is components.ConfigurableCsc
    assert salobj.BaseCscTestCase is testing.BaseCscTestCase  # loaded on first use
    assert salobj.set_test_topic_subname is components.set_random_topic_subname
    assert all(getattr(salobj, name) is not None for name in salobj.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nosuch'"):
        salobj.nosuch  # noqa: B018


def test_the_defaulting_validator_fills_in_the_schema_s_defaults() -> None:
    """ts_salobj's ``DefaultingValidator``: ts_dimm validates its controller's
    settings with it and reads defaults no file sets."""
    import jsonschema

    from sal_kafka.salobj import DefaultingValidator

    schema = {
        "type": "object",
        "properties": {
            "host": {"type": "string", "default": "localhost"},
            "port": {"type": "integer", "default": 5000, "minimum": 1},
            "auth": {
                "type": "object",
                "properties": {"user": {"type": "string", "default": "admin"}, "retries": {"default": 2}},
                "default": {},
            },
            "hosts": {"type": "array", "items": {"type": "object", "properties": {"port": {"default": 1}}}},
        },
        "required": ["host"],
        "additionalProperties": False,
    }
    validator = DefaultingValidator(schema)
    given = {"port": 7, "hosts": [{}, {"port": 9}]}
    assert validator.validate(given) == {
        "host": "localhost",  # a required property with a default is filled before it is checked
        "port": 7,
        "auth": {"user": "admin", "retries": 2},  # the default object, then its own defaults
        "hosts": [{"port": 1}, {"port": 9}],
    }
    assert given == {"port": 7, "hosts": [{}, {"port": 9}]}  # a copy: the input is not changed
    assert validator.validate(None)["port"] == 5000
    with pytest.raises(jsonschema.ValidationError, match="0 is less than the minimum of 1"):
        validator.validate({"port": 0})
    with pytest.raises(jsonschema.ValidationError, match="'extra' was unexpected"):
        validator.validate({"extra": 1})
    assert [e.message for e in validator.iter_errors({})] == ["'host' is a required property"]  # as given
    with pytest.raises(jsonschema.SchemaError):
        DefaultingValidator({"type": "nosuch"})


async def test_set_summary_state_walks_a_csc_through_its_states_and_reports_them() -> None:
    from sal_kafka.salobj import set_summary_state

    async with started(Csc(KTEST, 1, session=new_session(), allow_missing_callbacks=True)) as (csc, remote):
        assert await set_summary_state(remote, State.ENABLED, timeout=5) == [
            State.STANDBY,
            State.DISABLED,
            State.ENABLED,
        ]
        assert csc.summary_state is State.ENABLED
        assert await set_summary_state(remote, State.ENABLED, timeout=5) == [State.ENABLED]
        assert await set_summary_state(remote, State.STANDBY, timeout=5) == [
            State.ENABLED,
            State.DISABLED,
            State.STANDBY,
        ]
        with pytest.raises(ValueError, match="cannot command a CSC to FAULT"):
            await set_summary_state(remote, State.FAULT)
        await csc.fault(code=5, report="on purpose")
        while (await remote.evt_summaryState.next(flush=False, timeout=5)).summaryState != State.FAULT:
            pass
        assert await set_summary_state(remote, State.DISABLED, timeout=5) == [
            State.FAULT,
            State.STANDBY,
            State.DISABLED,
        ]


async def test_a_configurable_csc_s_start_override_goes_through_set_summary_state(config_pkg: Any) -> None:
    from sal_kafka.salobj import set_summary_state

    async with started(Configured(session=new_session())) as (csc, remote):
        await set_summary_state(remote, State.DISABLED, override="fast.yaml", timeout=5)
        assert csc.configs[-1].speed == 5.5


async def test_remote_takes_ts_salobj_s_positional_domain() -> None:
    """ts_dimm makes ``salobj.Remote(self.domain, "ESS", 301, readonly=True, include=[...])``."""
    session = new_session()
    csc = Csc(KTEST, 1, session=session, allow_missing_callbacks=True)
    await csc.start_task
    try:
        assert csc.domain is session
        async with Remote(csc.domain, KTEST, 1, readonly=True, include=["scalars"]) as remote:
            assert remote.session is session and remote.salinfo.index == 1
            assert hasattr(remote, "evt_scalars") and not hasattr(remote, "evt_arrays")
            assert not hasattr(remote, "cmd_start")  # readonly
        with pytest.raises(ConfigError, match="give the session \\(domain\\) once"):
            Remote(session, KTEST, 1, session=session)
        with pytest.raises(ConfigError, match="third positional argument"):
            Remote(KTEST, 1, 2)
        with pytest.raises(ConfigError, match="Remote\\(name, index\\)"):
            Remote(session, 5)  # type: ignore[arg-type]
    finally:
        await csc.close()
        session.close()


async def test_close_ends_done_task_with_the_exception_and_cancels_the_start() -> None:
    """ts_salobj's ``close(exception=None, cancel_start=True)``: ts_dimm overrides close
    and calls ``super().close(exception=exception, cancel_start=cancel_start)``."""
    session = new_session()
    csc = Csc(KTEST, 1, session=session, allow_missing_callbacks=True)
    await csc.start_task
    reason = RuntimeError("the mount fell off")
    await csc.close(exception=reason)
    with pytest.raises(RuntimeError, match="the mount fell off"):
        await csc.done_task
    await csc.close()  # idempotent
    late = Csc(KTEST, 2, session=session, allow_missing_callbacks=True)
    await late.close()  # before its start ran: the start is cancelled
    assert late.start_task.cancelled() or late.start_task.done()
    await late.done_task
    session.close()
