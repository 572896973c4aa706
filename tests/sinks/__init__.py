"""Tests of the sinks."""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from sal_kafka.sinks.postgres._tables import schema_of


def with_search_path(url: str, topic_subname: str) -> str:
    """``url`` whose sessions see the tables of ``topic_subname``'s schema unqualified
    (a test's topics have a sub-namespace of their own, so their own schema)."""
    options = quote(f"-csearch_path={schema_of(topic_subname)},public")
    return f"{url}{'&' if '?' in url else '?'}options={options}"


@contextlib.contextmanager
def running(sink: Any) -> Iterator[threading.Thread]:
    """``sink.run`` in a thread of its own for the block; then `stop` and join."""
    thread = threading.Thread(target=sink.run)
    thread.start()
    try:
        yield thread
    finally:
        sink.stop()
        thread.join(30)
