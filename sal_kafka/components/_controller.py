"""Controller (a component's own side) and Remote (a commander's and reader's side)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..kafka import KafkaConfig, Session
from ..schemas._model import ComponentInfo
from ._io import ComponentIO, user_host
from ._topics import (
    AckReader,
    ControllerCommand,
    ControllerEvent,
    ControllerTelemetry,
    RemoteCommand,
    RemoteEvent,
    RemoteTelemetry,
    WriteTopic,
)

__all__ = ["Controller", "Remote", "parse_auth_list"]

log = logging.getLogger("sal_kafka.component")


def parse_auth_list(text: str) -> tuple[str, set[str]]:
    """``"+a, b"`` -> ``("+", {"a", "b"})``: an optional ``+``/``-`` prefix and comma-separated items."""
    prefix = text[:1] if text[:1] in ("+", "-") else ""
    return prefix, {item.strip() for item in text[len(prefix) :].split(",") if item.strip()}


class _Component:
    """What a Controller and a Remote share: a session, and their `ComponentIO`."""

    def __init__(
        self, name: str | ComponentInfo, index: int | None, session: Session | None, config: KafkaConfig | None
    ) -> None:
        self._own_session = session is None
        self.session = session or Session(config)
        self._index = index

    async def __aenter__(self) -> Any:
        await self.start_task
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def start_task(self) -> asyncio.Future[None]:
        """Done once started (topics ready, history read)."""
        return self._start_task

    @property
    def domain(self) -> Session:
        """ts_salobj's name for the process's session (``Remote(self.domain, ...)``)."""
        return self.session

    @property
    def salinfo(self) -> ComponentIO:
        """ts_salobj's name for what a component's topics share."""
        return self.io

    io: ComponentIO
    _start_task: asyncio.Future[None]

    if TYPE_CHECKING:  # the topics (evt_x, tel_x, cmd_x) are set per component

        def __getattr__(self, name: str) -> Any: ...

    async def close(self) -> None:
        """Stop reading, flush what was written, close a private session (idempotent)."""
        await self.io.close()
        if self._own_session:
            await asyncio.to_thread(self.session.close)


class Controller(_Component):
    """The component's own side: writes its events and telemetry, receives its commands.

    Mirrors ts_salobj 8's `Controller`: an attribute per topic (``evt_x`` and
    ``tel_x`` are `WriteTopic`, ``cmd_x`` are `ControllerCommand`), and
    ``do_<command>`` methods of a subclass become the command callbacks.

    Parameters
    ----------
    name : str or ComponentInfo
        The component.
    index : int, optional
        Its SAL index (indexed components).
    do_callbacks : bool
        Use the ``do_<command>`` methods as callbacks; then every command needs one
        (unless ``allow_missing_callbacks``: a missing one fails the command).
    write_only : bool
        No command topics, nothing read.
    authorize : bool, optional
        Refuse commands of identities not authorized (CMD_NOPERM): users
        (``user@host``) other than this process's unless in ``authorized_users``,
        and CSCs in ``non_authorized_cscs``. Default: ``$LSST_DDS_ENABLE_AUTHLIST == "1"``.
    session : Session, optional
        The process's session; default a private one (closed with the controller).
    config : KafkaConfig, optional
        For a private session.

    Notes
    -----
    Must be made in a running event loop; ``await controller.start_task`` (or
    ``async with``) waits until it is ready.
    """

    def __init__(
        self,
        name: str | ComponentInfo,
        index: int | None = None,
        *,
        do_callbacks: bool = False,
        write_only: bool = False,
        allow_missing_callbacks: bool = False,
        authorize: bool | None = None,
        session: Session | None = None,
        config: KafkaConfig | None = None,
    ) -> None:
        if do_callbacks and write_only:
            raise ConfigError("do_callbacks and write_only cannot both be true")
        super().__init__(name, index, session, config)
        component = self.session.component(name)
        self.io = ComponentIO(self.session, component, index, identity=component.name_index(index))
        self.log = logging.getLogger(f"sal_kafka.{self.io.name_index}")
        self.authorize = os.environ.get("LSST_DDS_ENABLE_AUTHLIST") == "1" if authorize is None else authorize
        self.authorized_users: set[str] = set()
        self.non_authorized_cscs: set[str] = set()
        self._user_host = user_host()
        topics = list(component)
        self.command_names = sorted(t.attr_name[4:] for t in topics if t.kind == "command")
        for topic in topics:
            if topic.kind in ("event", "telemetry"):
                kind = ControllerEvent if topic.kind == "event" else ControllerTelemetry
                setattr(self, topic.attr_name, kind(self.io, topic.attr_name))
        if not write_only and self.command_names:
            ack = WriteTopic(self.io, "ack_ackcmd")
            sal_names = sorted(t.sal_name for t in topics)
            for name_ in self.command_names:
                command = ControllerCommand(self.io, f"cmd_{name_}", sal_names.index(f"command_{name_}"), ack)
                command.authorize = self._refusal
                setattr(self, command.attr_name, command)
        if do_callbacks:
            self._check_do_methods(allow_missing_callbacks)
        self._do_callbacks = do_callbacks
        self._allow_missing = allow_missing_callbacks
        self._start_task = asyncio.ensure_future(self._start())

    # ------------------------------------------------------------------ starting

    async def _start(self) -> None:
        await self.io.start()
        if self._do_callbacks:
            for name in self.command_names:
                method = getattr(self, f"do_{name}", None) or self._unsupported
                getattr(self, f"cmd_{name}").callback = method
        await self.start()

    async def start(self) -> None:
        """Called once the topics are ready; subclasses extend it (await super first)."""
        if hasattr(self, "evt_logLevel"):
            await self.evt_logLevel.set_write(level=logging.getLogger().getEffectiveLevel())

    #: generic commands this class handles when the component has them (no error when it has not)
    generic_commands: frozenset[str] = frozenset({"setAuthList", "setLogLevel"})

    def _check_do_methods(self, allow_missing: bool) -> None:
        have = {n[3:] for n in dir(self) if n.startswith("do_") and callable(getattr(self, n))}
        missing = sorted(set(self.command_names) - have)
        extra = sorted(have - set(self.command_names) - self.generic_commands)
        problems = []
        if missing and not allow_missing:
            problems.append("add " + ", ".join(f"do_{n}" for n in missing))
        if extra:
            problems.append("remove " + ", ".join(f"do_{n}" for n in extra) + " (no such command)")
        if problems:
            raise ConfigError(f"{type(self).__name__} of {self.io.name}: " + " and ".join(problems))

    async def _unsupported(self, data: Any) -> None:
        from ._enums import ExpectedError

        raise ExpectedError("This command is not supported")

    # ------------------------------------------------------------------ authorization

    def _refusal(self, identity: str) -> str | None:
        """Why ``identity`` may not command this controller, or None."""
        if not self.authorize or identity == self.io.identity:
            return None
        if "@" in identity:
            if identity != self._user_host and identity not in self.authorized_users:
                return f"user {identity!r} is not {self._user_host} and not in {sorted(self.authorized_users)}"
            return None
        name = identity[:-2] if identity.endswith(":0") else identity
        if name in self.non_authorized_cscs:
            return f"CSC {identity!r} is in {sorted(self.non_authorized_cscs)}"
        return None

    def set_auth_list(self, authorized_users: str = "", non_authorized_cscs: str = "") -> None:
        """Change the lists (``+a,b`` adds, ``-a`` removes, no prefix replaces), as ``setAuthList`` does."""
        self.authorized_users = _apply(self.authorized_users, authorized_users, drop={self._user_host})
        cscs = {c[:-2] if c.endswith(":0") else c for c in parse_auth_list(non_authorized_cscs)[1]}
        self.non_authorized_cscs = _apply(self.non_authorized_cscs, non_authorized_cscs, items=cscs)

    async def do_setAuthList(self, data: Any) -> None:  # noqa: N802 - ts_salobj's name
        """The ``setAuthList`` command (components whose XML has it), then the ``authList`` event."""
        self.set_auth_list(data.authorizedUsers, data.nonAuthorizedCSCs)
        if hasattr(self, "evt_authList"):
            await self.evt_authList.set_write(
                authorizedUsers=", ".join(sorted(self.authorized_users)),
                nonAuthorizedCSCs=", ".join(sorted(self.non_authorized_cscs)),
                force_output=True,
            )

    async def do_setLogLevel(self, data: Any) -> None:  # noqa: N802
        """Set this component's logging level; write ``logLevel``."""
        self.log.setLevel(data.level)
        if hasattr(self, "evt_logLevel"):
            await self.evt_logLevel.set_write(level=self.log.getEffectiveLevel())

    def __repr__(self) -> str:
        return f"Controller({self.io.name_index})"


def _apply(current: set[str], text: str, drop: Iterable[str] = (), items: set[str] | None = None) -> set[str]:
    prefix, parsed = parse_auth_list(text)
    parsed = (parsed if items is None else items) - set(drop)
    if prefix == "+":
        return current | parsed
    if prefix == "-":
        return current - parsed
    return parsed


class Remote(_Component):
    """A commander's and reader's side of a component.

    Mirrors ts_salobj 8's `Remote`: ``evt_x`` and ``tel_x`` are `ReadTopic`
    (events with their latest message as history), ``cmd_x`` are `RemoteCommand`.

    Parameters
    ----------
    name : str or ComponentInfo
        The component.
    index : int, optional
        The instance to talk to; 0 or None: read all instances.
    include, exclude : iterable of str, optional
        Only these (or all but these) events and telemetry topics, by bare name.

    ts_salobj's positional form, ``Remote(domain, name, index)`` (``domain`` a
    `Session`, e.g. a CSC's ``self.domain``), is the same as
    ``Remote(name, index, session=domain)``.
    readonly : bool
        No commands.
    identity : str, optional
        Identity of the commands sent; default ``$SAL_KAFKA_IDENTITY``, then
        ``user@host`` (as ts_salobj's).
    session : Session, optional
        The process's session; default a private one.
    config : KafkaConfig, optional
        For a private session.
    """

    def __init__(
        self,
        name: str | ComponentInfo | Session,
        index: int | str | ComponentInfo | None = None,
        domain_index: int | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        readonly: bool = False,
        identity: str | None = None,
        session: Session | None = None,
        config: KafkaConfig | None = None,
    ) -> None:
        if isinstance(name, Session):  # ts_salobj's Remote(domain, name, index)
            if session is not None:
                raise ConfigError("give the session (domain) once: first, or as session=")
            session, name, index = name, index, domain_index  # type: ignore[assignment]
        elif domain_index is not None:
            raise ConfigError("a third positional argument is the index of Remote(domain, name, index)")
        if not isinstance(name, (str, ComponentInfo)) or not (index is None or isinstance(index, int)):
            raise ConfigError(f"Remote(name, index): got name={name!r}, index={index!r}")
        if include is not None and exclude is not None:
            raise ConfigError("give include or exclude, not both")
        super().__init__(name, index, session, config)
        component = self.session.component(name)
        identity = identity or self.session.config.identity or user_host()
        self.io = ComponentIO(self.session, component, index, identity=identity)
        topics = list(component)
        wanted = set(include) if include is not None else None
        unwanted = set(exclude or ())
        for topic in topics:
            bare = topic.attr_name[4:]
            if topic.kind in ("event", "telemetry") and (wanted is None or bare in wanted) and bare not in unwanted:
                kind = RemoteEvent if topic.kind == "event" else RemoteTelemetry
                setattr(self, topic.attr_name, kind(self.io, topic.attr_name))
        self.command_names = sorted(t.attr_name[4:] for t in topics if t.kind == "command")
        if not readonly and self.command_names:
            #: the acknowledgements of this remote's own commands
            self.ack_ackcmd = acks = AckReader(self.io)
            for name_ in self.command_names:
                setattr(self, f"cmd_{name_}", RemoteCommand(self.io, f"cmd_{name_}", self.command_names, acks))
        self._start_task = asyncio.ensure_future(self.io.start())

    def __repr__(self) -> str:
        return f"Remote({self.io.name_index}, identity={self.io.identity!r})"
