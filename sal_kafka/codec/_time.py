"""Clocks of the private fields, as ts_salobj keeps them."""

from __future__ import annotations

import time

__all__ = ["TAI_MINUS_UTC", "tai_now", "utc_now"]

#: TAI - UTC in seconds since 2017-01-01 (no leap second announced since).
TAI_MINUS_UTC = 37.0


def utc_now() -> float:
    """UTC, Unix seconds."""
    return time.time()


def tai_now() -> float:
    """TAI, Unix seconds (UTC + leap seconds), as ts_salobj's ``current_tai``."""
    return time.time() + TAI_MINUS_UTC
