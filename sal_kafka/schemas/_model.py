"""The SAL model: components, topics, fields and enumerations.

Pure data, read-only once built. Named as in ts_xml (``ComponentInfo``,
``TopicInfo``, ``FieldInfo``) so that users of ts_xml and ts_salobj feel at
home. This module imports nothing of the library but the SAL type table and
the errors:
building a model from files is the job of the loaders (`_xml`, `_avsc`,
`_loader`), turning it into Avro the job of `_avro`. Those install
themselves in `hooks` when ``sal_kafka`` is imported, so that the
conveniences ``ComponentInfo.load`` and ``TopicInfo.avro_schema`` work
without the model depending on them.
"""

from __future__ import annotations

import collections
import enum
import importlib.util
import os
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from pathlib import Path
from typing import Any, Final

import attrs
import msgspec

from ..errors import UnknownFieldError, UnknownTopicError
from ..options import TopicKind
from ._saltypes import INT_RANGES, SAL_TYPES, SalType, sal_type

__all__ = [
    "SAL_TYPES",
    "INT_RANGES",
    "EnumInfo",
    "FieldInfo",
    "FieldMap",
    "TopicInfo",
    "TopicDef",
    "ComponentInfo",
    "PRIVATE_FIELDS",
    "ACKCMD_FIELDS",
    "default_xml_dir",
    "hooks",
]


class _Sentinel(enum.Enum):
    NO_DEFAULT = "NO_DEFAULT"
    ZERO = "ZERO"


#: Marks a field without an Avro default (only camera ``.avsc`` topics have them).
NO_DEFAULT: Final = _Sentinel.NO_DEFAULT
#: Marks a field whose default is its SAL type's zero value (the usual case).
ZERO: Final = _Sentinel.ZERO


# msgspec Structs, not attrs classes: a corpus has ~2*10^4 fields and a
# frozen Struct is built ten times faster (0.15 us against 1.5 us here), and
# gc=False keeps these acyclic leaves out of the cyclic collector's passes.
class EnumInfo(msgspec.Struct, frozen=True, gc=False):
    """An enumeration defined in the XML.

    Attributes
    ----------
    name : str
        Class name, e.g. ``SummaryState`` (the part before the first ``_``).
    members : tuple of (str, int)
        Member names (without the prefix) and values, in definition order.
    source : str
        ``file:line`` of the defining ``<Enumeration>`` element.
    """

    name: str
    members: tuple[tuple[str, int], ...]
    source: str = ""

    def as_dict(self) -> dict[str, int]:
        """Return ``{member name: value}``."""
        return dict(self.members)


class FieldInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One field of a topic.

    Attributes
    ----------
    name : str
        Field name (``EFDB_Name``).
    sal_type : str
        SAL type, one of `SAL_TYPES`.
    count : int
        Number of elements: 1 for a scalar. Always 1 for strings.
    units : str or None
        Units; ``"unitless"`` when the XML gives none. None only for camera
        ``.avsc`` fields without units.
    description : str
        Description, as written in the XML (not stripped).
    string_size : int or None
        ``IDL_Size`` of a string: the maximum length, or None (or 1) for unlimited.
    enum : EnumInfo or None
        The field's own ``<Enumeration>``, if any.
    nullable : bool
        The Avro type is ``["null", T]`` (camera ``.avsc`` fields only).
    avro_default : Any
        `ZERO` (the SAL type's zero value), `NO_DEFAULT`, or an explicit value.
    """

    name: str
    sal_type: str
    count: int = 1
    units: str | None = "unitless"
    description: str = ""
    string_size: int | None = None
    enum: EnumInfo | None = None
    nullable: bool = False
    avro_default: Any = ZERO

    @property
    def default(self) -> Any:
        """The Avro default: zero value (a tuple of them for an array), None, or `NO_DEFAULT`."""
        if self.avro_default is not ZERO:
            return self.avro_default
        zero = sal_type(self.sal_type).zero
        return (zero,) * self.count if self.count > 1 else zero

    @property
    def is_array(self) -> bool:
        """True for a field with ``count > 1``."""
        return self.count > 1

    @property
    def type_info(self) -> SalType:
        """Everything about the field's SAL type (Avro, Python, range, dtype, SQL, ...)."""
        return sal_type(self.sal_type)

    @property
    def python_type(self) -> type:
        """Python type of one element."""
        return SAL_TYPES[self.sal_type]

    @property
    def max_length(self) -> int | None:
        """Maximum string length, or None when unlimited."""
        if self.string_size is not None and self.string_size > 1:
            return self.string_size
        return None

    @property
    def int_range(self) -> tuple[int, int] | None:
        """Inclusive range of an integer field, or None."""
        return INT_RANGES.get(self.sal_type)


def _field(name: str, sal_type: str, description: str, units: str = "unitless") -> FieldInfo:
    return FieldInfo(name=name, sal_type=sal_type, description=description, units=units)


#: Private fields of every topic, in order; ``salIndex`` only on indexed components.
PRIVATE_FIELDS: Final[tuple[FieldInfo, ...]] = (
    _field("salIndex", "long", "SAL index (only present for indexed SAL components)"),
    _field("private_sndStamp", "double", "Time of instance publication", "second"),
    _field("private_rcvStamp", "double", "Time of instance reception", "second"),
    _field(
        "private_efdStamp",
        "double",
        "UTC time for EFD timestamp. An integer (the number of leap seconds) different from private_sndStamp.",
        "second",
    ),
    _field("private_kafkaStamp", "double", "TAI time at which the Kafka message was created.", "second"),
    _field("private_seqNum", "long", "Sequence number"),
    _field("private_revCode", "string", "Revision hashcode"),
    _field(
        "private_identity",
        "string",
        "Identity of publisher: SAL component name for a CSC or user@host for a user",
    ),
    _field("private_origin", "long", "Process ID of publisher"),
)

#: Public fields of the synthesized ``ackcmd`` topic.
ACKCMD_FIELDS: Final[tuple[FieldInfo, ...]] = (
    _field("ack", "long", "Acknowledgement code"),
    _field("error", "long", "An error code; only relevant if ack=FAILED"),
    _field("result", "string", "Message"),
    _field("identity", "string", "private_identity field of the command being acknowledged"),
    _field("origin", "long", "private_origin field of the command being acknowledged"),
    _field(
        "cmdtype",
        "long",
        "Index of command in alphabetical list of commands, with 0 being the first",
    ),
    _field(
        "timeout",
        "double",
        "Estimated remaining duration of command; only relevant if ack=INPROGRESS",
        "second",
    ),
)


class FieldMap(Mapping[str, FieldInfo]):
    """The fields of a topic: an ordered, read-only ``{name: FieldInfo}``.

    Topics with the same fields (a generic topic in every component) share
    one `FieldMap`, and with it what is derived from the fields (their Avro
    schemas, ...), which `derived` keeps on the map itself.
    """

    __slots__ = ("_fields", "_derived")

    def __init__(self, fields: Iterable[FieldInfo]) -> None:
        self._fields: dict[str, FieldInfo] = {f.name: f for f in fields}
        self._derived: dict[str, Any] = {}

    def __getitem__(self, name: str) -> FieldInfo:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    # the dict's own views: iterated on every hot path (codec generation, validation)
    def keys(self) -> KeysView[str]:
        return self._fields.keys()

    def values(self) -> ValuesView[FieldInfo]:
        return self._fields.values()

    def items(self) -> ItemsView[str, FieldInfo]:
        return self._fields.items()

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name, default)

    def derived(self, key: str, build: Callable[[FieldMap], Any]) -> Any:
        """``build(self)``, made once per map and kept with it (not thread-safe:
        two racing builds give equal values, one of which is kept)."""
        value = self._derived.get(key)
        if value is None:
            value = self._derived[key] = build(self)
        return value

    def __repr__(self) -> str:
        return f"FieldMap({', '.join(self._fields)})"


def private_fields(indexed: bool) -> tuple[FieldInfo, ...]:
    """Return the private fields of a topic of an (un)indexed component."""
    return PRIVATE_FIELDS if indexed else PRIVATE_FIELDS[1:]


def attr_name_of(sal_name: str) -> str:
    """Map a SAL topic name to the ts_salobj attribute name (``evt_x``, ``cmd_x``, ...)."""
    if sal_name == "ackcmd":
        return "ack_ackcmd"
    if sal_name.startswith("logevent_"):
        return "evt_" + sal_name[len("logevent_") :]
    if sal_name.startswith("command_"):
        return "cmd_" + sal_name[len("command_") :]
    return "tel_" + sal_name


@attrs.define(eq=False)
class TopicDef:
    """A topic as a definition file gives it, before it is bound to a component.

    Built by the loaders; `derived` fields maps (one per indexedness) are kept
    here, so that every component binding a generic topic shares them.
    """

    sal_name: str
    description: str | None
    items: tuple[FieldInfo, ...]
    enums: dict[str, EnumInfo]
    category: str | None
    source: str
    field_maps: dict[bool, FieldMap] = attrs.field(factory=dict, repr=False)


def _field_map(fields: FieldMap | Mapping[str, FieldInfo]) -> FieldMap:
    return fields if isinstance(fields, FieldMap) else FieldMap(fields.values())


@attrs.define(eq=False)
class TopicInfo:
    """One SAL topic of one component.

    Attributes
    ----------
    component_name : str
        SAL component name, e.g. ``MTM1M3``.
    topic_subname : str
        Sub-namespace of Kafka topic names, e.g. ``sal``.
    sal_name : str
        SAL topic name: ``command_x``, ``logevent_x``, the bare telemetry name, or ``ackcmd``.
    fields : FieldMap
        All fields in Avro order, private fields included (read-only).
    description : str or None
        Topic description; None for camera ``.avsc`` topics without one.
    indexed : bool
        Whether the component is indexed (has ``salIndex``).
    enums : dict of str to EnumInfo
        Enumerations declared inside this topic's element.
    source : str
        ``file:line`` where the topic is defined.
    """

    component_name: str
    topic_subname: str
    sal_name: str
    fields: FieldMap = attrs.field(converter=_field_map)
    description: str | None = ""
    indexed: bool = False
    enums: dict[str, EnumInfo] = attrs.field(factory=dict)
    source: str = ""
    attr_name: str = attrs.field(init=False)
    kafka_name: str = attrs.field(init=False)
    subject: str = attrs.field(init=False)
    _avro_schema: dict[str, Any] | None = attrs.field(default=None, init=False, repr=False)
    _rev_code: str | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.attr_name = attr_name_of(self.sal_name)
        self.kafka_name = f"lsst.{self.topic_subname}.{self.component_name}.{self.sal_name}"
        self.subject = f"{self.kafka_name}-value"

    @property
    def avro_subject(self) -> str:
        """Alias of `subject`, as named in ts_xml."""
        return self.subject

    @property
    def kind(self) -> TopicKind:
        """``command``, ``event``, ``telemetry`` or ``ackcmd``."""
        if self.sal_name == "ackcmd":
            return "ackcmd"
        if self.sal_name.startswith("command_"):
            return "command"
        if self.sal_name.startswith("logevent_"):
            return "event"
        return "telemetry"

    @property
    def full_name(self) -> str:
        """``Component.attr_name``, used in error messages."""
        return f"{self.component_name}.{self.attr_name}"

    @property
    def public_fields(self) -> list[str]:
        """The names of the fields a user gives: not the private ones, not ``salIndex``."""
        return [n for n in self.fields if not n.startswith("private_") and n != "salIndex"]

    def unknown_field(self, name: str) -> UnknownFieldError:
        """The error of a field name this topic does not have: the closest of its public
        fields, and how many it has (a misspelled keyword, a CLI ``FIELD=VALUE``)."""
        import difflib

        public = self.public_fields
        meant = difflib.get_close_matches(name, public, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(m) for m in meant)}? " if meant else ""
        listed = ", ".join(public) if len(public) <= 12 else ", ".join(public[:12]) + ", ..."
        return UnknownFieldError(
            f"{self.full_name} has no field {name!r}; {hint}its {len(public)} fields: {listed or '(none)'}"
        )

    @property
    def array_fields(self) -> dict[str, int]:
        """``{field name: count}`` of the array fields."""
        return {f.name: f.count for f in self.fields.values() if f.count > 1}

    @property
    def avro_schema(self) -> dict[str, Any]:
        """The Avro schema (a dict), equal to the one ts_xml's ComponentInfo makes."""
        if self._avro_schema is None:
            self._avro_schema = hooks.require("topic_schema")(self)
        return self._avro_schema

    @property
    def rev_code(self) -> str:
        """First 8 hex digits of the md5 of ``json.dumps(avro_schema, indent=4)``."""
        if self._rev_code is None:
            self._rev_code = hooks.require("rev_code")(self.avro_schema)
        return self._rev_code

    def __repr__(self) -> str:
        return f"TopicInfo({self.kafka_name})"


def default_xml_dir() -> Path:
    """The definitions directory used when none is given.

    ``$SAL_KAFKA_XML_DIR`` if set; else, when ts_xml is installed as the
    ``lsst.ts.xml`` package, its ``data/sal_interfaces``; else the bundled
    ``xml_schemas/``.
    """
    env = os.environ.get("SAL_KAFKA_XML_DIR")
    if env:
        return Path(env)
    ts_xml = _ts_xml_package_dir()
    if ts_xml is not None:
        return ts_xml
    return bundled_xml_dir()


def bundled_xml_dir() -> Path:
    """sal-kafka's own ``xml_schemas/`` (KTest, KMirror, HostMetrics), whatever else is set."""
    package = Path(__file__).resolve().parent.parent  # sal_kafka/: the wheel bundles xml_schemas/ in it
    for candidate in (package / "xml_schemas", package.parent / "xml_schemas"):
        if (candidate / "SALSubsystems.xml").is_file():
            return candidate
    return package.parent / "xml_schemas"


def _ts_xml_package_dir() -> Path | None:
    """``lsst/ts/xml/data/sal_interfaces`` of an installed ts_xml, found without importing it."""
    try:
        spec = importlib.util.find_spec("lsst.ts.xml")
    except (ImportError, ValueError):  # no lsst namespace at all
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / "sal_interfaces"
        if (candidate / "SALSubsystems.xml").is_file():
            return candidate
    return None


@attrs.define(eq=False)
class ComponentInfo:
    """One SAL component and all its topics.

    Attributes
    ----------
    name : str
        SAL component name.
    topic_subname : str
        Sub-namespace of Kafka topic names.
    description : str
        From SALSubsystems.xml.
    index_enumeration : str
        ``IndexEnumeration`` as written (``no``, ``any``, ``DSM1=1,DSM2=2``, ...).
    added_generics : tuple of str
        ``mandatory`` followed by the ``AddedGenerics`` entries.
    topics : dict of str to TopicInfo
        ``{attr_name: TopicInfo}`` in ts_xml order.
    enums : dict of str to EnumInfo
        File-level enumerations of the component and of SALGenerics.xml.
    xml_dir : Path
        Directory holding SALSubsystems.xml.
    """

    name: str
    topic_subname: str
    description: str
    index_enumeration: str
    added_generics: tuple[str, ...]
    topics: dict[str, TopicInfo]
    enums: dict[str, EnumInfo]
    xml_dir: Path

    @property
    def indexed(self) -> bool:
        """True unless ``IndexEnumeration`` is ``no``."""
        return self.index_enumeration.strip() != "no"

    def name_index(self, index: int | None = 0) -> str:
        """``Name:index`` for an indexed component, ``Name`` otherwise (ts_salobj's identity of a CSC)."""
        return f"{self.name}:{index or 0}" if self.indexed else self.name

    @property
    def index_values(self) -> dict[str, int]:
        """Named SAL indices of ``IndexEnumeration`` (``DSM1=1,...``); empty for any/no."""
        text = self.index_enumeration.strip()
        if text in ("no", "any"):
            return {}
        values: dict[str, int] = {}
        for i, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
            name, _, value = entry.partition("=")
            values[name.strip()] = int(value) if value.strip() else i + 1
        return values

    @classmethod
    def load(
        cls, name: str, xml_dir: str | os.PathLike[str] | None = None, topic_subname: str = "sal"
    ) -> ComponentInfo:
        """Load one component from a ts_xml-format directory.

        Parameters
        ----------
        name : str
            Component name as listed in ``SALSubsystems.xml``.
        xml_dir : path-like, optional
            Directory holding ``SALSubsystems.xml``; defaults to `default_xml_dir`.
        topic_subname : str
            Sub-namespace of Kafka topic names.

        Raises
        ------
        XmlError
            If a definition file is malformed; `UnknownComponentError` if
            ``name`` is not listed.
        """
        loaded: ComponentInfo = hooks.require("load_component")(name, xml_dir, topic_subname)
        return loaded

    @staticmethod
    def list_components(xml_dir: str | os.PathLike[str] | None = None) -> list[str]:
        """Names of the components listed in ``SALSubsystems.xml``, in file order."""
        names: list[str] = hooks.require("list_components")(xml_dir)
        return names

    @classmethod
    def load_all(
        cls, xml_dir: str | os.PathLike[str] | None = None, topic_subname: str = "sal"
    ) -> dict[str, ComponentInfo]:
        """Load every component of a directory: ``{name: ComponentInfo}``."""
        return {n: cls.load(n, xml_dir, topic_subname) for n in cls.list_components(xml_dir)}

    def __iter__(self) -> Iterator[TopicInfo]:
        return iter(self.topics.values())

    def __getitem__(self, attr_name: str) -> TopicInfo:
        return self.topics[attr_name]

    def topic(self, name: str) -> TopicInfo:
        """Find a topic by attr name (``tel_x``), SAL name (``logevent_x``) or bare name.

        Raises
        ------
        UnknownTopicError
            (a `KeyError` too) naming the known topics, or both full names
            when a bare name is both an event and a telemetry topic.
        """
        if name in self.topics:
            return self.topics[name]
        found = [info for info in self.topics.values() if name in (info.sal_name, info.attr_name.split("_", 1)[1])]
        if len(found) == 1:
            return found[0]
        if found:
            names = " and ".join(info.attr_name for info in found)
            raise UnknownTopicError(f"{self.name}: topic name {name!r} is ambiguous: it names {names}; give one")
        raise UnknownTopicError(f"{self.name} has no topic {name!r}; {self._closest(name)}")

    def _closest(self, name: str) -> str:
        """The topics a mistyped name most likely meant, and how many there are (not all of them)."""
        import difflib

        names = {t.attr_name: t for t in self.topics.values()}
        # a bare name is compared with the names that have it bare (tel_x -> x), the others whole
        bare = {n.split("_", 1)[1]: n for n in names}
        candidates = difflib.get_close_matches(name, list(names) + list(bare), n=3, cutoff=0.6)
        meant = list(dict.fromkeys(bare.get(c, c) for c in candidates))
        hint = f"did you mean {' or '.join(meant)}? " if meant else ""
        kinds = collections.Counter(t.kind for t in self.topics.values())
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return f"{hint}it has {len(self.topics)} topics ({counts})"

    def __repr__(self) -> str:
        return f"ComponentInfo({self.name}, {len(self.topics)} topics)"


class _Hooks:
    """What the model delegates to the layers above it, installed by them.

    ``load_component(name, xml_dir, subname)``, ``list_components(xml_dir)``
    (by the loaders), ``topic_schema(topic)`` and ``rev_code(schema)`` (by
    the Avro schema builder). ``import sal_kafka`` installs all of them.
    """

    def __init__(self) -> None:
        self._installed: dict[str, Callable[..., Any]] = {}

    def install(self, **functions: Callable[..., Any]) -> None:
        self._installed.update(functions)

    def require(self, name: str) -> Callable[..., Any]:
        try:
            return self._installed[name]
        except KeyError:
            raise RuntimeError(f"sal_kafka model hook {name!r} is not installed: import sal_kafka first") from None


#: The model's hooks (see `_Hooks`).
hooks: Final = _Hooks()
