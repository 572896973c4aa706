"""The optional parts are extras: the core works without them, and each says which extra it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: what each extra brings, and a module of sal-kafka that needs it
EXTRAS = [
    ("sink", "psycopg", "sal_kafka.sinks"),
    ("registry-server", "aiohttp", "sal_kafka.registry.server"),
    ("metrics", "prometheus_client", "sal_kafka.observe"),
    ("hostmetrics", "psutil", "sal_kafka.apps.hostmetrics"),
]
BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # as if not installed\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    names = [library for _, library, _ in EXTRAS]
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(names=names) + code], capture_output=True, text=True, timeout=120
    )


def test_the_core_and_the_command_line_work_without_any_extra() -> None:
    done = _run(
        "import sal_kafka, sal_kafka.kafka, sal_kafka.components, sal_kafka.codec, sal_kafka.testing\n"
        "from sal_kafka._cli import main\n"
        "topic = sal_kafka.ComponentInfo.load('KMirror')['evt_detailedState']\n"
        "codec = sal_kafka.Codec(topic)\n"
        "record = sal_kafka.msgspec_class(topic)(detailedState=2)\n"
        "assert codec.decode(codec.encode(record))['detailedState'] == 2\n"
        "raise SystemExit(main(['schemas', '--help']))\n"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("extra", "library", "module"), EXTRAS)
def test_a_missing_extra_is_named(extra: str, library: str, module: str) -> None:
    done = _run(f"import {module}\n")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(f"needs {library}, which is not installed: pip install 'sal-kafka[{extra}]'")
    )


def test_a_command_whose_extra_is_missing_says_so_in_one_line() -> None:
    done = _run(
        "from sal_kafka._cli import main\nraise SystemExit(main(['sink', 'postgres', '--url', 'postgresql://x', 'KTest']))\n"
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "sal-kafka sink: error: the PostgreSQL sink (sal_kafka.sinks) needs psycopg, which is not installed: "
        "pip install 'sal-kafka[sink]'"
    )
