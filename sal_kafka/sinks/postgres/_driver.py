"""psycopg, the sink's PostgreSQL driver: imported once, naming its extra when it is missing."""

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:  # an extra: say which
    from ..._util import missing

    raise missing("psycopg", "sink", "the PostgreSQL sink (sal_kafka.sinks)") from exc

__all__ = ["psycopg", "sql"]
