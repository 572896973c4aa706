"""ts_salobj's CSC test helpers, used as a ported CSC's tests use them, on the embedded stack."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from sal_kafka import BaseCsc, SalRetCode, State
from sal_kafka.apps.example import ExampleCsc
from sal_kafka.testing import (
    BaseCscTestCase,
    Stack,
    assertRaisesAckError,
    make_state_transition_dict,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's environment points at the embedded stack (as a CI job's would)."""
    for key, value in stack.env().items():
        if key.startswith(("SAL_KAFKA_", "LSST_")):
            monkeypatch.setenv(key, value)


class TestExampleCsc(BaseCscTestCase):
    """Written as ts_salobj CSC tests are (``async with self.make_csc(...)``)."""

    def basic_make_csc(self, initial_state: Any, config_dir: Any, simulation_mode: int, **kwargs: Any) -> BaseCsc:
        return ExampleCsc(1, initial_state=State(initial_state), **kwargs)

    async def test_standard_state_transitions(self, stack_env: None) -> None:
        async with self.make_csc(initial_state=State.STANDBY):
            await self.check_standard_state_transitions(enabled_commands=["setScalars", "setArrays", "fault", "wait"])

    async def test_a_sample_and_an_ack_error(self, stack_env: None) -> None:
        async with self.make_csc(initial_state=State.ENABLED):
            await self.assert_next_summary_state(State.ENABLED)
            await self.remote.cmd_setScalars.set_start(int0=5, timeout=10)
            await self.assert_next_sample(self.remote.evt_scalars, int0=5)
            with pytest.raises(AssertionError, match="read 5, expected 6"):
                await self.remote.cmd_setScalars.set_start(int0=5, timeout=10)
                await self.assert_next_sample(self.remote.evt_scalars, int0=6)
            with assertRaisesAckError(ack=SalRetCode.CMD_FAILED, result_contains="ack=-302"):
                await self.remote.cmd_wait.set_start(ack=-302, timeout=10)
            with pytest.raises(AssertionError, match="AckError not raised"), assertRaisesAckError():
                await self.remote.cmd_setScalars.set_start(int0=1, timeout=10)

    async def test_check_bin_script(self, stack_env: None, tmp_path: Path) -> None:
        script = tmp_path / "run_example_csc"
        script.write_text(
            f"#!{sys.executable}\n"
            "import asyncio\n"
            "from sal_kafka.apps.example import ExampleCsc\n"
            "asyncio.run(ExampleCsc.amain(index=True))\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # the package under test
        await self.check_bin_script(name="KTest", index=1, exe_name=str(script))


def test_make_state_transition_dict() -> None:
    paths = make_state_transition_dict()
    assert paths[(State.STANDBY, State.ENABLED)] == [("start", State.DISABLED), ("enable", State.ENABLED)]
    assert paths[(State.ENABLED, State.OFFLINE)] == [
        ("disable", State.DISABLED),
        ("standby", State.STANDBY),
        ("exitControl", State.OFFLINE),
    ]
    assert paths[(State.FAULT, State.FAULT)] == []
