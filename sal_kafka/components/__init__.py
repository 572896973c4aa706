"""Components on sal-kafka: Controller, Remote, the CSC base class, with ts_salobj 8's names."""

from .._public import set_public_module
from ._controller import Controller, Remote
from ._csc import TRANSITIONS, BaseCsc
from ._enums import ExpectedError, SalRetCode, State
from ._topics import ControllerCommand, ReadTopic, RemoteCommand, SetWriteResult, WriteTopic

__all__ = [
    "Controller",
    "Remote",
    "BaseCsc",
    "TRANSITIONS",
    "SalRetCode",
    "State",
    "ExpectedError",
    "ReadTopic",
    "WriteTopic",
    "RemoteCommand",
    "ControllerCommand",
    "SetWriteResult",
]

set_public_module(__name__, globals(), [n for n in __all__ if n != "TRANSITIONS"])
