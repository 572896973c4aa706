"""A CSC base class: the summary-state machine and the generic commands of SALGenerics.xml."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import logging
import signal
import traceback
from collections.abc import Sequence
from typing import Any

from ..kafka import KafkaConfig, Session
from ..schemas._model import ComponentInfo
from ._controller import Controller
from ._enums import ExpectedError, State

__all__ = ["BaseCsc", "HEARTBEAT_INTERVAL", "TRANSITIONS", "STATE_PATHS", "state_path", "set_summary_state"]

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


#: the state commands that lead from one summary state to another (ts_salobj's
#: ``make_state_transition_dict``, as command names)
STATE_PATHS: dict[tuple[State, State], tuple[str, ...]] = {
    (State.STANDBY, State.DISABLED): ("start",),
    (State.STANDBY, State.ENABLED): ("start", "enable"),
    (State.STANDBY, State.OFFLINE): ("exitControl",),
    (State.DISABLED, State.ENABLED): ("enable",),
    (State.DISABLED, State.STANDBY): ("standby",),
    (State.DISABLED, State.OFFLINE): ("standby", "exitControl"),
    (State.ENABLED, State.DISABLED): ("disable",),
    (State.ENABLED, State.STANDBY): ("disable", "standby"),
    (State.ENABLED, State.OFFLINE): ("disable", "standby", "exitControl"),
    (State.FAULT, State.STANDBY): ("standby",),
    (State.FAULT, State.DISABLED): ("standby", "start"),
    (State.FAULT, State.ENABLED): ("standby", "start", "enable"),
    (State.FAULT, State.OFFLINE): ("standby", "exitControl"),
}


def state_path(current: State, target: State) -> tuple[str, ...]:
    """The state commands from ``current`` to ``target`` (none when they are the same)."""
    return () if current is target else STATE_PATHS.get((current, target), ())


async def set_summary_state(remote: Any, state: State, override: str = "", timeout: float = 30) -> list[State]:
    """Command a CSC through a `Remote` to ``state`` (ts_salobj's ``set_summary_state``).

    Parameters
    ----------
    remote : Remote
        A Remote of the CSC that includes ``summaryState`` and the state commands.
    state : State
        The state wanted: STANDBY, DISABLED, ENABLED or OFFLINE.
    override : str
        ``configurationOverride`` of the ``start`` command, if one is sent.
    timeout : float
        Seconds to wait for the current state and for each command.

    Returns
    -------
    list of State
        The states gone through: the current one first, ``state`` last.

    Raises
    ------
    ValueError
        For FAULT (a CSC goes there by itself), or no way from the current state.
    TimeoutError
        If no ``summaryState`` came within ``timeout``.
    AckError
        If a command failed.
    """
    state = State(state)
    if state is State.FAULT:
        raise ValueError("cannot command a CSC to FAULT")
    current = State((await remote.evt_summaryState.aget(timeout=timeout)).summaryState)
    states = [current]
    if current is state:
        return states
    commands = state_path(current, state)
    if not commands:
        raise ValueError(f"no way from {current.name} to {state.name}")
    for command in commands:
        fields = {"configurationOverride": override} if command == "start" else {}
        await getattr(remote, f"cmd_{command}").set_start(timeout=timeout, **fields)
        states.append(TRANSITIONS[command][1])
    return states


def xml_version() -> str:
    """The installed ts_xml package's version (ts_salobj's ``xmlVersion``), or "?"."""
    from importlib import metadata

    for name in ("ts-xml", "ts_xml", "lsst-ts-xml"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


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
    `heartbeat_interval` seconds, ``softwareVersions`` and ``simulationMode`` at
    start, and Python log records of ``self.log`` as ``logMessage`` events.
    Subclasses add ``do_<command>`` methods for their own commands and may
    override `handle_summary_state` and ts_salobj's life-cycle hooks.

    The life cycle, as ts_salobj 8's: each state command calls
    ``begin_<command>(data)`` (if it raises, the state does not change and the
    command fails), changes the state, calls ``end_<command>(data)`` (if it
    raises, the state goes back and the command fails), then
    `handle_summary_state` and writes ``summaryState``. An ``initial_state``
    other than STANDBY is reached at start by the same commands, hooks
    included. `close_tasks` is called by `close`.

    Parameters
    ----------
    name, index
        The component and its SAL index.
    initial_state : State
        STANDBY by default.
    simulation_mode : int
        One of the class's `valid_simulation_modes` (``(0,)`` by default):
        written as ``simulationMode``; `implement_simulation_mode` is awaited at start.
    session, config, authorize
        As for `Controller`.

    Attributes
    ----------
    version : str
        ``cscVersion`` of ``softwareVersions`` (a class attribute).
    valid_simulation_modes : sequence of int
        The simulation modes the CSC supports (a class attribute).
    heartbeat_interval : float
        Seconds between heartbeats.
    """

    version = "?"
    _start_override = ""
    valid_simulation_modes: tuple[int, ...] = (0,)
    #: whether `make_from_cmd_line` offers ``--state`` (as ts_salobj's class attribute)
    enable_cmdline_state = False
    #: the help of ``--simulate`` (None: ts_salobj's)
    simulation_help: str | None = None
    generic_commands = Controller.generic_commands | frozenset(TRANSITIONS)

    def __init__(
        self,
        name: str | ComponentInfo,
        index: int | None = None,
        *,
        initial_state: State = State.STANDBY,
        simulation_mode: int = 0,
        allow_missing_callbacks: bool = False,
        authorize: bool | None = None,
        session: Session | None = None,
        config: KafkaConfig | None = None,
    ) -> None:
        if initial_state not in (State.STANDBY, State.DISABLED, State.ENABLED, State.OFFLINE):
            raise ExpectedError(f"initial_state must be STANDBY, DISABLED, ENABLED or OFFLINE, not {initial_state!r}")
        if simulation_mode not in self.valid_simulation_modes:
            raise ValueError(
                f"simulation_mode={simulation_mode} not in valid_simulation_modes={self.valid_simulation_modes}"
            )
        self._initial_state = State(initial_state)
        self._state = State.OFFLINE if initial_state is State.OFFLINE else State.STANDBY
        self._simulation_mode = int(simulation_mode)
        self.heartbeat_interval = HEARTBEAT_INTERVAL
        self._heartbeat: asyncio.Task[None] | None = None
        self.done_task: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = False
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

    @property
    def disabled_or_enabled(self) -> bool:
        """True in DISABLED or ENABLED."""
        return self._state in (State.DISABLED, State.ENABLED)

    @property
    def simulation_mode(self) -> int:
        return self._simulation_mode

    async def start(self) -> None:
        await super().start()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop())
        if hasattr(self, "evt_softwareVersions"):
            # as ts_salobj 8: the ts_xml package's version; salVersion left empty
            await self.evt_softwareVersions.set_write(cscVersion=self.version, xmlVersion=xml_version())
        await self.set_simulation_mode(self._simulation_mode)
        await self._report_state()
        for command in state_path(self._state, self._initial_state):
            data = getattr(self, f"cmd_{command}").DataType()
            if command == "start" and hasattr(data, "configurationOverride"):
                data.configurationOverride = self._start_override  # a ConfigurableCsc's override
            try:  # as ts_salobj: a failure is logged, and the CSC stays usable where it is
                await getattr(self, f"do_{command}")(data)
            except Exception:
                self.log.exception("failed in start on the %s transition to %s", command, self._initial_state.name)
                break

    async def set_simulation_mode(self, simulation_mode: int) -> None:
        """`implement_simulation_mode`, then write ``simulationMode``."""
        await self.implement_simulation_mode(simulation_mode)
        self._simulation_mode = simulation_mode
        if hasattr(self, "evt_simulationMode"):
            await self.evt_simulationMode.set_write(mode=simulation_mode, force_output=True)

    async def implement_simulation_mode(self, simulation_mode: int) -> None:
        """Put the CSC in ``simulation_mode`` (override it: by default only 0 is supported)."""
        if simulation_mode not in self.valid_simulation_modes:
            raise ExpectedError(f"simulation_mode {simulation_mode} not in {self.valid_simulation_modes}")

    async def _heartbeat_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a failed heartbeat is logged by the writer
                await self.evt_heartbeat.write()
            await asyncio.sleep(self.heartbeat_interval)

    async def _report_state(self) -> None:
        if hasattr(self, "evt_summaryState"):
            await self.evt_summaryState.set_write(summaryState=int(self._state))
        await self.handle_summary_state()

    async def handle_summary_state(self) -> None:
        """Called after every change of summary state (and at start); override it."""

    async def _change_state(self, command: str, data: Any = None) -> None:
        allowed, target = TRANSITIONS[command]
        before = self._state
        if before not in allowed:
            names = " or ".join(sorted(s.name for s in allowed))
            raise ExpectedError(f"{command} is only allowed in {names}, not in {before.name}")
        try:
            await getattr(self, f"begin_{command}")(data)
        except Exception as exc:
            self.log.error("begin_%s failed; staying in %s: %s", command, before.name, exc)
            raise
        self._state = target
        try:
            await getattr(self, f"end_{command}")(data)
        except Exception as exc:
            self._state = before
            self.log.error("end_%s failed; back to %s: %s", command, before.name, exc)
            raise
        await self._report_state()
        if target is State.OFFLINE:
            asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(self.close()))

    async def do_start(self, data: Any) -> None:
        await self._change_state("start", data)

    async def do_enable(self, data: Any) -> None:
        await self._change_state("enable", data)

    async def do_disable(self, data: Any) -> None:
        await self._change_state("disable", data)

    async def do_standby(self, data: Any) -> None:
        await self._change_state("standby", data)

    async def do_exitControl(self, data: Any) -> None:  # noqa: N802 - ts_salobj's name
        await self._change_state("exitControl", data)

    # ts_salobj's life-cycle hooks: override what the CSC needs (each may raise to refuse)

    async def begin_start(self, data: Any) -> None:
        """Before STANDBY -> DISABLED."""

    async def end_start(self, data: Any) -> None:
        """After STANDBY -> DISABLED."""

    async def begin_enable(self, data: Any) -> None:
        """Before DISABLED -> ENABLED."""

    async def end_enable(self, data: Any) -> None:
        """After DISABLED -> ENABLED."""

    async def begin_disable(self, data: Any) -> None:
        """Before ENABLED -> DISABLED."""

    async def end_disable(self, data: Any) -> None:
        """After ENABLED -> DISABLED."""

    async def begin_standby(self, data: Any) -> None:
        """Before DISABLED or FAULT -> STANDBY."""

    async def end_standby(self, data: Any) -> None:
        """After DISABLED or FAULT -> STANDBY."""

    async def begin_exitControl(self, data: Any) -> None:  # noqa: N802 - ts_salobj's name
        """Before STANDBY -> OFFLINE."""

    async def end_exitControl(self, data: Any) -> None:  # noqa: N802 - ts_salobj's name
        """After STANDBY -> OFFLINE (then the CSC closes)."""

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

    # ------------------------------------------------------------------ as its own program

    @classmethod
    def make_from_cmd_line(
        cls, index: int | type[enum.IntEnum] | bool | None, *, argv: Sequence[str] | None = None, **kwargs: Any
    ) -> BaseCsc:
        """Make the CSC from command-line arguments, as ts_salobj's does.

        Parameters
        ----------
        index : int, IntEnum class, True or None
            ``True``: a required ``index`` argument (any nonzero int); an `enum.IntEnum`
            class: a required ``index`` among its values; an int: that index; None
            or 0: not indexed.
        argv : sequence of str, optional
            The arguments (default ``sys.argv[1:]``).
        **kwargs
            More keyword arguments of the CSC's constructor.

        The arguments: ``index``, ``--loglevel``, ``--state`` (when
        `enable_cmdline_state`), ``--simulate`` (when `valid_simulation_modes` has
        more than one mode: a flag for ``(0, N)``, else a choice), ``--version``,
        and what `add_arguments` adds (`add_kwargs_from_args` turns them into
        keyword arguments).
        """
        parser = argparse.ArgumentParser(f"Run {cls.__name__}")
        if index is True:
            parser.add_argument("index", type=int, help="SAL index")
        elif isinstance(index, type) and issubclass(index, enum.IntEnum):
            names = ", ".join(f"{item.value}: {item.name.lower()}" for item in index)
            parser.add_argument(
                "index", type=int, choices=[int(item) for item in index], help=f"SAL index, one of: {names}"
            )
        parser.add_argument("--loglevel", type=int, help="log level: error=40, warning=30, info=20, debug=10")
        if cls.enable_cmdline_state:
            parser.add_argument(
                "--state",
                choices=["offline", "standby", "disabled", "enabled"],
                dest="initial_state",
                help="initial state",
            )
        modes = tuple(cls.valid_simulation_modes)
        if len(modes) > 1:
            default = 0 if 0 in modes else modes[0]
            if default == 0 and len(modes) == 2:
                other = next(m for m in modes if m != 0)
                parser.add_argument(
                    "--simulate",
                    action="store_const",
                    const=other,
                    default=0,
                    help=cls.simulation_help or "run in simulation mode?",
                )
            else:
                parser.add_argument(
                    "--simulate",
                    type=int,
                    choices=modes,
                    default=default,
                    help=cls.simulation_help or "simulation mode",
                )
        parser.add_argument("--version", action="version", version=cls.version)
        cls.add_arguments(parser)
        args = parser.parse_args(argv)
        if hasattr(args, "index"):
            kwargs["index"] = args.index
        elif index and index is not True:
            kwargs["index"] = int(index)  # type: ignore[arg-type]
        if len(modes) > 1:
            kwargs["simulation_mode"] = args.simulate
        if getattr(args, "initial_state", None) is not None:
            kwargs["initial_state"] = State[args.initial_state.upper()]
        cls.add_kwargs_from_args(args=args, kwargs=kwargs)
        csc = cls(**kwargs)
        if args.loglevel is not None:
            csc.log.setLevel(args.loglevel)
        return csc

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the CSC's own arguments to `make_from_cmd_line`'s parser (override it)."""

    @classmethod
    def add_kwargs_from_args(cls, args: argparse.Namespace, kwargs: dict[str, Any]) -> None:
        """Turn the arguments `add_arguments` added into constructor keywords (override it)."""

    @classmethod
    async def amain(cls, index: int | type[enum.IntEnum] | bool | None, **kwargs: Any) -> None:
        """Make the CSC from the command line and run it until ``exitControl``, SIGTERM or
        SIGINT: ``asyncio.run(MyCsc.amain(index=True))`` is a CSC's whole program."""
        csc = cls.make_from_cmd_line(index, **kwargs)
        loop = asyncio.get_running_loop()

        def done() -> None:
            if not csc.done_task.done():
                csc.done_task.set_result(None)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done)
        try:
            await csc.start_task
            await csc.done_task
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await csc.close()

    async def close_tasks(self) -> None:
        """Stop what the CSC runs (called by `close`; override it, calling this one)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def close(self, exception: BaseException | None = None, cancel_start: bool = True) -> None:
        """Stop the CSC: `close_tasks`, then its topics (idempotent), as ts_salobj's.

        Parameters
        ----------
        exception : BaseException, optional
            Why it stopped: ``done_task`` ends with it (else with None).
        cancel_start : bool
            Cancel ``start_task`` if it is still running.
        """
        if self._closing:
            return
        self._closing = True
        if cancel_start and not self.start_task.done() and asyncio.current_task() is not self.start_task:
            self.start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.start_task
        try:
            await self.close_tasks()
        finally:
            self.log.removeHandler(self._log_handler)
            await super().close()
            if not self.done_task.done():
                if exception is None:
                    self.done_task.set_result(None)
                else:
                    self.done_task.set_exception(exception)
