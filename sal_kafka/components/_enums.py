"""ts_salobj's codes: command acknowledgements and summary states."""

from __future__ import annotations

import enum

__all__ = ["SalRetCode", "State", "ExpectedError", "DONE_ACKS", "FAILED_ACKS"]


class SalRetCode(enum.IntEnum):
    """Acknowledgement codes of commands, as in ts_salobj (``ack`` of ackcmd)."""

    CMD_ACK = 300
    CMD_INPROGRESS = 301
    CMD_STALLED = 302
    CMD_COMPLETE = 303
    CMD_NOPERM = -300
    CMD_NOACK = -301
    CMD_FAILED = -302
    CMD_ABORTED = -303
    CMD_TIMEOUT = -304


class State(enum.IntEnum):
    """Summary states of a CSC (``summaryState`` event)."""

    DISABLED = 1
    ENABLED = 2
    FAULT = 3
    OFFLINE = 4
    STANDBY = 5


#: Acknowledgements after which a command is over.
DONE_ACKS = frozenset(
    {
        SalRetCode.CMD_ABORTED,
        SalRetCode.CMD_COMPLETE,
        SalRetCode.CMD_FAILED,
        SalRetCode.CMD_NOACK,
        SalRetCode.CMD_NOPERM,
        SalRetCode.CMD_STALLED,
        SalRetCode.CMD_TIMEOUT,
    }
)
#: Acknowledgements that mean the command failed.
FAILED_ACKS = DONE_ACKS - {SalRetCode.CMD_COMPLETE}


class ExpectedError(Exception):
    """Raise from a command callback to fail the command (CMD_FAILED) without a traceback in the log."""
