"""A CSC base class: the summary-state machine and the generic commands of SALGenerics.xml."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from typing import Any

from ..kafka import KafkaConfig, Session
from ..schemas._model import ComponentInfo
from ._controller import Controller
from ._enums import ExpectedError, State

__all__ = ["BaseCsc", "HEARTBEAT_INTERVAL", "TRANSITIONS"]

#: Seconds between heartbeat events.
HEARTBEAT_INTERVAL = 1.0

#: command -> (states it is allowed in, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "start": (frozenset({State.STANDBY}), State.DISABLED),
    "enable": (frozenset({State.DISABLED}), State.ENABLED),
    "disable": (frozenset({State.ENABLED}), State.DISABLED),
    "standby": (frozenset({State.DISABLED, State.FAULT}), State.STANDBY),
    "exitControl": (frozenset({State.STANDBY}), State.OFFLINE),
}


class _LogToEvent(logging.Handler):
    """Python log records of the CSC as ``logMessage`` events."""

    def __init__(self, csc: BaseCsc) -> None:
        super().__init__()
        self.csc = csc

    def emit(self, record: logging.LogRecord) -> None:
        topic = getattr(self.csc, "evt_logMessage", None)
        if topic is None or self.csc.io.closed:
            return
        try:
            topic.set(
                name=record.name,
                level=record.levelno,
                message=record.getMessage(),
                traceback="".join(traceback.format_exception(*record.exc_info)) if record.exc_info else "",
                filePath=record.pathname,
                functionName=record.funcName,
                lineNumber=record.lineno,
                process=record.process or 0,
                timestamp=record.created,
            )
            self.csc.io.writer(topic.topic).write(topic.data)
        except Exception:  # a log line must never break the CSC
            self.handleError(record)


class BaseCsc(Controller):
    """A Commandable SAL Component: summary states and the generic commands.

    ``start``, ``enable``, ``disable``, ``standby`` and ``exitControl`` move the
    ``summaryState`` (STANDBY -> DISABLED -> ENABLED and back; FAULT -> STANDBY;
    STANDBY -> OFFLINE, which closes the CSC); a command not allowed in the
    current state fails (CMD_FAILED) and changes nothing. `fault` goes to
    FAULT with an ``errorCode`` event. A ``heartbeat`` event is written every
    second, ``softwareVersions`` at start, and Python log records of
    ``self.log`` as ``logMessage`` events. Subclasses add ``do_<command>``
    methods for their own commands and may override `handle_summary_state`.

    Parameters
    ----------
    name, index
        The component and its SAL index.
    initial_state : State
        STANDBY by default.
    version : str
        ``cscVersion`` of ``softwareVersions``.
    session, config, authorize
        As for `Controller`.
    """

    version = "?"
    generic_commands = Controller.generic_commands | frozenset(TRANSITIONS)

    def __init__(
        self,
        name: str | ComponentInfo,
        index: int | None = None,
        *,
        initial_state: State = State.STANDBY,
        allow_missing_callbacks: bool = False,
        authorize: bool | None = None,
        session: Session | None = None,
        config: KafkaConfig | None = None,
    ) -> None:
        if initial_state not in (State.STANDBY, State.DISABLED, State.ENABLED, State.OFFLINE):
            raise ExpectedError(f"initial_state must be STANDBY, DISABLED, ENABLED or OFFLINE, not {initial_state!r}")
        self._state = State(initial_state)
        self._heartbeat: asyncio.Task[None] | None = None
        self.done_task: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        super().__init__(
            name,
            index,
            do_callbacks=True,
            allow_missing_callbacks=allow_missing_callbacks,
            authorize=authorize,
            session=session,
            config=config,
        )
        self._log_handler = _LogToEvent(self)
        self.log.addHandler(self._log_handler)

    # ------------------------------------------------------------------ state

    @property
    def summary_state(self) -> State:
        return self._state

    async def start(self) -> None:
        await super().start()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop())
        if hasattr(self, "evt_softwareVersions"):
            await self.evt_softwareVersions.set_write(cscVersion=self.version, xmlVersion="", salVersion="")
        if hasattr(self, "evt_simulationMode"):
            await self.evt_simulationMode.set_write(mode=0)
        await self._report_state()

    async def _heartbeat_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a failed heartbeat is logged by the writer
                await self.evt_heartbeat.write()
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _report_state(self) -> None:
        if hasattr(self, "evt_summaryState"):
            await self.evt_summaryState.set_write(summaryState=int(self._state))
        await self.handle_summary_state()

    async def handle_summary_state(self) -> None:
        """Called after every change of summary state (and at start); override it."""

    async def _change_state(self, command: str) -> None:
        allowed, target = TRANSITIONS[command]
        if self._state not in allowed:
            names = " or ".join(sorted(s.name for s in allowed))
            raise ExpectedError(f"{command} is only allowed in {names}, not in {self._state.name}")
        self._state = target
        await self._report_state()
        if target is State.OFFLINE:
            asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(self.close()))

    async def do_start(self, data: Any) -> None:
        await self._change_state("start")

    async def do_enable(self, data: Any) -> None:
        await self._change_state("enable")

    async def do_disable(self, data: Any) -> None:
        await self._change_state("disable")

    async def do_standby(self, data: Any) -> None:
        await self._change_state("standby")

    async def do_exitControl(self, data: Any) -> None:  # noqa: N802 - ts_salobj's name
        await self._change_state("exitControl")

    async def fault(self, code: int, report: str, traceback: str = "") -> None:
        """Go to FAULT (from any state but OFFLINE), writing ``errorCode`` first."""
        if self._state is State.OFFLINE:
            return
        if hasattr(self, "evt_errorCode"):
            await self.evt_errorCode.set_write(
                errorCode=code, errorReport=report, traceback=traceback, force_output=True
            )
        self._state = State.FAULT
        await self._report_state()

    def assert_enabled(self, what: str = "") -> None:
        """Raise `ExpectedError` unless ENABLED (for commands that need it)."""
        if self._state is not State.ENABLED:
            raise ExpectedError(f"{what or 'this command'} needs the ENABLED state, not {self._state.name}")

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        self.log.removeHandler(self._log_handler)
        await super().close()
        if not self.done_task.done():
            self.done_task.set_result(None)
