"""ts_salobj's CSC test helpers with no broker: the CSC on an in-memory session."""

from __future__ import annotations

from typing import Any

from sal_kafka import BaseCsc, KafkaConfig, SchemaRegistry, Session, State
from sal_kafka.apps.example import ExampleCsc
from sal_kafka.testing import BaseCscTestCase, MemoryTransport


class TestInMemory(BaseCscTestCase):
    """Before: the helpers' Remote had a session of its own, from the environment,
    so a CSC on an in-memory session could not be tested (nothing came)."""

    def basic_make_csc(self, initial_state: Any, config_dir: Any, simulation_mode: int, **kwargs: Any) -> BaseCsc:
        session = Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://m"))
        return ExampleCsc(1, initial_state=State(initial_state), session=session, **kwargs)

    async def test_standard_state_transitions(self) -> None:
        async with self.make_csc(initial_state=State.STANDBY, timeout=10):
            assert self.remote.session is self.csc.session
            await self.check_standard_state_transitions(enabled_commands=["setScalars", "setArrays", "fault", "wait"])
        self.csc.session.close()  # given to the CSC: not its to close

    async def test_a_sample(self) -> None:
        async with self.make_csc(initial_state=State.ENABLED, timeout=10):
            await self.assert_next_summary_state(State.ENABLED)
            await self.remote.cmd_setScalars.set_start(int0=5, timeout=5)
            await self.assert_next_sample(self.remote.evt_scalars, int0=5)
        self.csc.session.close()
