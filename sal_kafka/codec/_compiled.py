"""Generate a per-topic Avro encoder, decoder and strict checker as Python source.

The generated code is straight-line: runs of fixed-width fields (float,
double, boolean) are packed or unpacked by one `struct.Struct` call, int
and long fields are zig-zag varints (read inline), strings are
length-prefixed, and an array of ``Count`` floats is one struct call. The
bytes equal fastavro's for every valid record.

The fast paths assume the shapes the schema promises (arrays of exactly
``Count`` items, one block per array); anything else falls back to general
helpers, so any valid Avro is read and any valid record is written.
"""

from __future__ import annotations

import keyword
import os
import struct
import sys
from collections.abc import Callable
from typing import Any

import attrs

from .._util import compile_generated
from ..schemas._model import FieldInfo, TopicInfo
from ..schemas._saltypes import AVRO_RANGES, INT_RANGES, SAL_TYPE_TABLE
from . import _runtime as rt

try:  # the native core, built by the package's build where a C compiler is present
    if os.environ.get("SAL_KAFKA_NATIVE", "1") == "0":
        raise ImportError("SAL_KAFKA_NATIVE=0")
    from . import _native  # type: ignore[attr-defined]
except ImportError:
    _native = None

#: Whether the native core is built and used (``SAL_KAFKA_NATIVE=0`` turns it off).
NATIVE: bool = _native is not None

__all__ = ["CompiledCodec", "compile_codec", "compile_numpy_decoders", "codec_source", "NATIVE"]

_LITTLE_ENDIAN = sys.byteorder == "little"
# struct codes of the SAL type table: the Avro encoding of fixed-width types
# (float, double, boolean), and for integers the code that checks the exact range
_FIXED_CODES = {t.idl: t.struct for t in SAL_TYPE_TABLE if t.fixed_width and t.struct}
_INT_CODES = {t.idl: t.struct for t in SAL_TYPE_TABLE if t.is_int and t.struct}


@attrs.frozen
class CompiledCodec:
    """The generated functions of one topic.

    Attributes
    ----------
    encode_dict, encode_object : callable
        ``record -> bytes`` for a dict, or an object with attributes.
    decode_dict : callable
        ``bytes -> dict``.
    decode_into : callable
        ``(bytes, make) -> make(**fields)``, e.g. a data class.
    encode_strict_dict, encode_strict_object : callable
        The encoders fused with the checks of ``strict`` validation; they
        raise on anything it rejects (the message comes from `explain`).
    source : str
        The generated source, for inspection.
    native : bool
        Whether the functions are the native core's (`_native.c`), which hands
        anything but the common case to the generated Python functions.
    """

    encode_dict: Callable[[Any], bytes]
    encode_object: Callable[[Any], bytes]
    decode_dict: Callable[[bytes], dict[str, Any]]
    decode_into: Callable[[bytes, Callable[..., Any]], Any]
    encode_strict_dict: Callable[[Any], bytes]
    encode_strict_object: Callable[[Any], bytes]
    source: str
    native: bool = False


def _is_plain(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


class _Gen:
    """Accumulates generated lines and the constants they refer to."""

    def __init__(self, topic: TopicInfo, arrays: str = "list") -> None:
        self.topic = topic
        self.arrays = arrays
        self.fields = list(topic.fields.values())
        self.consts: dict[str, Any] = {
            "_wl": rt.write_long,
            "_ws": rt.write_string,
            "_wla": rt.write_long_array,
            "_wba": rt.write_bool_array,
            "_rl": rt.read_long,
            "_rs": rt.read_string,
            "_ra": rt.read_array,
            "_ca": rt.continue_array,
            "_lr": rt.long_reader,
            "_br": rt.bool_reader,
            "_sr": rt.string_reader,
            "_cba": rt.check_bool_array,
            "_Corrupt": rt.CorruptDataError,
            "_struct_error": struct.error,
            "_bool": bool,
        }
        self._n = 0

    def const(self, prefix: str, value: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.consts[name] = value
        return name

    # ------------------------------------------------------------------ encoder

    def _get(self, f: FieldInfo, style: str) -> str:
        if style == "dict":
            return f"r[{f.name!r}]"
        return f"r.{f.name}" if _is_plain(f.name) else f"getattr(r, {f.name!r})"

    def _scalar_writer(self, f: FieldInfo, value: str) -> str:
        if f.sal_type in ("float", "double"):
            return f"{self.const('p', struct.Struct('<' + _FIXED_CODES[f.sal_type]).pack)}({value})"
        if f.sal_type == "boolean":
            return f'(b"\\x01" if {value} else b"\\x00")'
        if f.sal_type == "string":
            return f"_ws({value})"
        return f"_wl({value})"

    def _array_writer(self, f: FieldInfo, value: str) -> str:
        if f.sal_type in ("float", "double"):
            writer = rt.fixed_array_writer(f.count, _FIXED_CODES[f.sal_type])
            return f"{self.const('fa', writer)}({value})"
        if f.sal_type == "boolean":
            return f"{self.const('ba', rt.bool_array_writer(f.count))}({value})"
        lo, hi = AVRO_RANGES[f.type_info.avro]  # whatever the mode, never beyond the Avro type
        return f"{self.const('la', rt.long_array_writer(f.count, lo, hi))}({value})"

    def _write_parts(self, value: Callable[[FieldInfo], str]) -> list[str]:
        """Expressions whose bytes, joined, are the record; ``value(f)`` reads a field."""
        parts: list[str] = []
        run: list[FieldInfo] = []

        def flush() -> None:
            if run:
                fmt = "<" + "".join(_FIXED_CODES[f.sal_type] for f in run)
                pack = self.const("p", struct.Struct(fmt).pack)
                parts.append(f"{pack}({', '.join(value(f) for f in run)})")
                run.clear()

        for f in self.fields:
            if f.count == 1 and not f.nullable and f.sal_type in _FIXED_CODES:
                run.append(f)
                continue
            flush()
            if f.count > 1:
                parts.append(self._array_writer(f, value(f)))
            elif f.nullable:
                write = self._scalar_writer(f, "x")
                parts.append(f'(b"\\x00" if (x := {value(f)}) is None else b"\\x02" + {write})')
            else:
                parts.append(self._scalar_writer(f, value(f)))
        flush()
        return ["    return b''.join(("] + [f"        {p}," for p in parts] + ["    ))"]

    def encoder(self, style: str) -> list[str]:
        """The encoder without validation. Still, whatever the mode, it writes nothing
        the schema does not allow: unknown keys (dicts), Avro ints beyond 32 bits and
        arrays of another length than Count are refused (one C-level check each)."""
        lines = [f"def encode_{style}(r):"]
        if style == "dict":  # every field is read below: equal sizes mean no unknown key
            lines.append(f"    if len(r) != {len(self.fields)}: raise _Corrupt('fields')")
        ints = [f for f in self.fields if f.count == 1 and not f.nullable and f.type_info.avro == "int"]
        if ints:
            pack = self.const("ai", struct.Struct("<" + "i" * len(ints)).pack)
            lines.append(f"    {pack}({', '.join(self._get(f, style) for f in ints)})")
        return lines + self._write_parts(lambda f: self._get(f, style))

    # ------------------------------------------------------------------ strict encoder

    def strict_encoder(self, style: str) -> list[str]:
        """The encoder fused with the checks of ``strict``.

        Each field is read once into a local. The types of all plain scalars
        are compared with the expected ones in one C-level tuple comparison;
        only a mismatch (an int given for a float, a numpy scalar, or a real
        error) runs the field-by-field check, which decides. Int ranges are
        checked by one struct call with the SAL types' formats; float32 range
        and non-numbers by the encoder's own struct calls.
        """
        index = {f.name: i for i, f in enumerate(self.fields)}

        def local(f: FieldInfo) -> str:
            return f"v{index[f.name]}"

        lines = [f"def encode_strict_{style}(r):"]
        if style == "dict":
            # with every expected key read below, equal sizes mean no unknown key
            lines.append(f"    if len(r) != {len(self.fields)}: raise _Corrupt('fields')")
        lines += [f"    {local(f)} = {self._get(f, style)}" for f in self.fields]
        scalars = [f for f in self.fields if f.count == 1 and not f.nullable]
        if scalars:
            types = self.const("types", tuple(f.python_type for f in scalars))
            values = ", ".join(local(f) for f in scalars)
            lines.append(f"    if tuple(map(type, ({values},))) != {types}: scalar_types_{style}(r)")
        ints = [f for f in scalars if f.sal_type in INT_RANGES]
        if ints:
            fmt = "<" + "".join(_INT_CODES[f.sal_type] for f in ints)
            pack = self.const("ci", struct.Struct(fmt).pack)
            lines.append(f"    {pack}({', '.join(local(f) for f in ints)})")
        for f in scalars:
            if f.max_length:
                lines.append(f"    if len({local(f)}) > {f.max_length}: raise _Corrupt({f.name!r})")
        for f in self.fields:
            value = local(f)
            if f.count > 1:
                if f.sal_type in INT_RANGES:
                    pack = self.const("ck", rt.exact_array_checker(f.count, _INT_CODES[f.sal_type]))
                    lines.append(f"    {pack}(*{value})")
                elif f.sal_type == "boolean":
                    lines.append(f"    if not _cba({value}, {f.count}): raise _Corrupt({f.name!r})")
                else:  # the writer's exact-count struct call checks the items
                    lines.append(f"    if len({value}) != {f.count}: raise _Corrupt({f.name!r})")
            elif f.nullable:
                lines += self._nullable_check(f, value)
        lines += self._write_parts(local)
        return lines + [""] + self._scalar_types(style, scalars)

    def _scalar_types(self, style: str, scalars: list[FieldInfo]) -> list[str]:
        """Field-by-field type check of plain scalars (the slow path of ``strict``)."""
        lines = [f"def scalar_types_{style}(r):"]
        for f in scalars:
            lines.append(f"    x = {self._get(f, style)}")
            if f.sal_type == "boolean":
                cond = "x is not True and x is not False"
            elif f.sal_type == "string":
                cond = "type(x) is not str"
            elif f.sal_type in INT_RANGES:
                cond = "type(x) is bool or not hasattr(x, '__index__')"
            else:
                cond = "type(x) is bool or type(x) is str"
            lines.append(f"    if {cond}: raise _Corrupt({f.name!r})")
        if len(lines) == 1:
            lines.append("    pass")
        return lines

    def _nullable_check(self, f: FieldInfo, value: str) -> list[str]:
        lines = [f"    x = {value}"]
        if f.sal_type == "boolean":
            cond = "x is not True and x is not False"
        elif f.sal_type == "string":
            cond = "type(x) is not str"
        else:
            cond = "type(x) is bool"
        lines.append(f"    if x is not None and ({cond}): raise _Corrupt({f.name!r})")
        if f.sal_type in INT_RANGES:
            pack = self.const("ci", struct.Struct("<" + _INT_CODES[f.sal_type]).pack)
            lines.append(f"    if x is not None: {pack}(x)")
        return lines

    # ------------------------------------------------------------------ decoder

    def _read_long_lines(self, target: str) -> list[str]:
        # one- and two-byte varints inline (array counts of 64..8191 take two)
        return [
            "b = data[pos]",
            "if b < 128:",
            f"    {target} = (b >> 1) ^ -(b & 1); pos += 1",
            "elif data[pos + 1] < 128:",
            "    b = (b & 127) | (data[pos + 1] << 7)",
            f"    {target} = (b >> 1) ^ -(b & 1); pos += 2",
            "else:",
            f"    {target}, pos = _rl(data, pos)",
        ]

    def _read_scalar(self, f: FieldInfo, target: str) -> list[str]:
        if f.sal_type in _FIXED_CODES:
            unpack = self.const("u", struct.Struct("<" + _FIXED_CODES[f.sal_type]).unpack_from)
            size = struct.calcsize(_FIXED_CODES[f.sal_type])
            return [f"{target}, = {unpack}(data, pos); pos += {size}"]
        if f.sal_type == "string":
            return [
                *self._read_long_lines("n"),
                "end = pos + n",
                "if n < 0 or end > size: raise _Corrupt('string runs past the end')",
                f"{target} = data[pos:end].decode(); pos = end",
            ]
        return self._read_long_lines(target)

    def _read_array(self, f: FieldInfo, target: str) -> list[str]:
        lines = self._read_long_lines("n")
        if f.sal_type in ("float", "double"):
            code = _FIXED_CODES[f.sal_type]
            reader = self.const("fr", rt.fixed_reader(code))
            nbytes = f.count * struct.calcsize(code)
            items = target  # what further blocks, if any, are appended to
            if self.arrays == "numpy":  # a view of the message's bytes: no copy, no float objects
                first = f"    {target} = _frombuffer(data, {self._dtype(f)}, {f.count}, pos); pos += {nbytes}"
                items = f"{target}.tolist()"
            elif _LITTLE_ENDIAN:  # Avro is little-endian: cast the buffer, no tuple in between
                first = f"    {target} = view[pos:pos + {nbytes}].cast({code!r}).tolist(); pos += {nbytes}"
            else:
                unpack = self.const("ua", struct.Struct(f"<{f.count}{code}").unpack_from)
                first = f"    {target} = list({unpack}(data, pos)); pos += {nbytes}"
            lines += [
                f"if n == {f.count}:",
                first,
                *self._after_first_block(target, reader, items),
                "else:",
                f"    {target}, pos = _ra(data, pos, n, {reader})",
            ]
            return lines
        avro = f.type_info.avro  # the item reader follows the Avro encoding
        reader = "_br" if avro == "boolean" else "_sr" if avro == "string" else "_lr"
        if f.sal_type == "string":
            return lines + [f"{target}, pos = _ra(data, pos, n, {reader})"]
        # One block of Count one-byte items (ints -64..63, booleans) is read
        # with C-level slicing; anything else by the general reader.
        limit, convert = (
            ("2", "list(map(bool, chunk))")
            if f.sal_type == "boolean"
            else (
                "128",
                "[(b >> 1) ^ -(b & 1) for b in chunk]",
            )
        )
        lines += [
            f"chunk = data[pos:pos + {f.count}]",
            f"if (n == {f.count} and len(chunk) == {f.count} and max(chunk) < {limit} and data[pos + {f.count}] == 0):",
            f"    {target} = {convert}; pos += {f.count + 1}",
            "elif n > 0:",
            f"    {target} = []; pos = {reader}(data, pos, n, {target})",
            *self._after_first_block(target, reader),
            "else:",
            f"    {target}, pos = _ra(data, pos, n, {reader})",
        ]
        return lines

    @staticmethod
    def _after_first_block(target: str, reader: str, items: str | None = None) -> list[str]:
        """After one block read by a fast path: the end marker, or more blocks
        (appended to ``items``, a list expression; ``target`` by default)."""
        return [
            "    if data[pos]:",
            f"        {target}, pos = _ca(data, pos, {items or target}, {reader})",
            "    else:",
            "        pos += 1",
        ]

    def decoder_body(self) -> list[str]:
        body: list[str] = ["size = len(data)"]  # pos = 0 is set before the try
        casts = _LITTLE_ENDIAN and self.arrays == "list"  # the float arrays' reads use the view
        if casts and any(f.count > 1 and f.sal_type in ("float", "double") for f in self.fields):
            body.append("view = memoryview(data)")
        run: list[tuple[int, FieldInfo]] = []

        def flush() -> None:
            if run:
                fmt = "<" + "".join(_FIXED_CODES[f.sal_type] for _, f in run)
                unpack = self.const("u", struct.Struct(fmt).unpack_from)
                targets = ", ".join(f"v{i}" for i, _ in run)
                body.append(f"{targets}, = {unpack}(data, pos); pos += {struct.calcsize(fmt)}")
                run.clear()

        for i, f in enumerate(self.fields):
            if f.count == 1 and not f.nullable and f.sal_type in _FIXED_CODES:
                run.append((i, f))
                continue
            flush()
            if f.count > 1:
                body += self._read_array(f, f"v{i}")
                if self.arrays == "numpy":  # what the paths above left as a list
                    body.append(f"if type(v{i}) is list: v{i} = _asarray(v{i}, {self._dtype(f)})")
            elif f.nullable:
                body += [
                    "b = data[pos]; pos += 1",
                    "if b == 0:",
                    f"    v{i} = None",
                    "elif b == 2:",
                ]
                body += ["    " + line for line in self._read_scalar(f, f"v{i}")]
                body += ["else:", "    raise _Corrupt(f'union branch byte {b} is neither 0 nor 2')"]
            else:
                body += self._read_scalar(f, f"v{i}")
        flush()
        body.append("if pos != size: raise _Corrupt(f'{size - pos} bytes after the record')")
        return body

    def decoder(self, name: str, args: str, result: str) -> list[str]:
        lines = [f"def {name}({args}):", "    pos = 0", "    try:"]
        lines += ["        " + line for line in self.decoder_body()]
        lines += [
            "    except (_struct_error, IndexError, UnicodeDecodeError, OverflowError, ValueError, _Corrupt) as exc:",
            "        raise _Corrupt(f'{exc} (at byte {pos} of {len(data)})') from None",
            f"    return {result}",
        ]
        return lines

    def _dtype(self, f: FieldInfo) -> str:
        """Name of the constant holding ``f``'s numpy dtype (one per SAL type)."""
        import numpy

        self.consts.setdefault("_frombuffer", numpy.frombuffer)
        self.consts.setdefault("_asarray", numpy.asarray)
        name = "_dt_" + f.sal_type.replace(" ", "_")
        self.consts.setdefault(name, numpy.dtype(f.type_info.numpy))
        return name

    def decoders_source(self) -> str:
        """Only the two decoders (the ``arrays="numpy"`` variant needs no encoders)."""
        return "\n\n".join("\n".join(b) for b in self._decoders()) + "\n"

    def _decoders(self) -> list[list[str]]:
        names = [f.name for f in self.fields]
        as_dict = "{" + ", ".join(f"{n!r}: v{i}" for i, n in enumerate(names)) + "}"
        if all(_is_plain(n) for n in names):
            as_call = "make(" + ", ".join(f"{n}=v{i}" for i, n in enumerate(names)) + ")"
        else:
            as_call = f"make(**{as_dict})"
        return [self.decoder("decode_dict", "data", as_dict), self.decoder("decode_into", "data, make", as_call)]

    def source(self) -> str:
        blocks = [
            self.encoder("dict"),
            self.encoder("object"),
            self.strict_encoder("dict"),
            self.strict_encoder("object"),
            *self._decoders(),
        ]
        return "\n\n".join("\n".join(b) for b in blocks) + "\n"


def codec_source(topic: TopicInfo) -> tuple[str, dict[str, Any]]:
    """The generated source of ``topic``'s codec and the constants it needs."""
    gen = _Gen(topic)
    return gen.source(), gen.consts


def _compile(topic: TopicInfo, source: str, namespace: dict[str, Any], what: str) -> dict[str, Any]:
    return compile_generated(source, f"<sal_kafka {what} {topic.full_name}>", namespace)


def compile_codec(topic: TopicInfo, native: bool = True) -> CompiledCodec:
    """Generate and compile the codec functions of ``topic``.

    With ``native`` and the native core built (`NATIVE`), the functions are
    the core's, each handing what it does not take to the generated Python
    function of the same name; otherwise the generated Python functions.
    """
    source, namespace = codec_source(topic)
    namespace = _compile(topic, source, namespace, "codec")
    python = CompiledCodec(
        encode_dict=namespace["encode_dict"],
        encode_object=namespace["encode_object"],
        decode_dict=namespace["decode_dict"],
        decode_into=namespace["decode_into"],
        encode_strict_dict=namespace["encode_strict_dict"],
        encode_strict_object=namespace["encode_strict_object"],
        source=source,
    )
    if not (native and _native is not None):
        return python
    spec = _native_spec(topic)
    if spec is None:
        return python
    program = _native.Program(spec, [getattr(python, name) for name in _FALLBACKS])
    return CompiledCodec(
        encode_dict=program.encode_dict,
        encode_object=program.encode_object,
        decode_dict=program.decode_dict,
        decode_into=program.decode_into,
        encode_strict_dict=program.encode_strict_dict,
        encode_strict_object=program.encode_strict_object,
        source=source,
        native=True,
    )


# the native core's field kinds: Avro primitives in the order of the enum atop _native.c
_KINDS = {avro: kind for kind, avro in enumerate(("boolean", "int", "long", "float", "double", "string"))}
# the order of Program's fallbacks
_FALLBACKS = (
    "encode_dict",
    "encode_object",
    "encode_strict_dict",
    "encode_strict_object",
    "decode_dict",
    "decode_into",
)


def _native_spec(topic: TopicInfo) -> list[tuple[str, int, int, bool, int, int, int]] | None:
    """The native core's field table of ``topic``, or None if a field is of a
    shape it does not take (an array of strings: the Python engine does)."""
    spec = []
    for f in topic.fields.values():
        avro = f.type_info.avro
        if f.count > 1 and avro == "string":
            return None
        lo, hi = INT_RANGES.get(f.sal_type, (0, 0))
        # strict's string bound applies to plain scalars only, as in the generated code
        max_length = f.max_length if (f.count == 1 and not f.nullable and f.max_length) else 0
        spec.append((f.name, _KINDS[avro], f.count, f.nullable, lo, hi, max_length))
    return spec


def compile_numpy_decoders(topic: TopicInfo) -> tuple[Callable[[bytes], Any], Callable[..., Any]]:
    """``decode_dict`` and ``decode_into`` with arrays as numpy arrays: float
    and double arrays are read-only views of the message bytes."""
    gen = _Gen(topic, arrays="numpy")
    namespace = _compile(topic, gen.decoders_source(), gen.consts, "numpy decoders")
    return namespace["decode_dict"], namespace["decode_into"]
