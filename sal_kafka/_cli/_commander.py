"""``sal-kafka commander COMPONENT[:INDEX]``: type commands, see their acks and the events.

ts_salobj's ``CscCommander`` in a terminal: each line is ``COMMAND [FIELD=VALUE ...]``
(values as ``sal-kafka command`` takes them); acknowledgements are printed as they
come, and every event of the component as it arrives (``--no-events`` to keep only
acks; heartbeats are not printed). ``help`` lists the commands and their fields;
``exit``, ``quit`` or end of input ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from typing import Any

from ..components import Remote, RemoteCommand
from ..errors import SalKafkaError
from ..schemas._model import ComponentInfo
from ._component import _check_timeout, _send, parse_fields, split_name
from ._connection import add_connection_arguments, kafka_config

__all__ = ["add_parser"]

_QUIET_EVENTS = frozenset(["heartbeat"])


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commander = subparsers.add_parser(
        "commander",
        help="command a component interactively and see its events",
        description="Read COMMAND [FIELD=VALUE ...] lines; print acknowledgements and events as they arrive.",
    )
    commander.add_argument("component", metavar="COMPONENT[:INDEX]")
    commander.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each ack (default 60)")
    commander.add_argument("--no-events", action="store_true", help="print acknowledgements only")
    commander.add_argument("--xml-dir", help="folder holding SALSubsystems.xml (default: $SAL_KAFKA_XML_DIR, bundled)")
    commander.add_argument("--identity", help="identity of the commander (default: user@host)")
    add_connection_arguments(commander)
    commander.set_defaults(func=run_commander)


def _event_line(topic: Any, data: Any) -> str:
    shown = " ".join(f"{n}={getattr(data, n)!r}" for n in topic.topic.public_fields)
    return f"evt {topic.name}: {shown}" if shown else f"evt {topic.name}"


def _help(remote: Remote) -> str:
    lines = ["commands (COMMAND [FIELD=VALUE ...]); exit to end:"]
    for name in remote.command_names:
        command = getattr(remote, f"cmd_{name}")
        lines.append(f"  {name} {' '.join(f + '=' for f in command.topic.public_fields)}".rstrip())
    return "\n".join(lines)


async def _commander(args: argparse.Namespace) -> None:
    config = kafka_config(args)
    name, index = split_name(args.component)
    component = ComponentInfo.load(name, args.xml_dir, config.topic_subname)
    async with Remote(component, index, config=config, identity=args.identity) as remote:
        if not args.no_events:
            for attr in dir(remote):
                if attr.startswith("evt_") and attr[4:] not in _QUIET_EVENTS:
                    topic = getattr(remote, attr)
                    topic.callback = lambda data, t=topic: print(_event_line(t, data), flush=True)
        print(f"commanding {component.name_index(index)}; help lists the commands", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # end of input
                break
            words = shlex.split(line)
            if not words:
                continue
            if words[0] in ("exit", "quit"):
                break
            if words[0] == "help":
                print(_help(remote), flush=True)
                continue
            if not isinstance(getattr(remote, f"cmd_{words[0]}", None), RemoteCommand):
                print(f"error: no command {words[0]!r}; help lists them", flush=True)
                continue
            try:
                await _send(remote, words[0], parse_fields(words[1:]), args.timeout, as_json=False)
            except SalKafkaError as exc:  # a failed command ends the line, not the commander
                print(f"error: {exc}", flush=True)


def run_commander(args: argparse.Namespace) -> int:
    _check_timeout(args.timeout)
    asyncio.run(_commander(args))
    return 0
