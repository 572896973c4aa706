"""Where a reader starts and what its history is: the rules alone, no consumer, no broker."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from sal_kafka import ComponentInfo, ConfigError
from sal_kafka.kafka._history import BEGINNING, History, Start, check_start, needs_watermarks, plan_start
from tests.conftest import BUNDLED

KTEST = ComponentInfo.load("KTest", BUNDLED)  # indexed
MIRROR = ComponentInfo.load("KMirror", BUNDLED)  # not indexed


@pytest.mark.parametrize(
    ("topic", "history", "marks", "expected"),
    [
        # events: their latest message; the newest per salIndex within the look-back when indexed
        (MIRROR["evt_detailedState"], None, (0, 10), Start(offset=9, history=True)),
        (KTEST["evt_scalars"], None, (0, 10), Start(offset=0, history=True)),
        (KTEST["evt_scalars"], None, (500, 5000), Start(offset=4000, history=True)),
        # telemetry and commands: none; live from the end
        (MIRROR["tel_inclinometer"], None, (0, 10), Start(offset=10)),
        (KTEST["cmd_setScalars"], None, (3, 10), Start(offset=10)),
        # an empty (or compacted-away) partition has no history
        (MIRROR["evt_detailedState"], None, (7, 7), Start(offset=7)),
        # history= overrides the kind's rule either way
        (MIRROR["tel_inclinometer"], True, (0, 10), Start(offset=9, history=True)),
        (MIRROR["evt_detailedState"], False, (0, 10), Start(offset=10)),
    ],
)
def test_the_history_rules(topic, history, marks, expected) -> None:  # type: ignore[no-untyped-def]
    assert plan_start(topic, 0, None, history, marks, max_history_read=1000) == expected


def test_start_positions_replace_the_rules() -> None:
    state, forces = MIRROR["evt_detailedState"], MIRROR["tel_inclinometer"]
    assert plan_start(state, 0, "end", None, (0, 10)) == Start(offset=10)  # no history, from the end
    assert plan_start(state, 0, "beginning", None) == Start(offset=BEGINNING)
    assert plan_start(forces, 0, 42, None) == Start(offset=42)
    offsets = {(forces.kafka_name, 0): 17}
    assert plan_start(forces, 0, offsets, None) == Start(offset=17)
    assert plan_start(forces, 1, offsets, None) == Start(offset=BEGINNING)  # a partition it does not name
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5)
    aware = naive.replace(tzinfo=datetime.UTC)
    assert plan_start(forces, 0, naive, None) == plan_start(forces, 0, aware, None)  # naive is UTC
    assert plan_start(forces, 0, aware, None) == Start(time_ms=int(aware.timestamp() * 1000))
    assert [needs_watermarks(s) for s in (None, "end", "beginning", 3, aware, offsets)] == [True, True] + [False] * 4


def test_a_start_that_is_none_of_these_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"start must be 'beginning', 'end', an offset or a datetime, got 'middle'"):
        check_start("middle")  # type: ignore[arg-type]


def _received(offset: int, index: int | None, as_dict: bool = True) -> SimpleNamespace:
    data = {"salIndex": index, "offset": offset} if as_dict else SimpleNamespace(salIndex=index)
    return SimpleNamespace(offset=offset, data=data, history=False)


def test_history_keeps_the_newest_per_salindex_and_gives_it_oldest_first() -> None:
    history = History()
    history.open("t", 0)
    history.open("u", 0)
    assert history and history.reading("t", 0) and not history.reading("t", 1)
    for offset, index in [(0, 1), (1, 2), (2, 1), (3, 3), (4, 2)]:
        history.offer("t", 0, _received(offset, index))
    history.offer("u", 0, _received(7, None, as_dict=False))
    got = history.close("t", 0)
    assert [(r.offset, r.data["salIndex"]) for r in got] == [(2, 1), (3, 3), (4, 2)]
    assert all(r.history for r in got)
    assert history.close("t", 0) == []  # not reading it any more
    assert [r.offset for r in history.close_all()] == [7] and not history
