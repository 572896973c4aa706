"""The local registry server, driven by confluent-kafka's own client and
serializers, and by raw HTTP for status and error codes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.registry_server import RegistryProcess

pytestmark = pytest.mark.server

CT = "application/vnd.schemaregistry.v1+json"


def record_schema(*fields: dict[str, Any], name: str = "reading") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "lsst.sal.Test", "fields": list(fields)})


V1 = record_schema({"name": "a", "type": "int"})
V2 = record_schema({"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""})  # BACKWARD-compatible
BAD = record_schema({"name": "a", "type": "string"})  # type change: incompatible


def client(server: RegistryProcess) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": server.url})


def test_register_lookup_fetch_evolve_delete(registry: RegistryProcess) -> None:
    sr = client(registry)
    sid = sr.register_schema("s-value", Schema(V1, "AVRO"))
    assert sr.register_schema("s-value", Schema(V1, "AVRO")) == sid  # idempotent
    found = sr.lookup_schema("s-value", Schema(V1, "AVRO"))
    assert (found.schema_id, found.version, found.subject) == (sid, 1, "s-value")
    assert json.loads(sr.get_schema(sid).schema_str) == json.loads(V1)
    assert sr.get_subjects() == ["s-value"]
    assert sr.test_compatibility("s-value", Schema(V2, "AVRO")) is True
    sid2 = sr.register_schema("s-value", Schema(V2, "AVRO"))
    assert sid2 != sid and sr.get_latest_version("s-value").version == 2
    assert sr.get_versions("s-value") == [1, 2]
    assert sr.test_compatibility("s-value", Schema(BAD, "AVRO")) is False
    with pytest.raises(SchemaRegistryError) as refused:
        sr.register_schema("s-value", Schema(BAD, "AVRO"))
    assert refused.value.http_status_code == 409 and refused.value.error_code == 409
    assert "incompatible" in refused.value.error_message and "/fields/0/type" in refused.value.error_message
    assert sr.delete_version("s-value", 2) == 2
    assert sr.get_versions("s-value") == [1]
    assert sr.delete_subject("s-value") == [1]
    assert sr.get_subjects() == []
    assert sr.delete_subject("s-value", permanent=True) == [1, 2]
    with pytest.raises(SchemaRegistryError) as gone:
        client(registry).get_latest_version("s-value")  # a fresh client: the old one caches "latest"
    assert gone.value.error_code == 40401


def test_same_schema_same_id_in_every_subject(registry: RegistryProcess) -> None:
    sr = client(registry)
    spaced = json.dumps(json.loads(V1), indent=3)  # same schema, other text
    assert sr.register_schema("a-value", Schema(V1, "AVRO")) == sr.register_schema("b-value", Schema(spaced, "AVRO"))
    ids = httpx.get(f"{registry.url}/schemas/ids/1/versions").json()
    assert ids == [{"subject": "a-value", "version": 1}, {"subject": "b-value", "version": 1}]


def test_concurrent_registrations_of_one_schema_yield_one_id(registry: RegistryProcess) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        got = SchemaRegistryClient({"url": registry.url}).register_schema(f"c{i % 4}-value", Schema(V1, "AVRO"))
        with lock:
            ids.append(got)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 16 and len(set(ids)) == 1


def test_avro_serializer_and_deserializer(registry: RegistryProcess) -> None:
    sr = client(registry)
    ctx = SerializationContext("lsst.sal.Test.reading", MessageField.VALUE)
    serializer = AvroSerializer(sr, V2, conf={"auto.register.schemas": True})
    data = serializer({"a": 5, "b": "x"}, ctx)
    assert (
        data[0] == 0
        and int.from_bytes(data[1:5], "big")
        == sr.lookup_schema("lsst.sal.Test.reading-value", Schema(V2, "AVRO")).schema_id
    )
    assert AvroDeserializer(sr)(data, ctx) == {"a": 5, "b": "x"}


def test_config_levels(registry: RegistryProcess) -> None:
    sr = client(registry)
    assert sr.get_compatibility() == "BACKWARD"
    assert sr.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert sr.get_compatibility() == "FULL"
    sr.register_schema("s-value", Schema(V1, "AVRO"))
    sr.set_compatibility("s-value", "NONE")
    assert sr.get_compatibility("s-value") == "NONE"
    assert sr.register_schema("s-value", Schema(BAD, "AVRO")) > 0  # NONE lets anything through
    response = httpx.delete(f"{registry.url}/config/s-value")
    assert response.status_code == 200 and response.json() == {"compatibilityLevel": "NONE"}
    assert httpx.get(f"{registry.url}/config/s-value").json()["error_code"] == 40408
    assert httpx.get(f"{registry.url}/config/s-value?defaultToGlobal=true").json() == {"compatibilityLevel": "FULL"}


def test_transitive_levels_check_every_version(registry: RegistryProcess) -> None:
    sr = client(registry)
    v1 = record_schema({"name": "a", "type": "int"})
    v2 = record_schema({"name": "a", "type": "int", "default": 0})
    v3 = record_schema({"name": "b", "type": "int", "default": 0})  # drops a: old data readable, v1 cannot read it
    sr.set_compatibility("t-value", "FORWARD")
    sr.register_schema("t-value", Schema(v1, "AVRO"))
    sr.register_schema("t-value", Schema(v2, "AVRO"))
    assert sr.test_compatibility("t-value", Schema(v3, "AVRO")) is True  # v2 (has a default) reads v3's data
    sr.set_compatibility("t-value", "FORWARD_TRANSITIVE")
    assert sr.test_compatibility("t-value", Schema(v3, "AVRO")) is False  # v1 cannot


def test_verbose_compatibility_names_the_field(registry: RegistryProcess) -> None:
    client(registry).register_schema("s-value", Schema(V1, "AVRO"))
    response = httpx.post(
        f"{registry.url}/compatibility/subjects/s-value/versions/latest?verbose=true", json={"schema": BAD}
    )
    body = response.json()
    assert body["is_compatible"] is False
    assert any("/fields/0/type" in m and "type_mismatch" in m for m in body["messages"])


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the read-only error cases (none of them changes state)."""
    server = RegistryProcess(tmp_path_factory.mktemp("shared") / "registry.db").start()
    client(server).register_schema("s-value", Schema(V1, "AVRO"))
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/subjects/x-value/versions", b"{not json", 400, 400),
        ("POST", "/subjects/x-value/versions", b"[1, 2]", 422, 422),
        ("POST", "/subjects/x-value/versions", json.dumps({"schema": '{"type": "record"}'}).encode(), 422, 42201),
        ("POST", "/subjects/x-value/versions", json.dumps({"schema": "not json"}).encode(), 422, 42201),
        (
            "POST",
            "/subjects/x-value/versions",
            json.dumps({"schema": V1, "schemaType": "PROTOBUF"}).encode(),
            422,
            42201,
        ),
        ("POST", "/subjects/x-value/versions", json.dumps({"nothing": 1}).encode(), 422, 42201),
        ("GET", "/subjects/nope/versions", None, 404, 40401),
        ("GET", "/subjects/nope/versions/latest", None, 404, 40401),
        ("GET", "/subjects/s-value/versions/9", None, 404, 40402),
        ("GET", "/subjects/s-value/versions/zero", None, 422, 42202),
        ("GET", "/subjects/s-value/versions/0", None, 422, 42202),
        ("GET", "/schemas/ids/999", None, 404, 40403),
        ("GET", "/schemas/ids/abc", None, 404, 40403),
        ("POST", "/subjects/s-value", json.dumps({"schema": BAD}).encode(), 404, 40403),
        ("POST", "/subjects/nope", json.dumps({"schema": V1}).encode(), 404, 40401),
        ("DELETE", "/subjects/nope", None, 404, 40401),
        ("DELETE", "/subjects/s-value?permanent=true", None, 404, 40405),
        ("DELETE", "/subjects/s-value/versions/1?permanent=true", None, 404, 40407),
        ("PUT", "/config", json.dumps({"compatibility": "SOMETIMES"}).encode(), 422, 42203),
        ("GET", "/no/such/path", None, 404, 404),
        ("PATCH", "/subjects", None, 405, 405),
    ],
)
def test_bad_requests_get_json_errors(
    shared_registry: RegistryProcess, method: str, path: str, body: bytes | None, status: int, code: int
) -> None:
    response = httpx.request(method, shared_registry.url + path, content=body, headers={"Content-Type": CT})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(CT)
    assert response.json()["error_code"] == code and response.json()["message"]


def test_oversized_body(shared_registry: RegistryProcess) -> None:
    response = httpx.post(f"{shared_registry.url}/subjects/x-value/versions", content=b"x" * (17 * 1024 * 1024))
    assert response.status_code == 413 and response.json()["error_code"] == 413
    assert httpx.get(f"{shared_registry.url}/subjects").json() == ["s-value"]  # still serving, nothing added


def test_schema_types_and_raw_schema(registry: RegistryProcess) -> None:
    client(registry).register_schema("s-value", Schema(V1, "AVRO"))
    assert httpx.get(f"{registry.url}/schemas/types").json() == ["AVRO"]
    raw = httpx.get(f"{registry.url}/subjects/s-value/versions/1/schema")
    assert json.loads(raw.text) == json.loads(V1)
    latest = httpx.get(f"{registry.url}/schemas?latestOnly=true").json()
    assert [(r["subject"], r["version"], r["id"]) for r in latest] == [("s-value", 1, 1)]


# ----------------------------------------------------------------------------- durability


def test_kill_9_loses_nothing_acknowledged(tmp_path: Any) -> None:
    server = RegistryProcess(tmp_path / "crash.db").start()
    acknowledged: dict[str, int] = {}
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(timeout=5.0) as http:
            i = 0
            while not stop.is_set():
                schema = record_schema({"name": f"f{i}", "type": "int"}, name=f"r{i}")
                try:
                    response = http.post(f"{server.url}/subjects/k{i}-value/versions", json={"schema": schema})
                except httpx.TransportError:
                    return  # the server is gone; this one was not acknowledged
                if response.status_code == 200:
                    acknowledged[f"k{i}-value"] = response.json()["id"]
                i += 1

    writer = threading.Thread(target=stream)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 150:
        assert writer.is_alive() and time.monotonic() < deadline, f"only {len(acknowledged)} registrations in 60 s"
        time.sleep(0.01)
    server.kill()  # SIGKILL: no shutdown, no flush
    stop.set()
    writer.join(10)
    restarted = RegistryProcess(tmp_path / "crash.db", port=server.port).start()
    try:
        sr = SchemaRegistryClient({"url": restarted.url})
        for subject, schema_id in acknowledged.items():
            assert sr.get_latest_version(subject).schema_id == schema_id, subject
        # ids are never reused after the restart
        new_id = sr.register_schema(
            "after-value", Schema(record_schema({"name": "z", "type": "long"}, name="z"), "AVRO")
        )
        assert new_id > max(acknowledged.values())
    finally:
        restarted.stop()


# ----------------------------------------------------------------------------- hostile input and access


def test_bad_input_is_a_4xx_not_a_store_error(registry: RegistryProcess) -> None:
    assert httpx.get(f"{registry.url}/schemas/ids/{10**26}").json() == {
        "error_code": 40403,
        "message": "Schema not found",
    }
    deep = "[" * 100_000 + "]" * 100_000
    answer = httpx.post(f"{registry.url}/subjects/d-value/versions", content=deep, headers={"Content-Type": CT})
    assert answer.status_code == 400 and "nested too deeply" in answer.json()["message"]
    nested: Any = "int"
    for i in range(40):
        nested = {"type": "record", "name": f"r{i}", "fields": [{"name": "f", "type": nested}]}
    answer = httpx.post(f"{registry.url}/subjects/n-value/versions", json={"schema": json.dumps(nested)})
    assert answer.status_code == 422 and "nested deeper than 32 levels" in answer.json()["message"]


def test_a_huge_schema_is_refused_and_others_are_served_meanwhile(registry: RegistryProcess) -> None:
    fields = [{"name": f"f{i}", "type": "double", "default": 0.0, "doc": "x" * 40} for i in range(60_000)]
    huge = json.dumps({"type": "record", "name": "huge", "fields": fields})
    results: dict[str, Any] = {}

    def post() -> None:
        results["huge"] = httpx.post(f"{registry.url}/subjects/h-value/versions", json={"schema": huge}, timeout=60)

    thread = threading.Thread(target=post)
    thread.start()
    start = time.monotonic()
    assert httpx.get(f"{registry.url}/subjects", timeout=10).status_code == 200  # not blocked
    thread.join(60)
    assert time.monotonic() - start < 30
    assert results["huge"].status_code == 422 and "characters, more than" in results["huge"].json()["message"]


def test_basic_authentication(tmp_path: Any) -> None:
    server = RegistryProcess(tmp_path / "auth.db", extra=["--user", "alice:secret"]).start(check=False)
    try:
        anonymous = httpx.get(f"{server.url}/subjects")
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert httpx.get(f"{server.url}/subjects", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(f"{server.url}/subjects", headers={"Authorization": "Basic !!"}).status_code == 401
        assert httpx.get(f"{server.url}/subjects", auth=("alice", "secret")).json() == []
        client = SchemaRegistryClient({"url": server.url, "basic.auth.user.info": "alice:secret"})
        assert client.register_schema("a-value", Schema(V1, "AVRO")) == 1
    finally:
        server.stop()


def test_beyond_loopback_without_users_anonymous_clients_only_read(tmp_path: Any) -> None:
    """Before: open by default: anyone who reached it could PUT /config to NONE, register
    an incompatible version or hard-delete subjects."""
    server = RegistryProcess(tmp_path / "open.db", host="0.0.0.0").start(check=False)
    try:
        assert httpx.get(f"{server.url}/subjects").json() == []  # reads stay open
        changes = [
            httpx.post(f"{server.url}/subjects/s-value/versions", json={"schema": V1}),
            httpx.put(f"{server.url}/config", json={"compatibility": "NONE"}),
            httpx.delete(f"{server.url}/subjects/s-value?permanent=true"),
            httpx.put(f"{server.url}/config/s-value", json={"compatibility": "NONE"}),
        ]
        for answer in changes:
            assert answer.status_code == 403 and "--allow-anonymous-writes" in answer.json()["message"]
        lookup = httpx.post(f"{server.url}/subjects/s-value", json={"schema": V1})
        assert lookup.status_code == 404  # a lookup is a read (this subject does not exist)
    finally:
        server.stop()
    assert server.proc is not None and server.proc.stderr is not None
    assert "beyond loopback with no authentication: read-only for everyone" in server.proc.stderr.read().decode()


def test_allow_anonymous_writes_opens_it_and_says_so(tmp_path: Any) -> None:
    server = RegistryProcess(tmp_path / "w.db", host="0.0.0.0", extra=["--allow-anonymous-writes"]).start()
    try:
        assert client(server).register_schema("s-value", Schema(V1, "AVRO")) == 1
    finally:
        server.stop()
    assert server.proc is not None and server.proc.stderr is not None
    assert "anyone who reaches it can change schemas" in server.proc.stderr.read().decode()


def test_idle_and_half_open_connections_are_closed_and_bounded(tmp_path: Any) -> None:
    """Before: 400 half-open connections were all still open after 70 s."""
    import socket

    server = RegistryProcess(tmp_path / "c.db", extra=["--idle-timeout", "1.5", "--max-connections", "20"]).start()
    sockets = []
    try:
        for _ in range(30):  # half-open: a request line, never finished
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /subjects HTTP/1.1\r\nHost: x\r\n")
            sockets.append(s)
        time.sleep(0.3)
        closed_at_once = sum(_closed(s) for s in sockets)
        assert closed_at_once >= 10  # beyond the bound: closed as they came
        time.sleep(3.0)
        assert all(_closed(s) for s in sockets)  # silent: closed after the idle timeout
        assert httpx.get(f"{server.url}/subjects", timeout=2).json() == []  # and it serves on
    finally:
        for s in sockets:
            s.close()
        server.stop()


def _closed(sock: Any) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
