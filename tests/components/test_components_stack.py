"""A Controller (the example CSC) and Remotes in separate processes, on Apache Kafka and our registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sal_kafka import AckError, AckTimeoutError, KafkaConfig, Remote, SalRetCode, State
from sal_kafka.testing import Stack

pytestmark = pytest.mark.broker


@pytest.fixture
def csc(stack: Stack, kafka_config: KafkaConfig) -> Iterator[KafkaConfig]:
    """The example CSC (KTest:1) in its own process, authorizing only this user."""
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", "example-csc", "--index", "1", "--authorize"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield kafka_config
    proc.terminate()
    assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""


async def _remote(config: KafkaConfig, identity: str | None = None) -> Remote:
    remote = Remote("KTest", 1, config=config, identity=identity)
    await remote.start_task
    # the CSC reports STANDBY once it is up (history, or live if it starts after us)
    await asyncio.wait_for(_until(remote, State.STANDBY), 30)
    return remote


async def _until(remote: Remote, state: State) -> None:
    while (data := await remote.evt_summaryState.aget()) is None or data.summaryState != state:
        await remote.evt_summaryState.next(flush=False)


async def test_commands_across_processes(csc: KafkaConfig) -> None:
    remote = await _remote(csc)
    try:
        assert (await remote.cmd_start.start(timeout=10)).ack == SalRetCode.CMD_COMPLETE
        with pytest.raises(AckError, match="disable is only allowed in ENABLED, not in DISABLED"):
            await remote.cmd_disable.start(timeout=10)
        await remote.cmd_enable.start(timeout=10)
        ack = await remote.cmd_setScalars.set_start(int0=7, string0="across", timeout=10)
        assert (ack.ack, ack.result, ack.identity, ack.origin) == (
            SalRetCode.CMD_COMPLETE,
            "Done",
            remote.io.identity,
            os.getpid(),
        )
        event = await remote.evt_scalars.next(flush=False, timeout=10)
        assert (event.int0, event.string0, event.private_identity) == (7, "across", "KTest:1")
        first = await remote.cmd_wait.set_start(duration=0.5, timeout=10, wait_done=False)
        assert first.ack == SalRetCode.CMD_INPROGRESS
        assert (await remote.cmd_wait.next_ackcmd(first, timeout=10)).ack == SalRetCode.CMD_COMPLETE
        with pytest.raises(AckError, match="Failed: wait ended with ack=-302") as failed:
            await remote.cmd_wait.set_start(ack=-302, timeout=10)
        assert failed.value.ackcmd.ack == SalRetCode.CMD_FAILED
        # a late Remote gets the CSC's latest summaryState as history
        late = Remote("KTest", 1, config=csc, include=["summaryState"], readonly=True)
        await late.start_task
        assert late.evt_summaryState.get().summaryState == State.ENABLED
        await late.close()
    finally:
        await remote.close()


async def test_two_remotes_and_an_unauthorized_one(csc: KafkaConfig) -> None:
    first, second = await _remote(csc), await _remote(csc)
    intruder = Remote("KTest", 1, config=csc, identity="intruder@elsewhere")
    await intruder.start_task
    try:
        with pytest.raises(AckError, match="Not authorized: user 'intruder@elsewhere'") as refused:
            await intruder.cmd_start.start(timeout=10)
        assert refused.value.ackcmd.ack == SalRetCode.CMD_NOPERM
        await first.cmd_start.start(timeout=10)
        await first.cmd_enable.start(timeout=10)
        seen: dict[str, set[int]] = {"first": set(), "second": set()}
        first.ack_ackcmd.callback = lambda a: seen["first"].add(a.private_seqNum)
        second.ack_ackcmd.callback = lambda a: seen["second"].add(a.private_seqNum)
        acks = await asyncio.gather(
            *[r.cmd_setScalars.set_start(int0=i, timeout=10) for i in range(5) for r in (first, second)]
        )
        assert all(a.ack == SalRetCode.CMD_COMPLETE for a in acks)
        assert seen["first"] == {a.private_seqNum for a in acks[0::2]}
        assert seen["second"] == {a.private_seqNum for a in acks[1::2]}
        assert seen["first"].isdisjoint(seen["second"])
    finally:
        for remote in (first, second, intruder):
            await remote.close()


async def test_no_controller_gives_a_timeout_within_the_timeout(stack: Stack, kafka_config: KafkaConfig) -> None:
    async with Remote("KTest", 9, config=kafka_config) as remote:
        start = time.monotonic()
        with pytest.raises(AckTimeoutError) as timed_out:
            await remote.cmd_start.start(timeout=1.0)
        assert 1.0 <= time.monotonic() - start < 2.5
        assert timed_out.value.ackcmd.ack == SalRetCode.CMD_NOACK


def test_the_command_and_state_commands(csc: KafkaConfig, stack: Stack) -> None:
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=csc.topic_subname)
    cli = [sys.executable, "-m", "sal_kafka"]
    walk = subprocess.run(
        [*cli, "state", "KTest:1", "enabled", "--timeout", "30"], env=env, capture_output=True, text=True, timeout=60
    )
    assert walk.returncode == 0, walk.stderr
    assert walk.stdout.splitlines()[-1] == "KTest:1 is ENABLED" and "start ..." in walk.stdout
    done = subprocess.run(
        [*cli, "command", "KTest:1", "wait", "duration=0.2"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.splitlines() == [
        "CMD_INPROGRESS: error=0 result='', timeout 0.2 s",
        "CMD_COMPLETE: error=0 result='Done'",
    ]
    failed = subprocess.run(
        [*cli, "command", "KTest:1", "wait", "ack=-302"], env=env, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 1 and "CMD_FAILED" in failed.stdout and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    # the result is printed once (before: in the ack line and again in the error line)
    assert "wait ended with ack=-302" in failed.stdout and "wait ended with ack" not in failed.stderr
    assert failed.stderr.strip().endswith("KTest:1.cmd_wait ended with CMD_FAILED")
    nobody = subprocess.run(
        [*cli, "command", "KTest:5", "start", "--timeout", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert nobody.returncode == 1 and "no final acknowledgement within 1.0 s" in nobody.stderr
    assert "no heartbeat of KTest:5 seen: is it running?" in nobody.stderr  # not the same as a slow command


def test_command_line_defects_of_a_new_csc_developer(csc: KafkaConfig, stack: Stack) -> None:
    """Each reproduced in the trial of issue 18: a traceback for a misspelled field, a
    CMD_INPROGRESS wait cut by --timeout, --timeout -1 accepted, booleans only as true/false."""
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=csc.topic_subname)
    cli = [sys.executable, "-m", "sal_kafka"]

    def run(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *words], env=env, capture_output=True, text=True, timeout=60)

    assert run("state", "KTest:1", "enabled", "--timeout", "30").returncode == 0
    typo = run("command", "KTest:1", "setScalars", "int00=3")
    assert typo.returncode == 1 and "Traceback" not in typo.stderr
    assert "KTest.cmd_setScalars has no field 'int00'; did you mean 'int0'?" in typo.stderr
    waited = run("command", "KTest:1", "wait", "duration=3", "--timeout", "1.5")
    assert waited.returncode == 0, waited.stderr  # in progress for 3 s: the wait grows by 3 s
    assert waited.stdout.splitlines()[-1] == "CMD_COMPLETE: error=0 result='Done'"
    negative = run("command", "KTest:1", "start", "--timeout", "-1")
    assert negative.returncode == 1 and "--timeout must be above 0 seconds, got -1" in negative.stderr
    flags = run("command", "KTest:1", "setScalars", "boolean0=1", "string0=12")
    assert flags.returncode == 0, flags.stderr
    bad_flag = run("command", "KTest:1", "setScalars", "boolean0=maybe")
    assert bad_flag.returncode == 1 and "boolean0='maybe': expected true/false, 1/0, yes/no" in bad_flag.stderr


async def test_topics_deleted_under_running_components_are_created_again(csc: KafkaConfig) -> None:
    """Before: after the broker lost the command topics, a command timed out with no hint
    (the commander's whole timeout), nothing recreated them, and the CSC logged "topic does
    not exist" for ever. Now the command that cannot be delivered fails at once, saying so;
    the component's topics are created again; the next command completes."""
    from confluent_kafka.admin import AdminClient

    remote = await _remote(csc)
    try:
        assert (await remote.cmd_start.start(timeout=10)).ack == SalRetCode.CMD_COMPLETE
        admin = AdminClient({"bootstrap.servers": csc.bootstrap_servers})
        names = [t.kafka_name for t in remote.io.component if t.kind == "command" or t.sal_name == "ackcmd"]
        for future in admin.delete_topics(names).values():
            future.result(10)
        await asyncio.sleep(3.0)
        start = time.monotonic()
        with pytest.raises(AckError, match="not delivered to the broker"):
            await remote.cmd_enable.start(timeout=60)
        assert time.monotonic() - start < 30  # not the commander's 60 s
        deadline = time.monotonic() + 30
        while set(names) - set(admin.list_topics(timeout=10).topics) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert not set(names) - set(admin.list_topics(timeout=10).topics)  # all made again
        await asyncio.sleep(3.0)
        assert (await remote.cmd_enable.start(timeout=20)).ack == SalRetCode.CMD_COMPLETE
    finally:
        await remote.close()


def test_the_interactive_commander(csc: KafkaConfig, stack: Stack) -> None:
    """``sal-kafka commander KTest:1``: commands typed, acks and events printed (ts_salobj's CscCommander)."""
    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=csc.topic_subname)
    up = subprocess.run(  # the CSC is up: its summaryState is seen (the fixture only starts it)
        [sys.executable, "-m", "sal_kafka", "state", "KTest:1", "standby", "--timeout", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    typed = "help\nstart\nenable\nsetScalars int0=7 string0=typed\nnosuch\nsetScalars int00=1\nexit\n"
    done = subprocess.run(
        [sys.executable, "-m", "sal_kafka", "commander", "KTest:1"],
        input=typed,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "commanding KTest:1" in out and "  setScalars boolean0= byte0=" in out  # help: commands and fields
    assert out.count("CMD_COMPLETE: error=0 result='Done'") == 3
    assert "evt summaryState: summaryState=2" in out  # ENABLED, as it arrived
    assert "evt scalars:" in out and "int0=7" in out and "string0='typed'" in out
    assert "error: no command 'nosuch'; help lists them" in out
    assert "error: KTest.cmd_setScalars has no field 'int00'" in out  # and the commander went on


def _metrics_url(proc: subprocess.Popen[str]) -> str:
    """The URL a command prints when given ``--metrics-port``."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("metrics on "):
            return line.split()[-1]
        assert line or proc.poll() is None, "the command ended without serving metrics"
    raise AssertionError("no 'metrics on' line within 60 s")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["example-csc", "--index", "3"],
            'sal_kafka_writer_messages_total{component="KTest",index="3",topic="evt_heartbeat"}',
        ),
        (
            ["hostmetrics", "--interval", "0.2", "--seconds", "30"],
            'sal_kafka_writer_messages_total{component="HostMetrics"',
        ),
    ],
    ids=["example-csc", "hostmetrics"],
)
def test_example_csc_and_hostmetrics_serve_their_metrics(
    stack: Stack, kafka_config: KafkaConfig, command: list[str], expected: str
) -> None:
    """Before: neither took --metrics-port, and the generated scrape job
    sal-kafka-components (:9105) had no command that served it."""
    import httpx

    env = stack.env(SAL_KAFKA_TOPIC_SUBNAME=kafka_config.topic_subname)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sal_kafka", *command, "--metrics-port", "127.0.0.1:0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _metrics_url(proc)
        deadline = time.monotonic() + 30
        while expected not in (text := httpx.get(url, timeout=10).text):
            assert time.monotonic() < deadline, text[-2000:]
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(30)
