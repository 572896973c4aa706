"""The library's options as ``Literal`` types, each with the tuple of its values.

One place for every closed set of choices, as msgspec does, so that a type
checker catches a typo in an option and the runtime checks, the CLI's
choices and the docs all read the same tuple.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "Validation",
    "VALIDATION_MODES",
    "Postprocess",
    "POSTPROCESS",
    "Arrays",
    "ARRAYS",
    "Engine",
    "ENGINES",
    "Style",
    "STYLES",
    "Acks",
    "ACKS",
    "RegistrationStatus",
    "REGISTRATION_STATUSES",
    "Compatibility",
    "COMPATIBILITY_LEVELS",
    "TopicKind",
    "TOPIC_KINDS",
]

#: Validation mode of an encode or a write (see `sal_kafka.Codec.encode`).
Validation = Literal[
    "none",
    "custom",
    "dataclass",
    "dataclass_and_decode",
    "msgspec",
    "msgspec_and_decode",
    "attrs",
    "attrs_and_decode",
    "strict",
]
VALIDATION_MODES: Final[tuple[Validation, ...]] = get_args(Validation)

#: What a reader gives each message's data as.
Postprocess = Literal["none", "simple_namespace", "dataclass", "attrs", "msgspec"]
POSTPROCESS: Final[tuple[Postprocess, ...]] = get_args(Postprocess)

#: What decoding gives for array fields.
Arrays = Literal["list", "numpy"]
ARRAYS: Final[tuple[Arrays, ...]] = get_args(Arrays)

#: Codec implementation: ``compiled`` (the native core where it is built, the
#: generated Python otherwise), ``python`` (the generated Python alone), ``fastavro``.
Engine = Literal["compiled", "python", "fastavro"]
ENGINES: Final[tuple[Engine, ...]] = get_args(Engine)

#: Style of generated data classes.
Style = Literal["msgspec", "attrs"]
STYLES: Final[tuple[Style, ...]] = get_args(Style)

#: Producer acknowledgements, as librdkafka names them.
Acks = Literal["0", "1", "all"]
ACKS: Final[tuple[Acks, ...]] = get_args(Acks)

#: What registering one subject did.
RegistrationStatus = Literal["new", "updated", "unchanged", "incompatible", "error", "skipped"]
REGISTRATION_STATUSES: Final[tuple[RegistrationStatus, ...]] = get_args(RegistrationStatus)

#: Schema compatibility levels of a Confluent registry.
Compatibility = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]
COMPATIBILITY_LEVELS: Final[tuple[Compatibility, ...]] = get_args(Compatibility)

#: Kind of a SAL topic.
TopicKind = Literal["command", "event", "telemetry", "ackcmd"]
TOPIC_KINDS: Final[tuple[TopicKind, ...]] = get_args(TopicKind)
