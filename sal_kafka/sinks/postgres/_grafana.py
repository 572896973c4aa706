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

import yaml

from ..._util import write_files
from ...schemas._model import ComponentInfo
from ._tables import table_of

__all__ = ["component_dashboard", "postgres_datasource", "write_component_dashboards", "POSTGRES_UID"]

POSTGRES_UID: Final = "sal-kafka-postgres"
#: scalar numeric fields shown per telemetry panel at most (the rest: one query away)
MAX_FIELDS_PER_PANEL: Final = 12


def postgres_datasource(url: str) -> dict[str, Any]:
    """Grafana datasource provisioning of the sink's database (``postgresql://user:pw@host:port/db``)."""
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    port = parsed.port or 5432
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "sal-kafka PostgreSQL",
                "uid": POSTGRES_UID,
                "type": "grafana-postgresql-datasource",
                "url": f"{host}:{port}",
                "user": urllib.parse.unquote(parsed.username or "postgres"),
                "secureJsonData": {"password": urllib.parse.unquote(parsed.password or "")},
                "jsonData": {
                    "database": parsed.path.lstrip("/") or "postgres",
                    "sslmode": "disable",
                    "postgresVersion": 1400,
                    "timescaledb": False,
                },
            }
        ],
    }


def _sql_panel(title: str, sql: str, kind: str, x: int, y: int, fmt: str = "time_series") -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "grafana-postgresql-datasource", "uid": POSTGRES_UID},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
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


def component_dashboard(component: ComponentInfo) -> dict[str, Any]:
    """A dashboard of one component over the sink's tables: a time series per telemetry
    topic (its scalar numeric fields), the summaryState as a state timeline, an events table."""
    panels: list[dict[str, Any]] = []
    topics = {t.attr_name: t for t in component}
    state = topics.get("evt_summaryState")
    if state is not None:
        state_table = table_of(state).name
        panels.append(
            _sql_panel(
                "summaryState",
                f'SELECT time, summarystate AS "summaryState" FROM {state_table} '
                "WHERE $__timeFilter(time) ORDER BY time",
                "state-timeline",
                0,
                0,
            )
        )
    events = [t for t in component if t.kind == "event"]
    if events:
        union = "\nUNION ALL\n".join(
            f"SELECT time, '{t.attr_name}' AS event, private_seqnum AS seqnum FROM {table_of(t).name} "
            "WHERE $__timeFilter(time)"
            for t in events
        )
        panels.append(_sql_panel("Events", f"{union}\nORDER BY time DESC LIMIT 200", "table", 12, 0, fmt="table"))
    for topic in (t for t in component if t.kind == "telemetry"):
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
            f"SELECT $__timeGroupAlias(time, $__interval), {columns} FROM {table.name} "
            "WHERE $__timeFilter(time) GROUP BY 1 ORDER BY 1"
        )
        n = len(panels)
        panels.append(_sql_panel(topic.attr_name, sql, "timeseries", 12 * (n % 2), 8 * (n // 2)))
    for i, panel in enumerate(panels):
        panel["id"] = i + 1
    return {
        "uid": f"sal-kafka-{component.name.lower()}"[:40],
        "title": f"{component.name} (sal-kafka sink)",
        "tags": ["sal-kafka", component.name],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def write_component_dashboards(out: str | Path, components: Sequence[ComponentInfo], postgres_url: str) -> list[Path]:
    """Write the PostgreSQL datasource and one dashboard per component under ``out/grafana``."""
    root = Path(out) / "grafana"
    files = {root / "datasources" / "sal-kafka-postgres.yaml": yaml.safe_dump(postgres_datasource(postgres_url))}
    for component in components:
        files[root / "dashboards" / f"sal-kafka-{component.name.lower()}.json"] = json.dumps(
            component_dashboard(component), indent=2
        )
    write_files(files)
    return list(files)
