"""Constant-memory latency histograms, filled by writers, readers and components."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["LatencyHistogram"]


class LatencyHistogram:
    """Latencies in fixed-width bins: constant memory however long a writer runs.

    Percentiles are the upper edge of their bin (``resolution`` seconds wide,
    50 µs by default); `max` and `mean` are exact.
    """

    def __init__(self, resolution: float = 50e-6, limit: float = 1.0) -> None:
        self.resolution = resolution
        self.bins = [0] * (int(limit / resolution) + 1)  # the last bin: limit and above
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        self.bins[min(int(seconds / self.resolution), len(self.bins) - 1)] += 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def counts_at_most(self, bounds: Sequence[float]) -> list[int]:
        """How many values are at most each of the increasing ``bounds`` (to the
        bin's width: Prometheus histogram buckets), in one pass over the bins."""
        counts, seen, i = [], 0, 0
        last = len(self.bins) - 1
        for bound in bounds:
            if bound >= self.max:
                counts.append(self.count)
                continue
            stop = min(int(bound / self.resolution), last)
            while i < stop:
                seen += self.bins[i]
                i += 1
            counts.append(seen)
        return counts

    def percentile(self, p: float) -> float | None:
        """The latency ``p`` % of the values are at or below (None if empty)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100 * self.count))
        seen, last = 0, len(self.bins) - 1
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:  # the overflow bin has no upper edge: the max is
                return self.max if i == last else min((i + 1) * self.resolution, self.max)
        return self.max
