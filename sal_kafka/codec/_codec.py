"""Encode and decode the records of one topic: Avro bodies and framed messages."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import fastavro
import msgspec
from fastavro.read import SchemaResolutionError

from .._util import build_once
from ..classes._build import attrs_class, dataclass_class, msgspec_class
from ..errors import CodecError, ConfigError, UnknownSchemaError, ValidationError
from ..options import ARRAYS, ENGINES, Arrays, Engine, Validation
from ..schemas._model import TopicInfo
from . import _runtime
from ._compiled import CompiledCodec, compile_codec, compile_numpy_decoders
from ._framing import HEADER_SIZE, frame, schema_id_of, unframe
from ._records import as_dict
from ._validation import check_mode, custom_problem, explain

__all__ = ["Codec", "Engine", "Arrays", "frame", "unframe", "schema_id_of", "HEADER_SIZE", "compiled_codec"]

_lock = threading.Lock()
_compiled: dict[tuple[Any, ...], CompiledCodec] = {}
_numpy_decoders: dict[tuple[Any, ...], tuple[Callable[..., Any], Callable[..., Any]]] = {}


def _key(topic: TopicInfo) -> tuple[Any, ...]:
    return (topic.component_name, topic.sal_name, tuple(topic.fields.values()))


def compiled_codec(topic: TopicInfo, native: bool = True) -> CompiledCodec:
    """The codec functions of ``topic`` (cached per topic definition): the native
    core's where it is built and ``native``, else the generated Python ones."""
    return build_once(_compiled, _lock, (native, *_key(topic)), lambda: compile_codec(topic, native))


def _require_numpy() -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise ImportError("arrays='numpy' needs numpy: pip install 'sal-kafka[numpy]'") from None


def _numpy_fns(topic: TopicInfo) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``decode_dict`` and ``decode_into`` of ``topic`` giving numpy arrays (cached)."""
    _require_numpy()
    return build_once(_numpy_decoders, _lock, _key(topic), lambda: compile_numpy_decoders(topic))


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`(?: - at `(?P<path>[^`]*)`)?$")


def _msgspec_message(exc: msgspec.ValidationError) -> str:
    """msgspec's message in this library's form (no backticks; unknown fields alike)."""
    text = str(exc)
    match = _UNKNOWN_FIELD.match(text)
    if match:
        return f"Unknown field {match['name']!r} - at {match['path'] or '$'}"
    return text.replace("`", "")


class Codec:
    """Avro codec of one topic.

    Parameters
    ----------
    topic : TopicInfo
        The topic; its `TopicInfo.avro_schema` is the reader and writer schema.
    engine : {"compiled", "python", "fastavro"}
        ``compiled`` (default): the per-topic compiled codec, run by the
        native core (a C extension built at install, `sal_kafka.codec.NATIVE`)
        where it is built, else by generated Python; ``python``: the generated
        Python alone; ``fastavro``: the reference implementation. All give the
        same bytes.
    schema_id : int, optional
        Registry id of the topic's schema, for `encode_message` and
        `decode_message`.
    arrays : {"list", "numpy"}
        What decoding gives for array fields: lists (default), or numpy arrays
        of the SAL type's dtype (``float`` is ``float32``). Float and double
        arrays are then read-only views of the message's bytes: no copy and
        no Python float per item, about 3x faster on a 3 kB telemetry record.
        Call ``.copy()`` on one to change it. Needs numpy.

    Examples
    --------
    >>> codec = Codec(ComponentInfo.load("KTest")["evt_summaryState"])
    >>> body = codec.encode(record, validation="strict")
    >>> codec.decode(body) == record
    True
    """

    def __init__(
        self,
        topic: TopicInfo,
        engine: Engine = "compiled",
        schema_id: int | None = None,
        arrays: Arrays = "list",
    ) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
        if arrays not in ARRAYS:
            raise ConfigError(f"unknown arrays {arrays!r}; expected one of {', '.join(ARRAYS)}")
        self.topic = topic
        self.engine = engine
        self.schema_id = schema_id
        self.arrays = arrays
        # Framing headers of the ids whose messages the fast path can read: this
        # codec's own, and any writer id found to have the same binary layout.
        self._fast_headers = {frame(schema_id, b"")} if schema_id is not None else set()
        self._other_ids: set[int] = set()  # writer ids that need Avro resolution
        self._parsed_schema: Any = None
        self._resolved: dict[str, Any] = {}
        if engine != "fastavro":
            self._fns: CompiledCodec | None = compiled_codec(topic, native=engine == "compiled")
            if arrays == "numpy":
                self._decode_dict, self._decode_into = _numpy_fns(topic)
            else:
                self._decode_dict, self._decode_into = self._fns.decode_dict, self._fns.decode_into
        else:  # fastavro decodes; _as_arrays converts
            self._fns = None
            if arrays == "numpy":
                _require_numpy()

    @property
    def native(self) -> bool:
        """Whether this codec's encoders and list decoders run in the native core."""
        return self._fns is not None and self._fns.native

    def __repr__(self) -> str:
        arrays = "" if self.arrays == "list" else f", arrays={self.arrays!r}"
        return f"Codec({self.topic.full_name}, engine={self.engine!r}, schema_id={self.schema_id}{arrays})"

    # ------------------------------------------------------------------ encoding

    def encode(self, record: Any, validation: Validation = "none") -> bytes:
        """Encode a record into an Avro body.

        Parameters
        ----------
        record : dict, msgspec.Struct or attrs instance
            All fields of the topic, private ones included.
        validation : Validation
            One of `sal_kafka.Validation`.

        Raises
        ------
        ValidationError
            The record breaks the mode's rules, or cannot be encoded; the
            message names the topic, the field path and index, what was
            expected and what was got.
        """
        fns = self._fns
        if fns is not None and type(record) is dict:
            # the hot path, kept one call deep
            try:
                if validation == "none":
                    return fns.encode_dict(record)
                if validation == "strict":
                    return fns.encode_strict_dict(record)
            except Exception as exc:
                raise self._failure(record, exc, strict=validation == "strict") from None
        if validation in ("none", "strict"):
            return self._encode_or_explain(record, strict=validation == "strict")
        return self._encode_or_explain(self._prepare(record, check_mode(validation)), strict=False)

    def _encode_raw(self, record: Any, strict: bool) -> bytes:
        """Encode any accepted kind of record; ``strict`` runs the fused checks."""
        fns = self._fns
        if fns is None:
            data = as_dict(record)
            if strict and (problem := explain(self.topic, data, strict=True)):
                raise ValidationError(problem)
            return self._fastavro_encode(data)
        if isinstance(record, Mapping):
            data = record if type(record) is dict else dict(record)
            return (fns.encode_strict_dict if strict else fns.encode_dict)(data)
        return (fns.encode_strict_object if strict else fns.encode_object)(record)

    def _encode_or_explain(self, record: Any, strict: bool) -> bytes:
        try:
            return self._encode_raw(record, strict)
        except ValidationError:
            raise
        except Exception as exc:
            raise self._failure(record, exc, strict) from None

    def _failure(self, record: Any, exc: Exception, strict: bool) -> ValidationError:
        """Turn a failed fast path into a message that names the exact field."""
        problem = explain(self.topic, record, strict=strict)
        if problem is None and not strict:
            problem = explain(self.topic, record, strict=True)
        if problem is None:
            problem = f"{self.topic.full_name}: cannot encode: {type(exc).__name__}: {exc}"
        return ValidationError(problem)

    def _prepare(self, record: Any, mode: str) -> Any:
        """Run a non-strict mode's checks; return what is to be encoded."""
        if mode == "custom":
            data = as_dict(record)
            problem = custom_problem(self.topic, data)
            if problem:
                raise ValidationError(problem)
            return data
        family, _, decode = mode.partition("_and_")
        data = as_dict(record)
        obj: Any
        try:
            if family == "msgspec":
                obj = msgspec.convert(data, msgspec_class(self.topic))
                return msgspec.structs.asdict(obj) if decode else data
            if family == "attrs":
                obj = attrs_class(self.topic)(**data)
                return attrs.asdict(obj, recurse=False) if decode else data
            obj = dataclass_class(self.topic)(**data)
            return vars(obj) if decode else data
        except ValidationError:
            raise
        except msgspec.ValidationError as exc:
            raise ValidationError(f"{self.topic.full_name}: {_msgspec_message(exc)}") from None
        except (TypeError, ValueError) as exc:
            problem = explain(self.topic, data, strict=True) or f"{self.topic.full_name}: {exc}"
            raise ValidationError(problem) from None

    def validate(self, record: Any, validation: Validation = "strict") -> None:
        """Check ``record`` in a validation mode without keeping the bytes."""
        self.encode(record, validation)

    # ------------------------------------------------------------------ decoding

    def decode(self, data: bytes, cls: Callable[..., Any] | None = None) -> Any:
        """Decode an Avro body written with this topic's schema.

        Parameters
        ----------
        data : bytes
            The Avro body (no wire-format header).
        cls : callable, optional
            Build the result with ``cls(**fields)``, e.g. the topic's msgspec
            or attrs class; a dict by default.

        Raises
        ------
        CodecError
            If the body is truncated, corrupt, or has bytes after the record.
        """
        try:
            if self._fns is None:
                result = self._as_arrays(self._fastavro_decode(data, None))
                return result if cls is None else cls(**result)
            if cls is None:
                return self._decode_dict(data)
            return self._decode_into(data, cls)
        except _runtime.CorruptDataError as exc:
            raise CodecError(f"{self.topic.full_name}: corrupt Avro body: {exc}") from None

    def decode_with_schema(self, data: bytes, writer_schema: Mapping[str, Any]) -> dict[str, Any]:
        """Decode a body written with another version of the schema (Avro resolution).

        Fields the writer lacks take the reader's defaults; fields the reader
        lacks are dropped, as Avro schema resolution specifies.
        """
        return self._as_arrays(self._fastavro_decode(data, writer_schema))

    def _as_arrays(self, record: dict[str, Any]) -> dict[str, Any]:
        """The fastavro paths' lists as numpy arrays, when this codec gives those."""
        if self.arrays == "numpy":
            import numpy

            for f in self.topic.fields.values():
                if f.count > 1 and type(record.get(f.name)) is list:
                    record[f.name] = numpy.asarray(record[f.name], f.type_info.numpy)
        return record

    # ------------------------------------------------------------------ wire format

    def encode_message(self, record: Any, validation: Validation = "none", schema_id: int | None = None) -> bytes:
        """Encode and frame: ``0x00``, the 4-byte schema id, the Avro body."""
        sid = self.schema_id if schema_id is None else schema_id
        if sid is None:
            raise UnknownSchemaError(f"{self.topic.full_name}: no schema id to frame the message with")
        return frame(sid, self.encode(record, validation))

    def decode_message(
        self,
        data: bytes,
        cls: Callable[..., Any] | None = None,
        writer_schema: Callable[[int], Mapping[str, Any] | None] | None = None,
    ) -> Any:
        """Unframe and decode a message.

        A message written with this codec's `schema_id` is decoded by the fast
        path; another id is resolved with ``writer_schema(id)`` (e.g. a
        registry lookup) and read by Avro schema resolution.

        Raises
        ------
        WireFormatError
            For a wrong magic byte or a message shorter than 5 bytes.
        UnknownSchemaError
            For an id that is neither this codec's nor known to ``writer_schema``.
        CodecError
            For a corrupt body.
        """
        if data[:5] in self._fast_headers:  # the usual case, without unframing
            return self.decode(data[5:], cls)
        sid, body = unframe(data)  # not this codec's own id: that header is a fast one
        if self.schema_id is None and writer_schema is None:
            return self.decode(body, cls)
        schema = writer_schema(sid) if writer_schema is not None else None
        if schema is None:
            raise UnknownSchemaError(f"{self.topic.full_name}: unknown schema id {sid}")
        if sid not in self._other_ids:
            if self._same_layout(schema):
                # e.g. a reader that started before the writer registered the
                # schema: same bytes, so no resolution (it costs 6x the decode)
                self._fast_headers.add(frame(sid, b""))
                return self.decode(body, cls)
            self._other_ids.add(sid)
        result = self.decode_with_schema(body, schema)
        return result if cls is None else cls(**result)

    def _same_layout(self, writer_schema: Mapping[str, Any]) -> bool:
        """Whether bodies written with ``writer_schema`` are read as this topic's
        without resolution: equal Avro Parsing Canonical Forms (which ignore
        docs, defaults and other attributes that do not change the bytes)."""
        ours = fastavro.schema.to_parsing_canonical_form(self.topic.avro_schema)
        try:
            return bool(fastavro.schema.to_parsing_canonical_form(dict(writer_schema)) == ours)
        except Exception:  # a schema fastavro cannot read: resolution reports it
            return False

    # ------------------------------------------------------------------ fastavro engine

    def _schema(self) -> Any:
        if self._parsed_schema is None:
            self._parsed_schema = fastavro.parse_schema(self.topic.avro_schema)
        return self._parsed_schema

    def _fastavro_encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._schema(), record)
        return buffer.getvalue()

    def _fastavro_decode(self, data: bytes, writer_schema: Mapping[str, Any] | None) -> Any:
        buffer = io.BytesIO(data)
        try:
            if writer_schema is None:
                result = fastavro.schemaless_reader(buffer, self._schema(), None)
            else:
                # keyed by the schema's text: one parse per writer schema (a
                # handful per topic), whatever object the caller passes
                key = json.dumps(writer_schema, sort_keys=True)
                parsed = self._resolved.get(key)
                if parsed is None:
                    parsed = self._resolved[key] = fastavro.parse_schema(dict(writer_schema))
                result = fastavro.schemaless_reader(buffer, parsed, self._schema())
        except SchemaResolutionError:
            raise CodecError(
                f"{self.topic.full_name}: the writer's schema cannot be read as this topic's "
                "(Avro schema resolution failed)"
            ) from None
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, TypeError, KeyError) as exc:
            raise CodecError(f"{self.topic.full_name}: corrupt Avro body: {str(exc)[:200]}") from None
        if buffer.tell() != len(data):
            extra = len(data) - buffer.tell()
            raise CodecError(f"{self.topic.full_name}: corrupt Avro body: {extra} bytes after the record")
        return result
