"""Grafana dashboards of components over the sink's tables, and the PostgreSQL datasource.

A time series per telemetry topic (its scalar numeric fields), the
summaryState as a state timeline and an events table, each a query of the
tables `table_of` names.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import yaml

from ..._grafana_uids import POSTGRES_UID
from ..._util import write_files
from ...schemas._model import ComponentInfo
from ._sink import _safe
from ._tables import table_of

__all__ = [
    "component_dashboard",
    "postgres_datasource",
    "write_component_dashboards",
    "DatabaseFacts",
    "database_facts",
    "POSTGRES_UID",
]

#: scalar numeric fields shown per telemetry panel at most (the rest: one query away)
MAX_FIELDS_PER_PANEL: Final = 12


@attrs.frozen
class DatabaseFacts:
    """What the generated files take from the database: its PostgreSQL major
    ``version``, whether ``timescaledb`` is installed, and its ``tables``
    (``schema.table``; None when it could not be asked)."""

    version: int = 14
    timescaledb: bool = False
    tables: set[str] | None = None


def database_facts(url: str) -> DatabaseFacts:
    """`DatabaseFacts` of the database at ``url``, asked of it in one connection; the
    defaults (PostgreSQL 14 without TimescaleDB, tables unknown) when it cannot be
    reached, said in a warning."""
    import logging

    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as db:
            number = int(db.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
            timescale = db.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None
            found = db.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        return DatabaseFacts(number // 10000, timescale, {f"{schema}.{name}" for schema, name in found})
    except Exception as exc:  # an offline generation: the defaults, said
        logging.getLogger("sal_kafka.grafana").warning(
            "%s: cannot ask the database its version, extensions and tables (%s): "
            "PostgreSQL 14 without TimescaleDB assumed, panels for every topic",
            _safe(url),
            " ".join(str(exc).split()),  # psycopg's messages span lines
        )
        return DatabaseFacts()


def postgres_datasource(url: str, version: int | None = None, timescaledb: bool | None = None) -> dict[str, Any]:
    """Grafana datasource provisioning of the sink's database (``postgresql://user:pw@host:port/db``,
    or a Unix socket folder as ``?host=/path``). The version and TimescaleDB are asked of the
    database unless given."""
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    # Grafana takes a Unix socket as its folder alone: "<folder>:5432" was no address at all
    address = host if host.startswith("/") else f"{host}:{parsed.port or 5432}"
    if version is None or timescaledb is None:
        asked = database_facts(url)
        version = asked.version if version is None else version
        timescaledb = asked.timescaledb if timescaledb is None else timescaledb
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "sal-kafka PostgreSQL",
                "uid": POSTGRES_UID,
                "type": "grafana-postgresql-datasource",
                "url": address,
                "user": urllib.parse.unquote(parsed.username or "postgres"),
                "secureJsonData": {"password": urllib.parse.unquote(parsed.password or "")},
                "jsonData": {
                    "database": parsed.path.lstrip("/") or "postgres",
                    "sslmode": "disable",
                    # Grafana knows versions up to 15 by name; a newer server speaks the same SQL
                    "postgresVersion": min(version, 15) * 100,
                    "timescaledb": timescaledb,
                },
            }
        ],
    }


def _sql_panel(
    title: str, sql: str, kind: str, x: int, y: int, fmt: str = "time_series", w: int = 12
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "grafana-postgresql-datasource", "uid": POSTGRES_UID},
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {}, "overrides": []},
        "targets": [
            {
                "refId": "A",
                "datasource": {"uid": POSTGRES_UID},
                "editorMode": "code",
                "format": fmt,
                "rawQuery": True,
                "rawSql": sql,
            }
        ],
    }


def _mappings(members: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """Grafana value mappings: each number shown by its enumeration name."""
    return [
        {
            "type": "value",
            "options": {str(value): {"text": name, "index": i} for i, (name, value) in enumerate(members)},
        }
    ]


#: summaryState's numbers (ts_salobj's State; SAL XML declares no enumeration for it)
_STATES: Final = (("DISABLED", 1), ("ENABLED", 2), ("FAULT", 3), ("OFFLINE", 4), ("STANDBY", 5))
_STATE_COLORS: Final = {
    "DISABLED": "yellow",
    "ENABLED": "green",
    "FAULT": "red",
    "OFFLINE": "purple",
    "STANDBY": "blue",
}
#: the sink's own columns and the private fields: not what an engineer reads in an event
_NOT_SHOWN: Final = ("time", "kafka_partition", "kafka_offset")


def component_dashboard(
    component: ComponentInfo, topics: Sequence[str] | None = None, existing: set[str] | None = None
) -> dict[str, Any]:
    """A dashboard of one component over the sink's tables.

    Panels: the summaryState as a state timeline (its names, one row per salIndex),
    an events table (each event with its fields), and a time series per telemetry
    topic (its scalar numeric fields, one series per salIndex; enumerations shown by
    name). An indexed component gets a ``salIndex`` variable every query filters on.

    Parameters
    ----------
    component : ComponentInfo
    topics : sequence of str, optional
        Only these topics (``tel_x``, ``evt_x``): those the sink stores (its ``--topic``).
    existing : set of str, optional
        The tables that exist (``schema.table``, e.g. `DatabaseFacts.tables`): without
        ``topics``, only topics whose table exists get a panel (a missing table broke
        the whole events panel).
    """
    chosen = [t for t in component if topics is None or t.attr_name in topics]
    if topics is None and existing is not None:
        chosen = [t for t in chosen if f"{table_of(t).schema}.{table_of(t).name}" in existing]
    indexed = component.indexed
    where = "WHERE $__timeFilter(time)" + (" AND salindex IN ($salIndex)" if indexed else "")
    series = "salindex::text AS metric, " if indexed else ""
    panels: list[dict[str, Any]] = []
    by_name = {t.attr_name: t for t in chosen}
    state = by_name.get("evt_summaryState")
    if state is not None:
        panel = _sql_panel(
            "summaryState",
            f'SELECT time, {series}summarystate AS "summaryState" '
            f"FROM {table_of(state).qualified} {where} ORDER BY time",
            "state-timeline",
            0,
            0,
        )
        mappings = _mappings(_STATES)
        for option in mappings[0]["options"].values():
            option["color"] = _STATE_COLORS[option["text"]]
        panel["fieldConfig"]["defaults"]["mappings"] = mappings
        panels.append(panel)
    events = [t for t in chosen if t.kind == "event"]
    if events:
        parts = []
        for t in events:
            table = table_of(t)
            hidden = [
                *_NOT_SHOWN,
                *(
                    c.name
                    for c in table.columns
                    if c.field is not None and c.field.name.startswith("private_") and c.field.name != "private_seqNum"
                ),
            ]
            removed = "".join(f" - '{name}'" for name in hidden)
            parts.append(
                f"SELECT time, '{t.attr_name}' AS event, "
                + ("salindex, " if indexed else "")
                + f"(to_jsonb(e){removed})::text AS fields FROM {table.qualified} e {where}"
            )
        union = "\nUNION ALL\n".join(parts)
        panels.append(_sql_panel("Events", f"{union}\nORDER BY time DESC LIMIT 200", "table", 12, 0, fmt="table"))
    for topic in (t for t in chosen if t.kind == "telemetry"):
        table = table_of(topic)
        numeric = [
            c
            for c in table.field_columns
            if c.field is not None
            and c.field.count == 1
            and c.sql_type not in ("text", "boolean")
            and not c.field.name.startswith("private_")
            and c.field.name != "salIndex"
        ][:MAX_FIELDS_PER_PANEL]
        if not numeric:
            continue
        columns = ", ".join(f'avg({c.name}) AS "{c.field.name}"' for c in numeric if c.field is not None)
        sql = (
            f"SELECT $__timeGroupAlias(time, $__interval), {series}{columns} FROM {table.qualified} "
            f"{where} GROUP BY 1{', 2' if indexed else ''} ORDER BY 1"
        )
        n = len(panels)
        panel = _sql_panel(topic.attr_name, sql, "timeseries", 12 * (n % 2), 8 * (n // 2))
        for c in numeric:
            if c.field is not None and c.field.enum is not None:
                panel["fieldConfig"]["overrides"].append(
                    {
                        "matcher": {"id": "byRegexp", "options": f"{c.field.name}.*"},
                        "properties": [{"id": "mappings", "value": _mappings(c.field.enum.members)}],
                    }
                )
        panels.append(panel)
    for i, panel in enumerate(panels):
        panel["id"] = i + 1
    variables: list[dict[str, Any]] = []
    if indexed and chosen:
        source = table_of(state if state is not None else chosen[0]).qualified
        variables.append(
            {
                "name": "salIndex",
                "label": "salIndex",
                "type": "query",
                "datasource": {"type": "grafana-postgresql-datasource", "uid": POSTGRES_UID},
                "query": f"SELECT DISTINCT salindex FROM {source} ORDER BY 1",
                "definition": f"SELECT DISTINCT salindex FROM {source} ORDER BY 1",
                "multi": True,
                "includeAll": True,
                "current": {"text": "All", "value": "$__all"},
                "refresh": 2,
            }
        )
    return {
        "uid": f"sal-kafka-{component.name.lower()}"[:40],
        "title": f"{component.name} (sal-kafka sink)",
        "tags": ["sal-kafka", component.name],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def write_component_dashboards(
    out: str | Path,
    components: Sequence[ComponentInfo],
    postgres_url: str,
    topics: Sequence[str] | None = None,
) -> list[Path]:
    """Write the PostgreSQL datasource and one dashboard per component under ``out/grafana``:
    panels for ``topics`` (the sink's ``--topic``), else for the tables the database has."""
    root = Path(out) / "grafana"
    facts = database_facts(postgres_url)  # asked once, for the datasource and the panels
    datasource = postgres_datasource(postgres_url, facts.version, facts.timescaledb)
    files = {root / "datasources" / "sal-kafka-postgres.yaml": yaml.safe_dump(datasource)}
    existing = None if topics else facts.tables
    for component in components:
        files[root / "dashboards" / f"sal-kafka-{component.name.lower()}.json"] = json.dumps(
            component_dashboard(component, topics, existing), indent=2
        )
    write_files(files)
    return list(files)
