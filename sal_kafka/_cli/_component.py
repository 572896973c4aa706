"""``sal-kafka command``, ``sal-kafka state`` and ``sal-kafka example-csc``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any

import msgspec

from ..components import Remote, RemoteCommand, SalRetCode, State
from ..components._csc import STATE_PATHS, state_path
from ..errors import AckError, AckTimeoutError, ConfigError, SalKafkaError
from ..schemas._model import ComponentInfo
from ..wire import TAI_MINUS_UTC
from ._connection import add_connection_arguments, add_metrics_argument, kafka_config, metrics_session


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "command",
        help="send a command to a component and print its acknowledgements",
        description="Send COMMAND to COMPONENT[:INDEX]; print each acknowledgement as it arrives; "
        "exit 1 if the command fails or no final acknowledgement comes within --timeout.",
    )
    _common(command)
    command.add_argument("command_name", metavar="COMMAND", help="command name (e.g. start, setScalars)")
    command.add_argument(
        "fields",
        nargs="*",
        metavar="FIELD=VALUE",
        help="values: JSON (numbers, [arrays]), plain text for strings, true/false (or 1/0, yes/no) for booleans",
    )
    command.set_defaults(func=run_command)

    state = subparsers.add_parser(
        "state",
        help="walk a CSC's summary state machine to a state",
        description="Read COMPONENT[:INDEX]'s summaryState and send the state commands that lead to STATE.",
    )
    _common(state)
    state.add_argument("state", choices=["enabled", "disabled", "standby", "offline"], metavar="STATE")
    state.set_defaults(func=run_state)

    example = subparsers.add_parser(
        "example-csc",
        help="run the example CSC (KTest) until exitControl or Ctrl-C",
        description="Run sal-kafka's example CSC, the bundled KTest component, on the configured broker.",
    )
    example.add_argument("--index", type=int, default=1)
    example.add_argument(
        "--authorize",
        action="store_true",
        help="refuse commands from other users than this one (CMD_NOPERM); default $LSST_DDS_ENABLE_AUTHLIST=1",
    )
    add_connection_arguments(example)
    add_metrics_argument(example)
    example.set_defaults(func=run_example_csc)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", metavar="COMPONENT[:INDEX]")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each acknowledgement (default 60; CMD_INPROGRESS adds its own timeout)",
    )
    parser.add_argument(
        "--xml-dir", help="folder holding SALSubsystems.xml (default: $SAL_KAFKA_XML_DIR, then the bundled one)"
    )
    add_connection_arguments(parser)
    parser.add_argument("--identity", help="identity of the commander (default: user@host)")
    parser.add_argument("--json", action="store_true", help="print each acknowledgement as a JSON line")


def split_name(text: str) -> tuple[str, int]:
    """``"KTest:1"`` -> ``("KTest", 1)``; ``"KMirror"`` -> ``("KMirror", 0)``."""
    name, _, index = text.partition(":")
    try:
        return name, int(index) if index else 0
    except ValueError:
        raise ConfigError(f"expected COMPONENT or COMPONENT:INDEX, got {text!r}") from None


def parse_fields(items: list[str]) -> dict[str, Any]:
    """``["int0=5", "string0=hi", "floats=[1,2]"]`` -> values (JSON where it parses, else text)."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"expected FIELD=VALUE, got {item!r}")
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    return values


def _show(ackcmd: Any, as_json: bool) -> None:
    fields = msgspec.structs.asdict(ackcmd)
    code = fields["ack"]
    name = SalRetCode(code).name if code in SalRetCode._value2member_map_ else str(code)
    if as_json:
        print(json.dumps({"ack": name, **{k: fields[k] for k in ("error", "result", "timeout", "private_seqNum")}}))
    else:
        extra = f", timeout {fields['timeout']:g} s" if code == SalRetCode.CMD_INPROGRESS else ""
        print(f"{name}: error={fields['error']} result={fields['result']!r}{extra}", flush=True)


async def _send(remote: Remote, name: str, values: dict[str, Any], timeout: float, as_json: bool) -> None:
    command = getattr(remote, f"cmd_{name}", None)
    if not isinstance(command, RemoteCommand):
        raise ConfigError(f"{remote.io.name} has no command {name!r}; known: {', '.join(remote.command_names)}")
    command.set(**_typed(command, values))
    try:
        ackcmd = await command.start(timeout=timeout, wait_done=False)
        _show(ackcmd, as_json)
        while ackcmd.ack not in (SalRetCode.CMD_COMPLETE,):
            # as the API waits: CMD_INPROGRESS extends the wait by its own timeout
            wait = timeout + (ackcmd.timeout if ackcmd.ack == SalRetCode.CMD_INPROGRESS else 0.0)
            ackcmd = await command.next_ackcmd(ackcmd, timeout=wait, wait_done=False)
            _show(ackcmd, as_json)
    except AckTimeoutError as exc:
        raise SalKafkaError(_why_silent(remote, exc)) from None
    except AckError as exc:
        _show(exc.ackcmd, as_json)  # printed once: the error line only says how it ended
        code = exc.ackcmd.ack
        ended = SalRetCode(code).name if code in SalRetCode._value2member_map_ else str(code)
        raise SalKafkaError(f"{remote.io.name_index}.cmd_{name} ended with {ended}") from None


def _why_silent(remote: Remote, exc: AckTimeoutError) -> str:
    """A timeout, and whether the CSC looks alive: its last heartbeat's age."""
    text = exc.message
    heartbeat = remote.evt_heartbeat.get() if hasattr(remote, "evt_heartbeat") else None
    if heartbeat is None:
        return f"{text}; no heartbeat of {remote.io.name_index} seen: is it running?"
    age = time.time() + TAI_MINUS_UTC - heartbeat.private_sndStamp
    if age > 5.0:
        return f"{text}; its last heartbeat is {age:.0f} s old: is it running?"
    return f"{text} (it is running: heartbeat {age:.1f} s ago)"


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _typed(command: RemoteCommand, values: dict[str, Any]) -> dict[str, Any]:
    """CLI values as the command's fields take them: a boolean from true/false, 1/0, yes/no
    or on/off; a number given as text for a string field stays text."""
    typed = dict(values)
    for name, value in values.items():
        field = command.topic.fields.get(name)
        if field is None:
            continue  # `RemoteCommand.set` names it, with the closest fields
        if field.type_info.python is bool and field.count == 1 and not isinstance(value, bool):
            text = str(value).lower()
            if text not in _TRUE + _FALSE:
                raise ConfigError(f"{command.topic.full_name}: {name}={value!r}: expected true/false, 1/0, yes/no")
            typed[name] = text in _TRUE
        elif field.type_info.python is str and not isinstance(value, str):
            typed[name] = json.dumps(value)
    return typed


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ConfigError(f"--timeout must be above 0 seconds, got {timeout:g}")


def run_command(args: argparse.Namespace) -> int:
    name, index = split_name(args.component)
    values = parse_fields(args.fields)
    _check_timeout(args.timeout)
    config = kafka_config(args)

    async def main() -> None:
        component = ComponentInfo.load(name, args.xml_dir, config.topic_subname)
        if component.indexed and not index:
            named = component.index_values
            known = f" ({', '.join(f'{v} {k}' for k, v in named.items())})" if named else ""
            raise ConfigError(f"{name} is indexed: give {name}:INDEX{known}; a command to index 0 reaches no CSC")
        async with Remote(component, index, config=config, identity=args.identity, include=["heartbeat"]) as remote:
            await _send(remote, args.command_name, values, args.timeout, args.json)

    asyncio.run(main())
    return 0


def run_state(args: argparse.Namespace) -> int:
    name, index = split_name(args.component)
    target = State[args.state.upper()]
    _check_timeout(args.timeout)
    config = kafka_config(args)

    async def main() -> None:
        component = ComponentInfo.load(name, args.xml_dir, config.topic_subname)
        async with Remote(
            component, index, config=config, identity=args.identity, include=["summaryState", "heartbeat"]
        ) as r:
            try:
                current = State((await r.evt_summaryState.aget(timeout=args.timeout)).summaryState)
            except TimeoutError:
                raise ConfigError(
                    f"{args.component}: no summaryState within {args.timeout} s: is it running?"
                ) from None
            print(f"{args.component} is {current.name}", flush=True)
            for command in state_path(current, target):
                print(f"{command} ...", flush=True)
                await _send(r, command, {}, args.timeout, args.json)
            if current is not target and (current, target) not in STATE_PATHS:
                raise ConfigError(f"no way from {current.name} to {target.name}")
            print(f"{args.component} is {target.name}")

    asyncio.run(main())
    return 0


def run_example_csc(args: argparse.Namespace) -> int:
    from ..apps.example import run_example

    config = kafka_config(args)

    session = metrics_session(args, config) if args.metrics_port else None

    async def main() -> None:
        task = asyncio.ensure_future(
            run_example(args.index, config=config, session=session, authorize=args.authorize or None)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        print(
            f"example CSC KTest:{args.index} running; stop it with exitControl or Ctrl-C", file=sys.stderr, flush=True
        )
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        if session is not None:
            session.close()
    return 0
