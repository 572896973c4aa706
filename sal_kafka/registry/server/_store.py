"""SQLite storage of the local schema registry.

WAL journal, one transaction per change. A commit is in the WAL file before
the HTTP answer goes out, so a registration that was acknowledged survives a
kill -9 of the server (``synchronous=NORMAL`` only risks the last commits on
a power loss, not on a process crash). Ids come from an AUTOINCREMENT key and
are never reused, not even after a permanent delete.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from ...errors import ConfigError

__all__ = ["Store", "Version"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_type TEXT NOT NULL,
    canonical TEXT NOT NULL UNIQUE,
    schema TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS versions_by_schema ON versions(schema_id);
CREATE TABLE IF NOT EXISTS config (
    subject TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
"""

GLOBAL = ""  # the config row of the global level


@attrs.frozen
class Version:
    """One version of a subject."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


class Store:
    """The registry's tables, with an in-memory index of canonical text -> id."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            self._ids: dict[str, int] = dict(self._db.execute("SELECT canonical, id FROM schemas"))
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot use {self.path} as the registry's SQLite database: {exc}") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ schemas

    def schema_id(self, canonical_text: str) -> int | None:
        return self._ids.get(canonical_text)

    def schema(self, schema_id: int) -> tuple[str, str] | None:
        """``(schema text, schema type)`` of an id."""
        row = self._db.execute("SELECT schema, schema_type FROM schemas WHERE id = ?", (schema_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def versions_of_schema(self, schema_id: int) -> list[tuple[str, int]]:
        rows = self._db.execute(
            "SELECT subject, version FROM versions WHERE schema_id = ? AND deleted = 0 ORDER BY subject, version",
            (schema_id,),
        )
        return [(s, v) for s, v in rows]

    # ------------------------------------------------------------------ subjects

    def subjects(self, deleted: bool = False) -> list[str]:
        query = "SELECT DISTINCT subject FROM versions" + ("" if deleted else " WHERE deleted = 0")
        return sorted(row[0] for row in self._db.execute(query))

    def subject_exists(self, subject: str, deleted: bool = False) -> bool:
        query = "SELECT 1 FROM versions WHERE subject = ?" + ("" if deleted else " AND deleted = 0")
        return self._db.execute(query + " LIMIT 1", (subject,)).fetchone() is not None

    def versions(self, subject: str, deleted: bool = False) -> list[Version]:
        query = (
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ?"
            + ("" if deleted else " AND v.deleted = 0")
            + " ORDER BY v.version"
        )
        return [Version(r[0], r[1], r[2], r[3], bool(r[4])) for r in self._db.execute(query, (subject,))]

    def find_version(self, subject: str, schema_id: int, deleted: bool = False) -> Version | None:
        """The newest version of ``subject`` that holds ``schema_id``."""
        row = self._db.execute(
            "SELECT v.version, s.schema, v.deleted FROM versions v JOIN schemas s ON s.id = v.schema_id "
            "WHERE v.subject = ? AND v.schema_id = ?"
            + ("" if deleted else " AND v.deleted = 0")
            + " ORDER BY v.version DESC LIMIT 1",
            (subject, schema_id),
        ).fetchone()
        return Version(subject, row[0], schema_id, row[1], bool(row[2])) if row else None

    def all_versions(self, prefix: str = "", deleted: bool = False, latest_only: bool = False) -> list[Version]:
        """Versions of every subject starting with ``prefix`` (only the newest of each if asked)."""
        live = "" if deleted else " AND v.deleted = 0"
        newest = (
            " AND v.version = (SELECT MAX(w.version) FROM versions w WHERE w.subject = v.subject"
            + live.replace("v.", "w.")
            + ")"
            if latest_only
            else ""
        )
        query = (
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE substr(v.subject, 1, ?) = ?"
            + live
            + newest
            + " ORDER BY v.subject, v.version"
        )
        rows = self._db.execute(query, (len(prefix), prefix))
        return [Version(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def register(self, subject: str, schema_text: str, canonical_text: str, schema_type: str) -> tuple[int, int, bool]:
        """Add ``schema`` to ``subject`` unless a live version has it already.

        Returns ``(schema id, version, created)``. The same canonical schema
        gets the same id in every subject.
        """
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO schemas (schema_type, canonical, schema) VALUES (?, ?, ?)",
                (schema_type, canonical_text, schema_text),
            )
            schema_id = db.execute("SELECT id FROM schemas WHERE canonical = ?", (canonical_text,)).fetchone()[0]
            row = db.execute(
                "SELECT version FROM versions WHERE subject = ? AND schema_id = ? AND deleted = 0",
                (subject, schema_id),
            ).fetchone()
            if row:
                created, version = False, row[0]
            else:
                last = db.execute("SELECT MAX(version) FROM versions WHERE subject = ?", (subject,)).fetchone()[0]
                version = (last or 0) + 1
                db.execute(
                    "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                    (subject, version, schema_id),
                )
                created = True
        self._ids[canonical_text] = schema_id
        return schema_id, version, created

    def soft_delete_subject(self, subject: str) -> list[int]:
        with self._transaction() as db:
            versions = [
                r[0]
                for r in db.execute(
                    "SELECT version FROM versions WHERE subject = ? AND deleted = 0 ORDER BY version",
                    (subject,),
                )
            ]
            db.execute("UPDATE versions SET deleted = 1 WHERE subject = ?", (subject,))
        return versions

    def hard_delete_subject(self, subject: str) -> list[int]:
        with self._transaction() as db:
            versions = [
                r[0] for r in db.execute("SELECT version FROM versions WHERE subject = ? ORDER BY version", (subject,))
            ]
            db.execute("DELETE FROM versions WHERE subject = ?", (subject,))
            db.execute("DELETE FROM config WHERE subject = ?", (subject,))
        return versions

    def set_version_deleted(self, subject: str, version: int, permanent: bool) -> None:
        with self._transaction() as db:
            if permanent:
                db.execute("DELETE FROM versions WHERE subject = ? AND version = ?", (subject, version))
            else:
                db.execute(
                    "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?",
                    (subject, version),
                )

    # ------------------------------------------------------------------ config

    def compatibility(self, subject: str = GLOBAL) -> str | None:
        row = self._db.execute("SELECT compatibility FROM config WHERE subject = ?", (subject,)).fetchone()
        return row[0] if row else None

    def set_compatibility(self, level: str, subject: str = GLOBAL) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO config (subject, compatibility) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET compatibility = excluded.compatibility",
                (subject, level),
            )

    def delete_compatibility(self, subject: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM config WHERE subject = ?", (subject,))
