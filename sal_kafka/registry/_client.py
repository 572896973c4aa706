"""Register topic schemas with any Confluent-compatible registry.

Built on confluent-kafka's `SchemaRegistryClient` (connection reuse, retries
with backoff on transient failures); topics are handled concurrently.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import attrs

from ..errors import ConfigError, IncompatibleSchemaError, RegistryError
from ..options import Compatibility, RegistrationStatus
from ..schemas._model import ComponentInfo, TopicInfo
from ._compat import LEVELS, canonical, incompatibilities, parse_avro
from ._config import DEFAULT_URL, RegistryConfig
from ._http import get_json

__all__ = ["RegistryConfig", "RegistrationResult", "SchemaRegistry", "DEFAULT_URL"]

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError


def _import_client() -> None:
    """confluent-kafka's registry client, imported when a `SchemaRegistry` is made: it
    brings httpx and authlib (0.18 s), which ``import sal_kafka`` must not pay for."""
    global Schema, SchemaRegistryClient, SchemaRegistryError
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    for name in ("httpx", "httpx2"):  # confluent-kafka's client logs through its own copy, httpx2
        httpx_log = logging.getLogger(name)
        if _quiet_requests not in httpx_log.filters:
            httpx_log.addFilter(_quiet_requests)


def _quiet_requests(record: logging.LogRecord) -> bool:
    """httpx logs every request the registry client sends at INFO ("HTTP Request: POST
    ... 200 OK": about 40 lines as a CSC starts); keep them at DEBUG only."""
    if record.levelno == logging.INFO and record.getMessage().startswith("HTTP Request:"):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True


@attrs.frozen
class RegistrationResult:
    """What happened to one subject.

    Attributes
    ----------
    subject : str
    status : RegistrationStatus
        ``new`` (subject created), ``updated`` (a new, compatible version),
        ``unchanged``, ``incompatible`` (refused), ``error``, or ``skipped``
        (not attempted: the registry had stopped answering).
    schema_id, version : int or None
        The registered (or existing) id and version; None when nothing is
        registered (refused, error, or a dry run of a new schema).
    detail : str
        Why it was refused or failed, which fields break what.
    dry_run : bool
        True when nothing was changed.
    unreachable : bool
        The registry gave no answer at all (an ``error`` of the connection).
    """

    subject: str
    status: RegistrationStatus
    schema_id: int | None = None
    version: int | None = None
    detail: str = ""
    dry_run: bool = False
    unreachable: bool = False

    @property
    def refused(self) -> bool:
        """Not registered: incompatible, failed, or not attempted."""
        return self.status in ("incompatible", "error", "skipped")

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _required(value: int | None, what: str) -> int:
    if value is None:
        raise RegistryError(f"the registry's answer has no {what}")
    return value


def _schema_text(topic: TopicInfo) -> str:
    return json.dumps(topic.avro_schema)


class SchemaRegistry:
    """Register, look up and fetch topic schemas, with caching.

    Parameters
    ----------
    url : str, optional
        Registry URL; default ``$SAL_KAFKA_SCHEMA_REGISTRY_URL``, then
        ``http://127.0.0.1:8081``.
    config : RegistryConfig, optional
        Full configuration (credentials, TLS, retries); ``url`` overrides its URL.
    workers : int
        Concurrent requests when registering many topics.
    """

    def __init__(self, url: str | None = None, config: RegistryConfig | None = None, workers: int = 8) -> None:
        base = config or RegistryConfig.from_env()
        self.config = attrs.evolve(base, url=url) if url else base
        self.url = self.config.url
        self.workers = workers
        # "mock://..." is confluent-kafka's in-memory registry (tests, examples)
        _import_client()
        make = SchemaRegistryClient.new_client if self.url.startswith("mock://") else SchemaRegistryClient
        try:
            self.client = make(self.config.client_conf())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid schema registry settings: {exc} (url={self.url})") from None
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ errors

    def _error(self, exc: Exception, subject: str | None, action: str) -> RegistryError:
        if isinstance(exc, SchemaRegistryError):
            message = (
                f"{action}: registry answered {exc.http_status_code} (error {exc.error_code}): {exc.error_message}"
            )
            return RegistryError(
                message,
                url=self.url,
                subject=subject,
                http_status=exc.http_status_code,
                error_code=exc.error_code,
            )
        message = f"{action}: registry unreachable or failing: {type(exc).__name__}: {exc}"
        return RegistryError(message, url=self.url, subject=subject)

    # ------------------------------------------------------------------ lookups

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema of an id, as a dict (cached).

        Raises
        ------
        RegistryError
            If the id is unknown or the registry cannot be reached.
        """
        found = self._schemas.get(schema_id)
        if found is None:
            try:
                text = self.client.get_schema(schema_id).schema_str
            except Exception as exc:
                raise self._error(exc, None, f"fetching schema id {schema_id}") from None
            found = self._schemas[schema_id] = json.loads(text or "null")
        return found

    def cached_schema(self, schema_id: int) -> dict[str, Any] | None:
        """The schema of an id if `schema` found it before (no request), else None."""
        return self._schemas.get(schema_id)

    def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        """`schema`, but None for an unknown id (for `Codec.decode_message`)."""
        try:
            return self.schema(schema_id)
        except RegistryError as exc:
            if exc.error_code == 40403:
                return None
            raise

    def lookup_id(self, topic: TopicInfo) -> int | None:
        """The id of ``topic``'s schema under its subject, or None if not registered."""
        text = _schema_text(topic)
        key = (topic.subject, text)
        if key in self._ids:
            return self._ids[key]
        try:
            found = self.client.lookup_schema(topic.subject, Schema(text, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise self._error(exc, topic.subject, "looking up the schema") from None
        except Exception as exc:
            raise self._error(exc, topic.subject, "looking up the schema") from None
        schema_id = _required(found.schema_id, "schema id")
        self._ids[key] = schema_id
        self._schemas.setdefault(schema_id, topic.avro_schema)
        return schema_id

    def ensure_registered(self, topic: TopicInfo, compatibility: Compatibility | None = None) -> int:
        """Register ``topic``'s schema unless it is there; return its id.

        Raises
        ------
        IncompatibleSchemaError
            If the schema breaks the subject's compatibility level.
        RegistryError
            If the registry cannot be reached or refuses.
        """
        found = self.lookup_id(topic)
        if found is not None:
            return found
        result = self.register_topic(topic, compatibility=compatibility)
        if result.status == "incompatible":
            raise IncompatibleSchemaError(result.detail, url=self.url, subject=topic.subject)
        if result.schema_id is None:
            raise RegistryError(result.detail, url=self.url, subject=topic.subject)
        return result.schema_id

    # ------------------------------------------------------------------ registration

    def subjects(self) -> set[str]:
        """Subjects the registry has (live ones)."""
        try:
            return set(self.client.get_subjects())
        except Exception as exc:
            raise self._error(exc, None, "listing subjects") from None

    def register_topic(
        self,
        topic: TopicInfo,
        compatibility: Compatibility | None = None,
        dry_run: bool = False,
        subject_exists: bool | None = None,
    ) -> RegistrationResult:
        """Register one topic's schema, idempotently and behind a compatibility gate.

        Never raises for a registry problem: the result says ``error`` and why.
        """
        subject = topic.subject
        try:
            return self._register(topic, compatibility, dry_run, subject_exists)
        except Exception as exc:  # reported per subject; nothing is claimed as done
            error = exc if isinstance(exc, RegistryError) else self._error(exc, subject, "registering")
            # no HTTP answer at all: the registry is unreachable (not a refusal of this schema)
            gone = not isinstance(exc, SchemaRegistryError) and error.http_status is None
            return RegistrationResult(subject, "error", detail=str(error), dry_run=dry_run, unreachable=gone)

    def _register(
        self,
        topic: TopicInfo,
        compatibility: str | None,
        dry_run: bool,
        subject_exists: bool | None,
    ) -> RegistrationResult:
        subject, text = topic.subject, _schema_text(topic)
        schema = Schema(text, "AVRO")
        if subject_exists is None or subject_exists:
            try:
                found = self.client.lookup_schema(subject, schema)
                schema_id = _required(found.schema_id, "schema id")
                self._ids[(subject, text)] = schema_id
                return RegistrationResult(subject, "unchanged", schema_id, found.version, dry_run=dry_run)
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
                subject_exists = exc.error_code == 40403  # schema not found in an existing subject
        if subject_exists:
            problems = self._incompatibilities(subject, topic, compatibility)
            if problems:
                return RegistrationResult(subject, "incompatible", detail="; ".join(problems), dry_run=dry_run)
        status: RegistrationStatus = "updated" if subject_exists else "new"
        if dry_run:
            return RegistrationResult(subject, status, dry_run=True)
        try:
            registered = self.client.register_schema_full_response(subject, schema)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 409:
                return RegistrationResult(
                    subject, "incompatible", detail=f"refused by the registry: {exc.error_message}"
                )
            raise
        version = registered.version
        if version is None:
            version = self.client.lookup_schema(subject, schema).version
        schema_id = _required(registered.schema_id, "schema id")
        self._ids[(subject, text)] = schema_id
        return RegistrationResult(subject, status, schema_id, version)

    def _incompatibilities(self, subject: str, topic: TopicInfo, level: str | None) -> list[str]:
        """Check locally, with the avro package, against the versions the level names."""
        if level is None:
            try:
                level = self.client.get_compatibility(subject)
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
                level = self.client.get_compatibility()
        level = (level or "BACKWARD").upper()
        if level not in LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}", url=self.url, subject=subject)
        if level == "NONE":
            return []
        if level.endswith("_TRANSITIVE"):
            numbers = self.client.get_versions(subject)
        else:
            numbers = [_required(self.client.get_latest_version(subject).version, "version")]
        previous = [(n, parse_avro(self.client.get_version(subject, n).schema.schema_str)) for n in numbers]
        return incompatibilities(parse_avro(topic.avro_schema), previous, level)

    def register_topics(
        self,
        topics: Iterable[TopicInfo],
        compatibility: str | None = None,
        dry_run: bool = False,
    ) -> list[RegistrationResult]:
        """Register many topics concurrently; results in the order given."""
        if compatibility is not None and compatibility.upper() not in LEVELS:
            raise ConfigError(f"unknown compatibility level {compatibility!r}; expected one of {', '.join(LEVELS)}")
        level = cast(Compatibility, compatibility.upper()) if compatibility else None
        items = list(topics)
        try:
            existing: set[str] | None = self.subjects()
        except RegistryError as exc:
            return [RegistrationResult(t.subject, "error", detail=str(exc), dry_run=dry_run) for t in items]
        latest = self._latest_versions()

        gone = threading.Event()  # the registry stopped answering: stop, do not retry every subject

        def one(topic: TopicInfo) -> RegistrationResult:
            known = latest.get(topic.subject)
            if known is not None and known[2] == canonical(topic.avro_schema):
                self._ids[(topic.subject, _schema_text(topic))] = known[0]
                return RegistrationResult(topic.subject, "unchanged", known[0], known[1], dry_run=dry_run)
            if gone.is_set():
                return RegistrationResult(
                    topic.subject, "skipped", detail=f"not attempted: {self.url} stopped answering", dry_run=dry_run
                )
            exists = None if existing is None else topic.subject in existing
            result = self.register_topic(topic, level, dry_run, exists)
            if result.unreachable:
                gone.set()
            return result

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(one, items))

    def _latest_versions(self) -> dict[str, tuple[int, int, str]]:
        """``{subject: (id, version, canonical schema)}`` of every subject's latest
        version, in one request (``GET /schemas?latestOnly=true``), so that
        unchanged schemas cost no request each. Empty when the registry does
        not offer that endpoint; each subject is then looked up on its own."""
        try:
            rows = get_json(self.config, "schemas", {"latestOnly": "true"})
            return {
                row["subject"]: (int(row["id"]), int(row["version"]), canonical(json.loads(row["schema"])))
                for row in rows
                if row.get("schemaType", "AVRO") == "AVRO"
            }
        except Exception:  # an older registry: fall back to one lookup per subject
            return {}

    def register_components(
        self,
        components: Sequence[ComponentInfo],
        compatibility: str | None = None,
        dry_run: bool = False,
    ) -> list[RegistrationResult]:
        """Register every topic of ``components``."""
        return self.register_topics((t for c in components for t in c), compatibility, dry_run)
