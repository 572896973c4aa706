"""An example CSC built on sal-kafka: ``KTest`` (the bundled test component).

Run it with ``sal-kafka example-csc --index 1`` (on the stack that ``sal-kafka
dev --keep`` prints), then command it from another shell::

    sal-kafka state KTest:1 enabled
    sal-kafka command KTest:1 setScalars int0=5 string0=hello
    sal-kafka command KTest:1 wait duration=2
    sal-kafka state KTest:1 offline
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..components import BaseCsc, ExpectedError, SalRetCode
from ..kafka import KafkaConfig
from ..schemas._model import ComponentInfo, bundled_xml_dir

__all__ = ["ExampleCsc", "run_example"]


def _public(command: Any, data: Any) -> dict[str, Any]:
    """The public fields of a command's data (no private fields, no salIndex)."""
    return {name: getattr(data, name) for name in command.topic.public_fields}


class ExampleCsc(BaseCsc):
    """``KTest``: echoes ``setScalars``/``setArrays`` as events and telemetry,
    goes to FAULT on ``fault``, and ``wait``s (reporting CMD_INPROGRESS)."""

    version = "sal-kafka example 1"

    def __init__(self, index: int = 1, **kwargs: Any) -> None:
        # KTest is sal-kafka's own: from the bundled definitions, whatever $SAL_KAFKA_XML_DIR says
        session, config = kwargs.get("session"), kwargs.get("config")
        subname = (session.config if session is not None else config or KafkaConfig.from_env()).topic_subname
        ktest = ComponentInfo.load("KTest", bundled_xml_dir(), subname)
        super().__init__(ktest, index, allow_missing_callbacks=True, **kwargs)

    async def do_setScalars(self, data: Any) -> None:  # noqa: N802 - the command's name
        self.assert_enabled("setScalars")
        values = _public(self.cmd_setScalars, data)
        await self.evt_scalars.set_write(**values, force_output=True)
        await self.tel_scalars.set_write(**values)

    async def do_setArrays(self, data: Any) -> None:  # noqa: N802
        self.assert_enabled("setArrays")
        values = _public(self.cmd_setArrays, data)
        await self.evt_arrays.set_write(**values, force_output=True)
        await self.tel_arrays.set_write(**values)

    async def do_fault(self, data: Any) -> None:
        self.assert_enabled("fault")
        await self.fault(code=1, report="fault command")

    async def do_wait(self, data: Any) -> None:
        """Wait ``duration`` seconds (acknowledged as in progress), then finish with ``ack``
        (CMD_COMPLETE when 0 or 303; any other code fails the command). ENABLED only, as
        the CSC's other own commands (ts_salobj's standard-transition check expects it)."""
        self.assert_enabled("wait")
        if data.duration > 0:
            await self.cmd_wait.ack_in_progress(data, timeout=data.duration)
            await asyncio.sleep(data.duration)
        if data.ack not in (0, SalRetCode.CMD_COMPLETE):
            raise ExpectedError(f"wait ended with ack={data.ack}, as asked")


async def run_example(index: int = 1, **kwargs: Any) -> None:
    """Run `ExampleCsc` until it is sent to OFFLINE (``exitControl``) or cancelled."""
    csc = ExampleCsc(index, **kwargs)
    try:
        await csc.start_task
        await csc.done_task
    finally:
        await csc.close()
