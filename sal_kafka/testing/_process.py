"""One child process a test or ``sal-kafka dev`` runs, and how it ends: the shared part
of `KafkaConnect` and `PrometheusServer`."""

from __future__ import annotations

import subprocess
import tempfile
from typing import Any

from .._util import keep_temporary

__all__ = ["end_process", "Supervised"]


def end_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds; reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Supervised:
    """A server in a process of its own (`process`), with a folder that may be temporary
    (`_tmp`): `stop` ends it and removes that folder; `detach` leaves both."""

    #: seconds between SIGTERM and SIGKILL at `stop`
    stop_timeout: float = 20.0
    process: subprocess.Popen[bytes] | None
    _tmp: tempfile.TemporaryDirectory[str] | None

    def detach(self) -> None:
        """Leave the process running and its folder in place (`stop` then does nothing)."""
        self.process = None
        keep_temporary(self._tmp)  # dropping it would delete the folder
        self._tmp = None

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, self.stop_timeout)
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
