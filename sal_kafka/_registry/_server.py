"""A Confluent-compatible schema registry server (AVRO schemas), on aiohttp.

Implements the REST API that clients rely on, with Confluent's status codes,
error codes and JSON bodies. Every client mistake gets a 4xx JSON error; an
unexpected failure is logged and answered with a 500 JSON error, and the
server keeps serving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .._errors import ConfigError
from ._compat import LEVELS, canonical, incompatibilities, parse_avro
from ._store import GLOBAL, Store, Version

__all__ = ["make_app", "serve", "CONTENT_TYPE", "DEFAULT_COMPATIBILITY"]

log = logging.getLogger("sal_kafka.registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
DEFAULT_COMPATIBILITY = "BACKWARD"
MAX_BODY = 16 * 1024 * 1024
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


# ----------------------------------------------------------------------------- request parsing


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryHTTPError(400, 400, f"Malformed JSON body: {exc}") from None
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
    try:
        value = json.loads(text)
        parsed = parse_avro(value)
    except Exception as exc:  # the avro package raises several kinds
        raise RegistryHTTPError(422, 42201, f"Invalid schema: {exc}") from None
    return text, canonical(value), parsed


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
    text, canon, parsed = _schema_of(await _body(request))
    schema_id = store.schema_id(canon)
    if schema_id is not None:
        for version in store.versions(subject):
            if version.schema_id == schema_id:  # already there: idempotent
                return _json({"id": schema_id, "version": version.version})
    level = _level(store, subject)
    previous = [(v.version, _parsed(request.app, v)) for v in store.versions(subject)]
    problems = incompatibilities(parsed, previous, level)
    if problems:
        raise RegistryHTTPError(
            409,
            409,
            f"Schema being registered is incompatible with an earlier schema for subject "
            f'"{subject}" ({level}): ' + "; ".join(problems),
        )
    schema_id, version_number, _ = store.register(subject, text, canon, "AVRO")
    request.app[_PARSED].setdefault(schema_id, parsed)
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
        return int(request.match_info["id"])
    except ValueError:
        raise RegistryHTTPError(404, 40403, "Schema not found") from None


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
    _, _, parsed = _schema_of(await _body(request))
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


def make_app(db: str | Path) -> web.Application:
    """The registry as an aiohttp application storing in SQLite file ``db``."""
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
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


def serve(host: str = "127.0.0.1", port: int = 8081, db: str | Path = "sal-kafka-registry.db") -> None:
    """Run the registry until interrupted (``sal-kafka registry serve``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("schema registry on http://%s:%d, storing in %s", host, port, db)
    app = make_app(db)
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
