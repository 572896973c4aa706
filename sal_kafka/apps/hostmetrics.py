"""A host-metrics publisher: CPU, memory, disk and network of this host as the ``HostMetrics`` component.

It reads the host with ``psutil`` every ``interval`` seconds and writes the
``tel_cpu``, ``tel_memory``, ``tel_disk`` and ``tel_network`` telemetry, and
the ``thresholdCrossed`` event when a metric crosses its threshold. The
PostgreSQL sink is its subscriber (``sal-kafka sink postgres HostMetrics``).

Hosts are told apart by the data: HostMetrics is indexed, one ``salIndex`` per
host (given, or derived from the host name), and every topic carries the
``hostname``. A crossing is reported once the value has stayed above the
threshold for ``hold`` seconds, and back once it has stayed below the
threshold minus ``hysteresis`` as long: a value hovering around 90 % crossed
nine times in 16 s before.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any, Final

try:
    import psutil
except ImportError as exc:  # an extra: say which
    from .._util import missing

    raise missing("psutil", "hostmetrics", "the host-metrics publisher (sal-kafka hostmetrics)") from exc

from ..kafka import Session, Writer
from ..schemas._model import ComponentInfo

__all__ = ["HostMetricsPublisher", "DEFAULT_THRESHOLDS", "host_index"]

#: metric -> threshold of the thresholdCrossed event
DEFAULT_THRESHOLDS: Final = {"cpu.totalPercent": 90.0, "memory.percent": 90.0, "disk.rootUsedPercent": 90.0}
_CORES: Final = 64  # the Count of tel_cpu.percent


def host_index(hostname: str) -> int:
    """The default salIndex of a host: a stable number from its name (1 to 2**31 - 1)."""
    return zlib.crc32(hostname.encode()) % (2**31 - 1) + 1


class HostMetricsPublisher:
    """Publish this host's metrics.

    Parameters
    ----------
    session : Session
        Where to write.
    component : str or ComponentInfo
        The component (``HostMetrics`` of the bundled definitions by default).
    thresholds : mapping, optional
        ``{"topic.field": threshold}`` of the ``thresholdCrossed`` event.
    hysteresis : float
        How far below the threshold a value must go to be back below (default 5).
    hold : float
        Seconds a value must stay beyond for a crossing to be reported (default 5).
    hostname : str, optional
        This host's name (default: ``socket.gethostname()``).
    index : int, optional
        Its salIndex (default `host_index` of the name).
    """

    def __init__(
        self,
        session: Session,
        component: str | ComponentInfo = "HostMetrics",
        thresholds: Mapping[str, float] | None = None,
        *,
        hysteresis: float = 5.0,
        hold: float = 5.0,
        hostname: str | None = None,
        index: int | None = None,
    ) -> None:
        self.component = session.component(component)
        self.hostname = hostname or socket.gethostname()
        self.index = index if index is not None else host_index(self.hostname)
        self.writers = {
            name: Writer(self.component, f"tel_{name}", index=self.index, session=session)
            for name in ("cpu", "memory", "disk", "network")
        }
        self.crossed = Writer(self.component, "evt_thresholdCrossed", index=self.index, session=session)
        self.thresholds = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
        self.hysteresis = hysteresis
        self.hold = hold
        self._above: dict[str, bool] = {}
        self._beyond_since: dict[str, float] = {}  # metric: since when it is on the other side
        self._stop = threading.Event()
        psutil.cpu_percent(percpu=True)  # the first call starts the measuring interval

    def sample(self) -> dict[str, dict[str, Any]]:
        """One reading of the host: ``{topic: fields}``."""
        per_core = psutil.cpu_percent(percpu=True)[:_CORES]
        load1, load5, load15 = psutil.getloadavg()
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        disk = psutil.disk_io_counters()
        net = psutil.net_io_counters()
        return {
            "cpu": {
                "hostname": self.hostname,
                "numCores": len(per_core),
                "percent": per_core + [0.0] * (_CORES - len(per_core)),
                "totalPercent": sum(per_core) / max(1, len(per_core)),
                "load1": load1,
                "load5": load5,
                "load15": load15,
            },
            "memory": {
                "hostname": self.hostname,
                "total": memory.total,
                "available": memory.available,
                "used": memory.used,
                "percent": memory.percent,
                "swapTotal": swap.total,
                "swapUsed": swap.used,
                "swapPercent": swap.percent,
            },
            "disk": {
                "hostname": self.hostname,
                "readBytes": disk.read_bytes if disk else 0,
                "writeBytes": disk.write_bytes if disk else 0,
                "readCount": disk.read_count if disk else 0,
                "writeCount": disk.write_count if disk else 0,
                "rootUsedPercent": psutil.disk_usage("/").percent,
            },
            "network": {
                "hostname": self.hostname,
                "bytesSent": net.bytes_sent,
                "bytesReceived": net.bytes_recv,
                "packetsSent": net.packets_sent,
                "packetsReceived": net.packets_recv,
                "errorsIn": net.errin,
                "errorsOut": net.errout,
            },
        }

    def publish_once(self) -> dict[str, dict[str, Any]]:
        """Read the host, write the four telemetry topics and any threshold crossing."""
        values = self.sample()
        for name, fields in values.items():
            self.writers[name].write(fields)
        for metric, value, threshold, above in self.crossings(values, time.monotonic()):
            self.crossed.write(hostname=self.hostname, metric=metric, value=value, threshold=threshold, above=above)
        return values

    def crossings(self, values: Mapping[str, Mapping[str, Any]], now: float) -> list[tuple[str, float, float, bool]]:
        """The crossings ``(metric, value, threshold, above)`` that ``values`` (a `sample`,
        at monotonic time ``now``) completes: a value beyond for `hold` seconds, where
        going back below means below the threshold minus `hysteresis`."""
        found = []
        for metric, threshold in self.thresholds.items():
            topic, _, field = metric.partition(".")
            value = float(values[topic][field])
            above = self._above.get(metric, False)
            beyond = value <= threshold - self.hysteresis if above else value > threshold
            if not beyond:
                self._beyond_since.pop(metric, None)
                continue
            since = self._beyond_since.setdefault(metric, now)
            if now - since >= self.hold:
                self._above[metric] = not above
                self._beyond_since.pop(metric, None)
                found.append((metric, value, threshold, not above))
        return found

    def run(self, interval: float = 1.0, duration: float | None = None) -> int:
        """Publish every ``interval`` seconds until `stop` (or ``duration``); return the samples."""
        count = 0
        waited = 0.0
        while not self._stop.is_set() and (duration is None or waited < duration):
            self.publish_once()
            count += 1
            self._stop.wait(interval)
            waited += interval
        for writer in (*self.writers.values(), self.crossed):
            writer.flush()
        return count

    def stop(self) -> None:
        self._stop.set()
