"""A Confluent-compatible schema registry server (AVRO schemas), on aiohttp.

Implements the REST API that clients rely on, with Confluent's status codes,
error codes and JSON bodies. Every client mistake gets a 4xx JSON error; an
unexpected failure is logged and answered with a 500 JSON error, and the
server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hmac
import ipaddress
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    from aiohttp import web
except ImportError as exc:  # an extra: say which
    from ..._util import missing

    raise missing("aiohttp", "registry-server", "the registry server (sal_kafka.registry.server)") from exc

from ..._stats import LatencyHistogram
from ...errors import ConfigError
from ...observe._metrics import Metrics, add_histogram, serve_metrics
from .._compat import LEVELS, canonical, incompatibilities, parse_avro
from ._store import GLOBAL, Store, Version

__all__ = ["make_app", "serve", "CONTENT_TYPE", "DEFAULT_COMPATIBILITY"]

log = logging.getLogger("sal_kafka.registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
DEFAULT_COMPATIBILITY = "BACKWARD"
MAX_BODY = 16 * 1024 * 1024
#: Bounds on one schema, so that no request can hold the server for long
#: (the largest ts_xml v28 topic schema is 106 kB, 820 fields, 4 levels deep).
MAX_SCHEMA_BYTES = 2 * 1024 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_NODES = 50_000
_MAX_ID = 2**31 - 1
_STORE: web.AppKey[Store] = web.AppKey("store", Store)
_PARSED: web.AppKey[dict[int, Any]] = web.AppKey("parsed", dict)


class RegistryHTTPError(Exception):
    """An error answered as ``{"error_code": code, "message": message}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _subject_not_found(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(404, 40401, f"Subject '{subject}' not found.")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=CONTENT_TYPE)


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"error_code": code, "message": message}, status)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryHTTPError as exc:
        return _error(exc.status, exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, 413, f"Request body larger than {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
        raise
    except Exception:  # never crash; report and keep serving
        log.exception("internal error on %s %s", request.method, request.path)
        return _error(500, 50001, "Error in the backend data store")


def _basic_auth(users: dict[str, str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """HTTP basic authentication (the Confluent registry's common setting) of every request."""

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        known = users.get(user)
        if scheme.lower() != "basic" or known is None or not hmac.compare_digest(known, password):
            response = _error(401, 401, "Unauthorized: this registry needs HTTP basic authentication")
            response.headers["WWW-Authenticate"] = 'Basic realm="sal-kafka registry"'
            return response
        return await handler(request)

    return check


# ----------------------------------------------------------------------------- request parsing


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryHTTPError(400, 400, f"Malformed JSON body: {exc}") from None
    except RecursionError:
        raise RegistryHTTPError(400, 400, "Malformed JSON body: nested too deeply") from None
    if not isinstance(data, dict):
        raise RegistryHTTPError(422, 422, "The request body must be a JSON object")
    return data


def _schema_of(data: dict[str, Any]) -> tuple[str, str, Any]:
    """``(schema text, canonical text, parsed avro)`` from a registration body."""
    schema_type = data.get("schemaType", "AVRO") or "AVRO"
    if schema_type != "AVRO":
        raise RegistryHTTPError(
            422,
            42201,
            f"Invalid schema: unknown schema type {schema_type!r}; this registry supports AVRO",
        )
    if data.get("references"):
        raise RegistryHTTPError(422, 42201, "Invalid schema: schema references are not supported")
    text = data.get("schema")
    if not isinstance(text, str):
        raise RegistryHTTPError(422, 42201, "Invalid schema: the body needs a 'schema' string")
    if len(text) > MAX_SCHEMA_BYTES:
        raise RegistryHTTPError(
            422, 42201, f"Invalid schema: {len(text)} characters, more than this registry's {MAX_SCHEMA_BYTES}"
        )
    try:
        value = json.loads(text)
    except RecursionError:
        raise RegistryHTTPError(422, 42201, "Invalid schema: nested too deeply") from None
    except ValueError as exc:
        raise RegistryHTTPError(422, 42201, f"Invalid schema: not JSON: {exc}") from None
    _check_size(value)
    try:
        parsed = parse_avro(value)
    except Exception as exc:  # the avro package raises several kinds
        raise RegistryHTTPError(422, 42201, f"Invalid schema: {exc}") from None
    return text, canonical(value), parsed


def _check_size(value: Any) -> None:
    """Refuse a schema deeper or larger than the bounds before any Avro work on it."""
    nodes, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_SCHEMA_DEPTH:
            raise RegistryHTTPError(422, 42201, f"Invalid schema: nested deeper than {MAX_SCHEMA_DEPTH} levels")
        if nodes > MAX_SCHEMA_NODES:
            raise RegistryHTTPError(422, 42201, f"Invalid schema: more than {MAX_SCHEMA_NODES} JSON values")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _version_number(text: str) -> int | None:
    """``latest`` (and -1) -> None; a positive int -> itself; else 42202."""
    if text in ("latest", "-1"):
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1 or number > 2**31 - 1:
        raise RegistryHTTPError(
            422,
            42202,
            f"The specified version '{text}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"',
        )
    return number


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def _find_version(store: Store, subject: str, text: str, deleted: bool = False) -> Version:
    number = _version_number(text)
    if not store.subject_exists(subject, deleted=deleted):
        raise _subject_not_found(subject)
    versions = store.versions(subject, deleted=deleted)
    if number is None:
        live = [v for v in versions if not v.deleted] or versions
        if not live:
            raise _subject_not_found(subject)
        return live[-1]
    for version in versions:
        if version.version == number:
            return version
    raise RegistryHTTPError(404, 40402, f"Version {number} not found.")


def _version_json(version: Version, schema_type: str = "AVRO") -> dict[str, Any]:
    data: dict[str, Any] = {
        "subject": version.subject,
        "version": version.version,
        "id": version.schema_id,
        "schema": version.schema,
    }
    if schema_type != "AVRO":
        data["schemaType"] = schema_type
    return data


def _level(store: Store, subject: str) -> str:
    return store.compatibility(subject) or store.compatibility(GLOBAL) or DEFAULT_COMPATIBILITY


def _parsed(app: web.Application, version: Version) -> Any:
    cache = app[_PARSED]
    if version.schema_id not in cache:
        cache[version.schema_id] = parse_avro(version.schema)
    return cache[version.schema_id]


# ----------------------------------------------------------------------------- handlers


async def get_subjects(request: web.Request) -> web.Response:
    return _json(request.app[_STORE].subjects(deleted=_flag(request, "deleted")))


async def get_versions(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    versions = store.versions(subject, deleted=_flag(request, "deleted"))
    if not versions:
        raise _subject_not_found(subject)
    return _json([v.version for v in versions])


async def register(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    body = await _body(request)
    # parsing and the compatibility check are CPU work: in a thread, so the loop keeps serving
    return await asyncio.to_thread(_register, request.app, store, subject, body)


def _register(app: web.Application, store: Store, subject: str, body: dict[str, Any]) -> web.Response:
    text, canon, parsed = _schema_of(body)
    schema_id = store.schema_id(canon)
    if schema_id is not None:
        for version in store.versions(subject):
            if version.schema_id == schema_id:  # already there: idempotent
                return _json({"id": schema_id, "version": version.version})
    level = _level(store, subject)
    previous = [(v.version, _parsed(app, v)) for v in store.versions(subject)]
    problems = incompatibilities(parsed, previous, level)
    if problems:
        raise RegistryHTTPError(
            409,
            409,
            f"Schema being registered is incompatible with an earlier schema for subject "
            f'"{subject}" ({level}): ' + "; ".join(problems),
        )
    schema_id, version_number, _ = store.register(subject, text, canon, "AVRO")
    app[_PARSED].setdefault(schema_id, parsed)
    # Newer Confluent registries answer the version too; older clients read "id" only.
    return _json({"id": schema_id, "version": version_number})


async def lookup(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    deleted = _flag(request, "deleted")
    data = await _body(request)
    try:  # a schema that was registered is valid: only an unknown one needs parsing
        canon = canonical(json.loads(data["schema"]))
    except (KeyError, TypeError, ValueError):
        canon = None
    schema_id = store.schema_id(canon) if canon is not None else None
    if schema_id is None:
        _schema_of(data)  # 42201 for an invalid schema
    found = store.find_version(subject, schema_id, deleted) if schema_id is not None else None
    if found is not None:
        return _json(_version_json(found))
    if not store.subject_exists(subject, deleted=deleted):
        raise _subject_not_found(subject)
    raise RegistryHTTPError(404, 40403, "Schema not found")


async def get_schemas(request: web.Request) -> web.Response:
    """``GET /schemas``: every (or the latest) version of subjects under a prefix."""
    store = request.app[_STORE]
    prefix = request.query.get("subjectPrefix", "")
    latest_only = _flag(request, "latestOnly")
    rows = store.all_versions(prefix, deleted=_flag(request, "deleted"), latest_only=latest_only)
    return _json([_version_json(v) for v in rows])


async def get_version(request: web.Request) -> web.Response:
    version = _find_version(
        request.app[_STORE],
        request.match_info["subject"],
        request.match_info["version"],
        deleted=_flag(request, "deleted"),
    )
    return _json(_version_json(version))


async def get_version_schema(request: web.Request) -> web.Response:
    version = _find_version(request.app[_STORE], request.match_info["subject"], request.match_info["version"])
    return web.Response(text=version.schema, content_type=CONTENT_TYPE)


async def delete_subject(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    if _flag(request, "permanent"):
        if not store.subject_exists(subject, deleted=True):
            raise _subject_not_found(subject)
        if store.subject_exists(subject):
            raise RegistryHTTPError(
                404,
                40405,
                f"Subject '{subject}' was not deleted first before being permanently deleted",
            )
        return _json(store.hard_delete_subject(subject))
    if not store.subject_exists(subject):
        if store.subject_exists(subject, deleted=True):
            raise RegistryHTTPError(
                404,
                40404,
                f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
            )
        raise _subject_not_found(subject)
    return _json(store.soft_delete_subject(subject))


async def delete_version(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    permanent = _flag(request, "permanent")
    version = _find_version(store, subject, request.match_info["version"], deleted=permanent)
    if permanent and not version.deleted:
        raise RegistryHTTPError(
            404,
            40407,
            f"Subject '{subject}' Version {version.version} was not deleted first before being permanently deleted",
        )
    if not permanent and version.deleted:
        raise RegistryHTTPError(404, 40406, f"Subject '{subject}' Version {version.version} was soft deleted")
    store.set_version_deleted(subject, version.version, permanent)
    return _json(version.version)


async def get_schema_by_id(request: web.Request) -> web.Response:
    found = request.app[_STORE].schema(_schema_id(request))
    if found is None:
        raise RegistryHTTPError(404, 40403, "Schema not found")
    data: dict[str, Any] = {"schema": found[0]}
    if found[1] != "AVRO":
        data["schemaType"] = found[1]
    return _json(data)


async def get_schema_versions(request: web.Request) -> web.Response:
    store = request.app[_STORE]
    schema_id = _schema_id(request)
    if store.schema(schema_id) is None:
        raise RegistryHTTPError(404, 40403, "Schema not found")
    return _json([{"subject": s, "version": v} for s, v in store.versions_of_schema(schema_id)])


def _schema_id(request: web.Request) -> int:
    try:
        schema_id = int(request.match_info["id"])
    except ValueError:
        raise RegistryHTTPError(404, 40403, "Schema not found") from None
    if not 1 <= schema_id <= _MAX_ID:  # beyond any id this registry gives (and SQLite's integers)
        raise RegistryHTTPError(404, 40403, "Schema not found")
    return schema_id


async def get_types(request: web.Request) -> web.Response:
    return _json(["AVRO"])


async def _level_from(request: web.Request) -> str:
    data = await _body(request)
    level = str(data.get("compatibility", data.get("compatibilityLevel", ""))).upper()
    if level not in LEVELS:
        raise RegistryHTTPError(422, 42203, f"Invalid compatibility level {level!r}; valid: {', '.join(LEVELS)}")
    return level


async def get_config(request: web.Request) -> web.Response:
    return _json({"compatibilityLevel": _level(request.app[_STORE], GLOBAL)})


async def put_config(request: web.Request) -> web.Response:
    level = await _level_from(request)
    request.app[_STORE].set_compatibility(level)
    return _json({"compatibility": level})


async def get_subject_config(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    level = store.compatibility(subject)
    if level is None:
        if _flag(request, "defaultToGlobal"):
            return _json({"compatibilityLevel": _level(store, GLOBAL)})
        raise RegistryHTTPError(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")
    return _json({"compatibilityLevel": level})


async def put_subject_config(request: web.Request) -> web.Response:
    level = await _level_from(request)
    request.app[_STORE].set_compatibility(level, request.match_info["subject"])
    return _json({"compatibility": level})


async def delete_subject_config(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    level = store.compatibility(subject)
    if level is None:
        raise _subject_not_found(subject)
    store.delete_compatibility(subject)
    return _json({"compatibilityLevel": level})


async def check_compatibility(request: web.Request) -> web.Response:
    store, subject = request.app[_STORE], request.match_info["subject"]
    body = await _body(request)
    return await asyncio.to_thread(_check_compatibility, request, store, subject, body)


def _check_compatibility(request: web.Request, store: Store, subject: str, body: dict[str, Any]) -> web.Response:
    _, _, parsed = _schema_of(body)
    version = _find_version(store, subject, request.match_info["version"])
    level = _level(store, subject)
    if level.endswith("_TRANSITIVE"):
        previous = [
            (v.version, _parsed(request.app, v)) for v in store.versions(subject) if v.version <= version.version
        ]
    else:
        previous = [(version.version, _parsed(request.app, version))]
    problems = incompatibilities(parsed, previous, level)
    result: dict[str, Any] = {"is_compatible": not problems}
    if _flag(request, "verbose"):
        result["messages"] = problems
    return _json(result)


async def root(request: web.Request) -> web.Response:
    return _json({})


def _request_metrics(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Requests per endpoint (the route's pattern: bounded), method and status; their time."""
    counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
    times: dict[str, LatencyHistogram] = {}

    def samples(families: Any) -> None:
        for (endpoint, method, status), n in list(counts.items()):
            families.add("sal_kafka_registry_requests_total", (endpoint, method, status), n)
        family = families.get("sal_kafka_registry_request_seconds")
        for endpoint, histogram in list(times.items()):
            add_histogram(family, [endpoint], histogram)

    metrics.add_source(samples)

    @web.middleware
    async def measure(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        start = time.monotonic()
        response = await handler(request)
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "unknown"
        counts[(endpoint, request.method, response.status)] += 1
        histogram = times.get(endpoint)
        if histogram is None:
            histogram = times[endpoint] = LatencyHistogram()
        histogram.add(time.monotonic() - start)
        return response

    return measure


def _read_only() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse every change (register, delete, config) from anonymous clients; reads,
    lookups and compatibility checks stay open."""

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if _is_change(request):
            return _error(
                403,
                40301,
                "this registry refuses anonymous changes (register, delete, config): start it with "
                "--user NAME:PASSWORD, or --allow-anonymous-writes",
            )
        return await handler(request)

    return check


def _is_change(request: web.Request) -> bool:
    """A request that changes the store (a POST to a subject is a lookup, a POST to
    /compatibility a check: neither changes anything)."""
    if request.method in ("PUT", "DELETE"):
        return True
    return request.method == "POST" and request.path.startswith("/subjects/") and request.path.endswith("/versions")


def make_app(
    db: str | Path,
    users: dict[str, str] | None = None,
    metrics: Metrics | None = None,
    anonymous_writes: bool = True,
) -> web.Application:
    """The registry as an aiohttp application storing in SQLite file ``db``;
    with ``users`` (``{name: password}``), every request needs HTTP basic
    authentication; without, changes are refused unless ``anonymous_writes``;
    with ``metrics``, requests are counted and timed."""
    if users:
        middlewares: list[Any] = [_basic_auth(users), _errors]
    elif anonymous_writes:
        middlewares = [_errors]
    else:
        middlewares = [_read_only(), _errors]
    if metrics is not None:
        middlewares.insert(0, _request_metrics(metrics))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    store = Store(db)
    app[_STORE] = store
    app[_PARSED] = {}

    async def close_store(_: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    s = "/subjects/{subject}"
    app.add_routes(
        [
            web.get("/", root),
            web.get("/subjects", get_subjects),
            web.get(s + "/versions", get_versions),
            web.post(s + "/versions", register),
            web.get(s + "/versions/{version}", get_version),
            web.get(s + "/versions/{version}/schema", get_version_schema),
            web.delete(s + "/versions/{version}", delete_version),
            web.post(s, lookup),
            web.delete(s, delete_subject),
            web.get("/schemas", get_schemas),
            web.get("/schemas/ids/{id}", get_schema_by_id),
            web.get("/schemas/ids/{id}/versions", get_schema_versions),
            web.get("/schemas/types", get_types),
            web.get("/config", get_config),
            web.put("/config", put_config),
            web.get("/config/{subject}", get_subject_config),
            web.put("/config/{subject}", put_subject_config),
            web.delete("/config/{subject}", delete_subject_config),
            web.post("/compatibility/subjects/{subject}/versions/{version}", check_compatibility),
        ]
    )
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    db: str | Path = "sal-kafka-registry.db",
    users: dict[str, str] | None = None,
    metrics_address: str | None = None,
    *,
    allow_anonymous_writes: bool = False,
    max_connections: int = 256,
    idle_timeout: float = 30.0,
) -> None:
    """Run the registry until interrupted (``sal-kafka registry serve``); with
    ``metrics_address`` (a port or host:port), serve its Prometheus metrics there.

    Without ``users``, anonymous clients may change schemas (register, delete,
    config) only on loopback or with ``allow_anonymous_writes``; elsewhere they
    can only read. At most ``max_connections`` are open at once (more are closed
    as they come); a connection silent for ``idle_timeout`` seconds (idle, or
    half-open) is closed.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("schema registry on http://%s:%d, storing in %s", host, port, db)
    anonymous_writes = not users and (allow_anonymous_writes or _is_loopback(host))
    if users:
        log.info("mode: HTTP basic authentication required for every request (%d users)", len(users))
    elif anonymous_writes and _is_loopback(host):
        log.info("mode: open on loopback (anyone on this machine may change schemas)")
    elif anonymous_writes:
        log.warning(
            "mode: serving on %s beyond loopback with no authentication and --allow-anonymous-writes: "
            "anyone who reaches it can change schemas (give --user NAME:PASSWORD)",
            host,
        )
    else:
        log.warning(
            "mode: serving on %s beyond loopback with no authentication: read-only for everyone "
            "(changes need --user NAME:PASSWORD, or --allow-anonymous-writes)",
            host,
        )
    log.info("at most %d connections; one silent for %.0f s is closed", max_connections, idle_timeout)
    metrics = None
    if metrics_address is not None:
        metrics = Metrics()
        serve_metrics(metrics_address, metrics)
    app = make_app(db, users, metrics, anonymous_writes=anonymous_writes)
    try:
        asyncio.run(_run(app, host, port, max_connections, idle_timeout))
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass


async def _run(app: web.Application, host: str, port: int, max_connections: int, idle_timeout: float) -> None:
    """Serve ``app`` through a `ConnectionGuard` until SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    guard = ConnectionGuard(runner.server, max_connections, idle_timeout)
    server = await loop.create_server(guard, host, port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = loop.create_task(guard.watch())
    try:
        await stop.wait()
    finally:
        watch.cancel()
        server.close()
        guard.close_all()
        await runner.cleanup()


class ConnectionGuard:
    """The protocol factory of the server: bounds the connections open at once and
    closes those silent for ``idle_timeout`` seconds (idle keep-alives, half-open ones
    that never finish a request). aiohttp alone keeps a half-open connection for ever."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], limit: int, idle_timeout: float) -> None:
        self.factory = factory
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.open: set[_Guarded] = set()
        self.refused = 0  # connections closed at once: too many open
        self.timed_out = 0  # connections closed for silence

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            now = time.monotonic()
            for connection in list(self.open):
                if now - connection.last > self.idle_timeout and connection.transport is not None:
                    self.timed_out += 1
                    connection.transport.close()

    def close_all(self) -> None:
        for connection in list(self.open):
            if connection.transport is not None:
                connection.transport.close()


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's handler behind it, its last activity noted."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.inner: Any = None
        self.transport: asyncio.Transport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if len(self.guard.open) >= self.guard.limit:
            self.guard.refused += 1
            if self.guard.refused == 1 or self.guard.refused % 100 == 0:
                log.warning("%d connections open: refusing more (%d so far)", self.guard.limit, self.guard.refused)
            transport.abort()
            return
        self.guard.open.add(self)
        self.inner = self.guard.factory()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.open.discard(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
