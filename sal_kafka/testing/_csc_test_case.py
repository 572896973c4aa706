"""ts_salobj's CSC test helpers, under its names: a ported CSC's tests run unchanged.

`BaseCscTestCase` is a mix-in (for ``unittest.IsolatedAsyncioTestCase`` as
ts_salobj's, or a plain pytest class): a test defines `basic_make_csc`, then
``async with self.make_csc(initial_state=...)`` gives ``self.csc`` and a
``self.remote`` of it (on the CSC's session, as ts_salobj's on its domain), in
a topic sub-namespace of their own. The brokers and registry are those of the
CSC's session: by default the environment's (``SAL_KAFKA_*`` / ``LSST_*``),
e.g. the embedded stack's ``Stack.env()``; a CSC made with
``session=Session(..., transport=MemoryTransport())`` is tested in memory.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from ..codec._time import tai_now
from ..components import BaseCsc, Remote, SalRetCode, State, set_random_topic_subname
from ..components._csc import STATE_PATHS, TRANSITIONS
from ..errors import AckError

__all__ = ["BaseCscTestCase", "make_state_transition_dict", "assertRaisesAckError", "STD_TIMEOUT"]

#: seconds a test waits for what should come quickly (ts_salobj's ``STD_TIMEOUT``)
STD_TIMEOUT = 15.0


def make_state_transition_dict() -> dict[tuple[State, State], list[tuple[str, State]]]:
    """``{(from, to): [(command, state after it), ...]}`` for every pair of the standard
    states (ts_salobj's): the commands that lead from one to the other."""
    states = (State.STANDBY, State.DISABLED, State.ENABLED, State.FAULT, State.OFFLINE)
    result: dict[tuple[State, State], list[tuple[str, State]]] = {}
    for start in states:
        for end in states:
            if start is end:
                result[(start, end)] = []
            elif (start, end) in STATE_PATHS:
                result[(start, end)] = [(c, TRANSITIONS[c][1]) for c in STATE_PATHS[(start, end)]]
    return result


@contextlib.contextmanager
def assertRaisesAckError(  # noqa: N802 - ts_salobj's name
    ack: int | None = None, error: int | None = None, result_contains: str | None = None
) -> Iterator[None]:
    """Check that the block raises `AckError` with this ``ack`` code, ``error`` and
    a ``result`` containing ``result_contains`` (each when given)."""
    try:
        yield
    except AckError as exc:
        got = exc.ackcmd
        if ack is not None and got.ack != ack:
            raise AssertionError(f"ack={got.ack}, expected {ack}: {exc}") from None
        if error is not None and got.error != error:
            raise AssertionError(f"error={got.error}, expected {error}: {exc}") from None
        if result_contains is not None and result_contains not in got.result:
            raise AssertionError(f"result {got.result!r} does not contain {result_contains!r}") from None
    else:
        raise AssertionError("AckError not raised")


class BaseCscTestCase(abc.ABC):
    """ts_salobj's ``BaseCscTestCase``: make a CSC and a Remote of it, check states and samples."""

    csc: BaseCsc
    remote: Remote
    csc_start_time: float = 0.0

    @abc.abstractmethod
    def basic_make_csc(
        self, initial_state: State | int, config_dir: str | None, simulation_mode: int, **kwargs: Any
    ) -> BaseCsc:
        """Make the CSC under test (a test defines it)."""

    @contextlib.asynccontextmanager
    async def make_csc(
        self,
        initial_state: State | int = State.STANDBY,
        config_dir: str | None = None,
        simulation_mode: int = 0,
        log_level: int | None = None,
        timeout: float = STD_TIMEOUT,
        **kwargs: Any,
    ) -> AsyncIterator[None]:
        """``self.csc`` and ``self.remote`` (of its name and index), started, in a topic
        sub-namespace of their own; both closed after."""
        set_random_topic_subname()
        self.csc_start_time = tai_now()
        self.csc = self.basic_make_csc(
            initial_state=initial_state, config_dir=config_dir, simulation_mode=simulation_mode, **kwargs
        )
        if log_level is not None:
            self.csc.log.setLevel(log_level)
        # on the CSC's session, as ts_salobj's on the CSC's domain: a CSC made on an
        # in-memory session is tested with no broker at all
        self.remote = Remote(self.csc.io.component, self.csc.io.index, session=self.csc.session)
        try:
            await asyncio.wait_for(asyncio.gather(self.csc.start_task, self.remote.start_task), timeout)
            await asyncio.wait_for(self._current_state_seen(), timeout)
            yield
        finally:
            await self.remote.close()
            await self.csc.close()

    async def _current_state_seen(self) -> None:
        """Until the Remote has the CSC's current summaryState; then that is its next one
        (the states passed through on the way to ``initial_state`` are dropped)."""
        topic = self.remote.evt_summaryState
        while (latest := topic.get()) is None or latest.summaryState != int(self.csc.summary_state):
            await asyncio.sleep(0.02)
        topic.keep_latest()

    async def assert_next_summary_state(
        self, state: State | int, flush: bool = False, timeout: float = STD_TIMEOUT, remote: Remote | None = None
    ) -> Any:
        """The next ``summaryState`` of ``remote`` (default ``self.remote``) is ``state``."""
        return await self.assert_next_sample(
            (remote or self.remote).evt_summaryState, flush=flush, timeout=timeout, summaryState=State(state)
        )

    async def assert_next_sample(
        self, topic: Any, flush: bool = False, timeout: float = STD_TIMEOUT, **fields: Any
    ) -> Any:
        """The next sample of ``topic`` written since the CSC was made, whose ``fields``
        have these values (an IntEnum compares with the int read); returned."""
        data = await topic.next(flush=flush, timeout=timeout)
        while data.private_sndStamp <= self.csc_start_time:  # from before this CSC: not its own
            data = await topic.next(flush=flush, timeout=timeout)
        for name, expected in fields.items():
            if not hasattr(data, name):
                raise AssertionError(f"{topic.topic.full_name} has no field {name!r}")
            value = getattr(data, name)
            if isinstance(expected, enum.IntEnum):
                with contextlib.suppress(ValueError):
                    value = type(expected)(value)
            assert value == expected, f"{topic.topic.full_name}.{name}: read {value!r}, expected {expected!r}"
        return data

    async def check_bad_commands(
        self, bad_commands: Sequence[str] | None = None, good_commands: Sequence[str] | None = None
    ) -> None:
        """Each of ``bad_commands`` (default all) but ``good_commands`` fails (CMD_FAILED)."""
        good = set(good_commands or ())
        for command in bad_commands if bad_commands is not None else self.remote.command_names:
            if command in good:
                continue
            try:
                with assertRaisesAckError(ack=SalRetCode.CMD_FAILED):
                    await getattr(self.remote, f"cmd_{command}").start(timeout=STD_TIMEOUT)
            except AssertionError as exc:
                raise AssertionError(f"{command} in {self.csc.summary_state.name}: {exc}") from None

    async def check_standard_state_transitions(
        self,
        enabled_commands: Sequence[str],
        skip_commands: Sequence[str] | None = None,
        override: str = "",
        timeout: float = STD_TIMEOUT,
    ) -> None:
        """Walk STANDBY -> DISABLED -> ENABLED -> DISABLED -> STANDBY -> OFFLINE, checking
        in each state that the commands not allowed there fail (as ts_salobj's)."""
        skip = tuple(skip_commands or ())
        assert self.csc.summary_state is State.STANDBY, self.csc.summary_state
        await self.assert_next_summary_state(State.STANDBY)
        await self.check_bad_commands(good_commands=("start", "exitControl", "setLogLevel", *skip))
        start = self.remote.cmd_start
        if "configurationOverride" in start.topic.fields:
            await start.set_start(configurationOverride=override, timeout=timeout)
        else:
            await start.start(timeout=timeout)
        await self._is(State.DISABLED)
        await self.check_bad_commands(good_commands=("enable", "standby", "setLogLevel", *skip))
        await self.remote.cmd_enable.start(timeout=timeout)
        await self._is(State.ENABLED)
        await self.check_bad_commands(good_commands=("disable", "setLogLevel", *enabled_commands, *skip))
        await self.remote.cmd_disable.start(timeout=timeout)
        await self._is(State.DISABLED)
        await self.remote.cmd_standby.start(timeout=timeout)
        await self._is(State.STANDBY)
        await self.remote.cmd_exitControl.start(timeout=timeout)
        await self._is(State.OFFLINE)

    async def _is(self, state: State) -> None:
        assert self.csc.summary_state is state, f"{self.csc.summary_state!r}, expected {state!r}"
        await self.assert_next_summary_state(state)

    async def check_bin_script(
        self,
        name: str,
        index: int,
        exe_name: str,
        default_initial_state: State = State.STANDBY,
        initial_state: State | None = None,
        override: str | None = None,
        cmdline_args: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> None:
        """Run the CSC's program ``exe_name`` (``index`` as its argument when nonzero,
        ``--state``/``--override`` when given), check the state it reports, send it to
        OFFLINE and check that it exits with status 0."""
        set_random_topic_subname()
        args = [exe_name, *([str(index)] if index else []), *cmdline_args]
        if initial_state is not None:
            args += ["--state", State(initial_state).name.lower()]
        if override is not None:
            args += ["--override", override]
        expected = State(initial_state if initial_state is not None else default_initial_state)
        process = await asyncio.create_subprocess_exec(*args, env=dict(os.environ))
        try:
            async with Remote(name, index, include=["summaryState", "heartbeat"]) as remote:
                deadline = time.monotonic() + timeout
                state = None
                while state != expected:
                    left = max(0.1, deadline - time.monotonic())
                    data = await remote.evt_summaryState.next(flush=False, timeout=left)
                    state = State(data.summaryState)
                for command, _ in make_state_transition_dict()[(expected, State.OFFLINE)]:
                    await getattr(remote, f"cmd_{command}").start(timeout=STD_TIMEOUT)
            status = await asyncio.wait_for(process.wait(), timeout)
            assert status == 0, f"{exe_name} exited with status {status}"
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(subprocess.SubprocessError):
                    await process.wait()
