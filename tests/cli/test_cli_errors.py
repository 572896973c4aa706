"""Ordinary mistakes end in one line naming the problem and exit status 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sal_kafka._cli import main
from tests.conftest import BUNDLED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["write", "KMirror", "nosuch"], "KMirror has no topic 'nosuch'; it has 21 topics (1 ackcmd, 7 command"),
        (
            ["write", "KMirror", "tel_forceActuatorDat"],
            "KMirror has no topic 'tel_forceActuatorDat'; did you mean tel_forceActuatorData or",
        ),
        (["read", "KMirror", "inclinometr"], "did you mean tel_inclinometer? it has 21 topics"),
        (["read", "KMirror", "inclinometer", "--index", "3"], "KMirror is not indexed: index must be 0, got 3"),
        (["write", "KTest", "scalars"], "topic name 'scalars' is ambiguous: it names evt_scalars and tel_scalars"),
        (["write", "KMirror", "forceActuatorData", "--index", "3"], "KMirror is not indexed: index must be 0, got 3"),
        (["write", "NoSuch", "x"], "unknown component 'NoSuch'; known: KTest, KMirror, HostMetrics"),
        (
            ["write", "KMirror", "inclinometer", "--registry-url", "127.0.0.1:8081"],
            "invalid schema registry URL '127.0.0.1:8081'",
        ),
        (
            ["registry", "register", "--url", "127.0.0.1:8081", "KMirror"],
            "invalid schema registry URL '127.0.0.1:8081'",
        ),
        (["read", "KMirror", "nosuch"], "KMirror has no topic 'nosuch'"),
    ],
)
def test_mistakes_give_one_line_and_status_1(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [*argv, "--xml-dir", str(BUNDLED)]
            if argv[0] != "registry"
            else [*argv[:2], "--xml-dir", str(BUNDLED), *argv[2:]]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.server
def test_registry_serve_on_a_bad_database_or_a_busy_port(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "x.db"
    not_sqlite.write_text("not a database")
    for db, message in [
        (tmp_path / "missing" / "x.db", "unable to open database file"),
        (not_sqlite, "file is not a database"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "sal_kafka", "registry", "serve", "--port", "0", "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.server
def test_registry_serve_on_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sal_kafka",
                "registry",
                "serve",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "x.db"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (
        done.returncode == 1 and f"cannot serve on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
    )


@pytest.mark.parametrize("command", [["grafana"], ["codegen", "KTest"], ["schemas", "KTest"]])
def test_an_unwritable_output_folder_is_one_line(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command[0], "--out", "/proc/no/such/folder", *command[1:]]) == 1
    err = capsys.readouterr().err
    assert "cannot write /proc/no/such/folder" in err and len(err.strip().splitlines()) == 1
