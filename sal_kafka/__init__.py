"""sal-kafka: SAL topics over Kafka.

ts_xml definitions -> model -> Avro schemas -> data classes and codecs -> Kafka.
The public API is re-exported here; the modules behind it are private.
"""

from ._avro import AVRO_TYPES, rev_code, topic_schema
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

__version__ = "0.1.0"

__all__ = [
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
