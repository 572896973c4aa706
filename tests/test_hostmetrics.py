"""The host-metrics publisher's crossings: a hold time and a hysteresis (no broker)."""

from __future__ import annotations

from sal_kafka import KafkaConfig, SchemaRegistry, Session
from sal_kafka.apps.hostmetrics import HostMetricsPublisher, host_index
from sal_kafka.testing import MemoryTransport


def _values(cpu: float) -> dict[str, dict[str, float]]:
    return {"cpu": {"totalPercent": cpu}}


def test_a_value_hovering_at_its_threshold_crosses_once_each_way() -> None:
    """Before: cpu.totalPercent hovering about 90 % crossed nine times in 16 s."""
    with Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://h")) as s:
        publisher = HostMetricsPublisher(s, thresholds={"cpu.totalPercent": 90.0}, hold=5.0, hysteresis=5.0)
        hovering = [91, 89, 92, 88, 91, 90.5, 89.5, 93]  # one sample a second, about the threshold
        found = [c for t, v in enumerate(hovering) for c in publisher.crossings(_values(v), float(t))]
        assert found == []  # never 5 s above in a row
        above = [c for t in range(8, 14) for c in publisher.crossings(_values(95), float(t))]
        assert above == [("cpu.totalPercent", 95.0, 90.0, True)]  # once, after 5 s above
        # back to 87: above the threshold minus the hysteresis, so still "above"
        assert [c for t in range(14, 30) for c in publisher.crossings(_values(87), float(t))] == []
        below = [c for t in range(30, 40) for c in publisher.crossings(_values(80), float(t))]
        assert below == [("cpu.totalPercent", 80.0, 90.0, False)]


def test_each_host_has_its_own_index_and_name() -> None:
    with Session(KafkaConfig(timeout=2.0), transport=MemoryTransport(), registry=SchemaRegistry("mock://h")) as s:
        one = HostMetricsPublisher(s, hostname="mtm1m3-sim")
        other = HostMetricsPublisher(s, hostname="auxtel-1")
        assert one.index == host_index("mtm1m3-sim") != other.index == host_index("auxtel-1")
        assert 1 <= one.index < 2**31 and HostMetricsPublisher(s, hostname="x", index=4).index == 4
        sample = one.sample()
        assert all(fields["hostname"] == "mtm1m3-sim" for fields in sample.values())
        assert sample["cpu"]["numCores"] >= 1
        assert one.writers["cpu"].index == one.index
