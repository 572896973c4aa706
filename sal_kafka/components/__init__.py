"""Components on sal-kafka: Controller, Remote, the CSC base class, with ts_salobj 8's names."""

import os
import uuid

from .._public import set_public_module
from ..codec._time import tai_now as current_tai
from ._configurable import ConfigurableCsc, DefaultingValidator
from ._controller import Controller, Remote
from ._csc import STATE_PATHS, TRANSITIONS, BaseCsc, set_summary_state
from ._enums import ExpectedError, SalRetCode, State
from ._io import ComponentIO as SalInfo
from ._topics import (
    ControllerCommand,
    ControllerEvent,
    ControllerTelemetry,
    ReadTopic,
    RemoteCommand,
    RemoteEvent,
    RemoteTelemetry,
    SetWriteResult,
    WriteTopic,
)


def set_random_topic_subname() -> str:
    """Give this process (and what it starts) a topic sub-namespace of its own, as
    ts_salobj's does for test isolation: ``test_<random>`` in ``$SAL_KAFKA_TOPIC_SUBNAME``
    and ``$LSST_TOPIC_SUBNAME`` (for ts_salobj processes beside it); returned."""
    subname = f"test_{uuid.uuid4().hex[:12]}"
    os.environ["SAL_KAFKA_TOPIC_SUBNAME"] = subname
    os.environ["LSST_TOPIC_SUBNAME"] = subname
    return subname


__all__ = [
    "Controller",
    "Remote",
    "BaseCsc",
    "ConfigurableCsc",
    "DefaultingValidator",
    "set_summary_state",
    "TRANSITIONS",
    "SalRetCode",
    "State",
    "ExpectedError",
    "ReadTopic",
    "WriteTopic",
    "RemoteEvent",
    "RemoteTelemetry",
    "RemoteCommand",
    "ControllerEvent",
    "ControllerTelemetry",
    "ControllerCommand",
    "SetWriteResult",
    "SalInfo",
    "STATE_PATHS",
    "current_tai",
    "set_random_topic_subname",
]

set_public_module(__name__, globals(), [n for n in __all__ if n not in ("TRANSITIONS", "STATE_PATHS", "current_tai")])
