"""ts_salobj 8's names in one namespace: ``from sal_kafka import salobj`` ports a CSC.

A CSC written for ts_salobj (``from lsst.ts import salobj``) and its tests run
on sal-kafka by changing that one import: ``salobj.BaseCsc``,
``salobj.ConfigurableCsc``, ``salobj.Remote``, ``salobj.State``,
``salobj.BaseCscTestCase`` and the rest are the same objects as sal-kafka's own
(`sal_kafka`, `sal_kafka.components`, `sal_kafka.testing`). The test helpers
are imported on first use (they bring the embedded stack's module).
"""

from __future__ import annotations

from typing import Any

from .components import (
    STATE_PATHS,
    BaseCsc,
    ConfigurableCsc,
    Controller,
    ControllerCommand,
    ControllerEvent,
    ControllerTelemetry,
    DefaultingValidator,
    ExpectedError,
    ReadTopic,
    Remote,
    RemoteCommand,
    RemoteEvent,
    RemoteTelemetry,
    SalInfo,
    SalRetCode,
    State,
    WriteTopic,
    current_tai,
    set_random_topic_subname,
    set_summary_state,
)
from .errors import AckError, AckTimeoutError
from .kafka import Session as Domain

#: ts_salobj's older name of `set_random_topic_subname` (its tests still call it)
set_test_topic_subname = set_random_topic_subname

_TESTING = ("BaseCscTestCase", "assertRaisesAckError", "make_state_transition_dict", "STD_TIMEOUT")

__all__ = [
    "BaseCsc",
    "ConfigurableCsc",
    "DefaultingValidator",
    "set_summary_state",
    "Controller",
    "Remote",
    "Domain",
    "SalInfo",
    "State",
    "SalRetCode",
    "ExpectedError",
    "AckError",
    "AckTimeoutError",
    "ReadTopic",
    "WriteTopic",
    "RemoteEvent",
    "RemoteTelemetry",
    "RemoteCommand",
    "ControllerEvent",
    "ControllerTelemetry",
    "ControllerCommand",
    "STATE_PATHS",
    "current_tai",
    "set_random_topic_subname",
    "set_test_topic_subname",
    *_TESTING,
]


def __getattr__(name: str) -> Any:
    if name in _TESTING:
        from . import testing

        return getattr(testing, name)
    raise AttributeError(f"module 'sal_kafka.salobj' has no attribute {name!r}")
