"""sal-kafka: SAL topics over Kafka.

ts_xml definitions -> model -> Avro schemas -> data classes and codecs -> Kafka.

The core is here; the rest is in public namespaces: `sal_kafka.schemas`
(the schema step, the SAL type table, Avro), `sal_kafka.wire` (framing,
keys, clocks), `sal_kafka.types` (the options' ``Literal`` types) and
`sal_kafka.testing` (the embedded stack, an in-memory broker, sample
records). Every module whose name starts with ``_`` is private.
"""

from . import _avro, _loader  # noqa: F401 - they install the model's hooks (ComponentInfo.load, avro_schema)
from ._classes import attrs_class, dataclass_class, enum_class, msgspec_class
from ._codec import Codec
from ._errors import (
    AckError,
    AckTimeoutError,
    BrokerError,
    CodecError,
    ConfigError,
    IncompatibleSchemaError,
    KafkaIOError,
    RegistryError,
    SalKafkaError,
    UnknownComponentError,
    UnknownSchemaError,
    UnknownTopicError,
    ValidationError,
    WireFormatError,
    XmlError,
)
from ._kafka import (
    AsyncReader,
    AsyncWriter,
    KafkaConfig,
    LatencyHistogram,
    Reader,
    ReaderStats,
    Received,
    Session,
    Writer,
    WriterStats,
)
from ._model import ComponentInfo, EnumInfo, FieldInfo, FieldMap, TopicInfo
from ._public import moved_names, set_public_module
from ._registry import RegistrationResult, RegistryConfig, SchemaRegistry
from ._salobj import (
    BaseCsc,
    Controller,
    ControllerCommand,
    ExpectedError,
    ReadTopic,
    Remote,
    RemoteCommand,
    SalRetCode,
    SetWriteResult,
    State,
    WriteTopic,
)
from ._types import Acks, Arrays, Compatibility, Engine, Postprocess, Validation

__version__ = "0.1.0"

#: ts_salobj's name for a session.
Domain = Session

__all__ = [
    # model
    "ComponentInfo",
    "TopicInfo",
    "FieldInfo",
    "FieldMap",
    "EnumInfo",
    # classes and codec
    "msgspec_class",
    "attrs_class",
    "dataclass_class",
    "enum_class",
    "Codec",
    # registry
    "SchemaRegistry",
    "RegistryConfig",
    "RegistrationResult",
    # Kafka
    "Session",
    "Domain",
    "KafkaConfig",
    "Writer",
    "AsyncWriter",
    "WriterStats",
    "LatencyHistogram",
    "Reader",
    "AsyncReader",
    "ReaderStats",
    "Received",
    # components
    "Controller",
    "Remote",
    "BaseCsc",
    "SalRetCode",
    "State",
    "ExpectedError",
    "ReadTopic",
    "WriteTopic",
    "RemoteCommand",
    "ControllerCommand",
    "SetWriteResult",
    # options
    "Validation",
    "Postprocess",
    "Arrays",
    "Engine",
    "Acks",
    "Compatibility",
    # errors
    "SalKafkaError",
    "ConfigError",
    "XmlError",
    "UnknownComponentError",
    "UnknownTopicError",
    "ValidationError",
    "CodecError",
    "WireFormatError",
    "UnknownSchemaError",
    "RegistryError",
    "IncompatibleSchemaError",
    "KafkaIOError",
    "BrokerError",
    "AckError",
    "AckTimeoutError",
]

set_public_module(__name__, globals(), __all__)

# Names that were exported here before the public namespaces: still given, with a warning.
__getattr__ = moved_names(
    __name__,
    {
        "MAX_SEQ_NUM": "sal_kafka.wire",
        "TAI_MINUS_UTC": "sal_kafka.wire",
        "message_key": "sal_kafka.wire",
        "tai_now": "sal_kafka.wire",
        "utc_now": "sal_kafka.wire",
        "frame": "sal_kafka.wire",
        "unframe": "sal_kafka.wire",
        "schema_id_of": "sal_kafka.wire",
        "POSTPROCESS": "sal_kafka.types",
        "VALIDATION_MODES": "sal_kafka.types",
        "COMPATIBILITY_LEVELS": "sal_kafka.types",
        "ensure_topics": "sal_kafka.kafka",
        "sample_record": "sal_kafka.testing",
        "explain": "sal_kafka.codec",
        "ACKCMD_FIELDS": "sal_kafka.schemas",
        "AVRO_TYPES": "sal_kafka.schemas",
        "PRIVATE_FIELDS": "sal_kafka.schemas",
        "SAL_TYPES": "sal_kafka.schemas",
        "SchemaSummary": "sal_kafka.schemas",
        "check_schemas": "sal_kafka.schemas",
        "write_schemas": "sal_kafka.schemas",
        "load_components": "sal_kafka.schemas",
        "default_xml_dir": "sal_kafka.schemas",
        "rev_code": "sal_kafka.schemas",
        "topic_schema": "sal_kafka.schemas",
        "data_class": "sal_kafka.classes",
    },
)
