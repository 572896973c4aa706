"""sal-kafka: SAL topics over Kafka.

ts_xml definitions -> model -> Avro schemas -> data classes and codecs -> Kafka.
The public API is re-exported here; the modules behind it are private.
"""

from ._avro import AVRO_TYPES, rev_code, topic_schema
from ._classes import attrs_class, data_class, dataclass_class, enum_class, msgspec_class
from ._codec import Codec, frame, schema_id_of, unframe
from ._errors import (
    CodecError,
    IncompatibleSchemaError,
    KafkaIOError,
    RegistryError,
    SalKafkaError,
    UnknownComponentError,
    UnknownSchemaError,
    ValidationError,
    WireFormatError,
    XmlError,
)
from ._generate import SchemaSummary, check_schemas, load_components, write_schemas
from ._kafka import (
    MAX_SEQ_NUM,
    POSTPROCESS,
    TAI_MINUS_UTC,
    AsyncReader,
    AsyncWriter,
    KafkaConfig,
    LatencyHistogram,
    Reader,
    ReaderStats,
    Received,
    Writer,
    WriterStats,
    ensure_topics,
    message_key,
    sample_record,
    tai_now,
    utc_now,
)
from ._model import (
    ACKCMD_FIELDS,
    PRIVATE_FIELDS,
    SAL_TYPES,
    ComponentInfo,
    EnumInfo,
    FieldInfo,
    TopicInfo,
    default_xml_dir,
)
from ._registry import COMPATIBILITY_LEVELS, RegistrationResult, RegistryConfig, SchemaRegistry
from ._validation import MODES as VALIDATION_MODES
from ._validation import explain

__version__ = "0.1.0"

__all__ = [
    "MAX_SEQ_NUM",
    "POSTPROCESS",
    "TAI_MINUS_UTC",
    "AsyncReader",
    "AsyncWriter",
    "KafkaConfig",
    "LatencyHistogram",
    "Reader",
    "ReaderStats",
    "Received",
    "Writer",
    "WriterStats",
    "ensure_topics",
    "message_key",
    "sample_record",
    "tai_now",
    "utc_now",
    "COMPATIBILITY_LEVELS",
    "RegistrationResult",
    "RegistryConfig",
    "SchemaRegistry",
    "VALIDATION_MODES",
    "Codec",
    "attrs_class",
    "data_class",
    "dataclass_class",
    "enum_class",
    "explain",
    "frame",
    "msgspec_class",
    "schema_id_of",
    "unframe",
    "ACKCMD_FIELDS",
    "AVRO_TYPES",
    "PRIVATE_FIELDS",
    "SAL_TYPES",
    "CodecError",
    "ComponentInfo",
    "EnumInfo",
    "FieldInfo",
    "IncompatibleSchemaError",
    "KafkaIOError",
    "RegistryError",
    "SalKafkaError",
    "SchemaSummary",
    "TopicInfo",
    "UnknownComponentError",
    "UnknownSchemaError",
    "ValidationError",
    "WireFormatError",
    "XmlError",
    "check_schemas",
    "default_xml_dir",
    "load_components",
    "rev_code",
    "topic_schema",
    "write_schemas",
]
