"""Tests of the sinks."""

from urllib.parse import quote

from sal_kafka.sinks.postgres._tables import schema_of


def with_search_path(url: str, topic_subname: str) -> str:
    """``url`` whose sessions see the tables of ``topic_subname``'s schema unqualified
    (a test's topics have a sub-namespace of their own, so their own schema)."""
    options = quote(f"-csearch_path={schema_of(topic_subname)},public")
    return f"{url}{'&' if '?' in url else '?'}options={options}"
