"""sal-kafka: SAL topics over Kafka.

ts_xml definitions -> model -> Avro schemas -> data classes and codecs -> Kafka.

The core names are here (docs/index.md lists them); each concern has a
namespace of its own, its package. The pure core, which reads and writes no
Kafka: `sal_kafka.schemas` (ts_xml and .avsc -> model -> Avro, the SAL type
table, the .avsc step), `sal_kafka.classes` (data classes and their source),
`sal_kafka.codec` (the codec, validation, framing, keys). The I/O, each
importing only those below it: `sal_kafka.observe` (metrics, dashboards),
`sal_kafka.registry` (client; ``registry.server``), `sal_kafka.kafka`
(sessions, writers, readers; ``kafka.transports``), `sal_kafka.components`
(the ts_salobj face), `sal_kafka.sinks`, `sal_kafka.apps`, `sal_kafka.testing`
(the embedded Apache Kafka, registry and PostgreSQL). Beside them:
`sal_kafka.errors`, `sal_kafka.options`, `sal_kafka.wire`. Every module
whose name starts with ``_`` is private.
"""

from ._public import moved_names, set_public_module
from .classes._build import attrs_class, dataclass_class, enum_class, msgspec_class
from .codec._codec import Codec
from .components import (
    BaseCsc,
    ConfigurableCsc,
    Controller,
    ExpectedError,
    Remote,
    SalRetCode,
    State,
)
from .errors import (
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
    UnknownFieldError,
    UnknownSchemaError,
    UnknownTopicError,
    ValidationError,
    WireFormatError,
    XmlError,
)
from .kafka import (
    AsyncReader,
    AsyncWriter,
    KafkaConfig,
    Reader,
    Received,
    Session,
    Writer,
)
from .registry import SchemaRegistry
from .schemas import (
    _avro,  # noqa: F401 - they install the model's hooks (ComponentInfo.load, avro_schema)
    _loader,  # noqa: F401 - they install the model's hooks (ComponentInfo.load, avro_schema)
)
from .schemas._model import ComponentInfo, EnumInfo, FieldInfo, TopicInfo

__version__ = "0.1.0"

#: ts_salobj's name for a session.
Domain = Session

__all__ = [
    # model
    "ComponentInfo",
    "TopicInfo",
    "FieldInfo",
    "EnumInfo",
    # classes and codec
    "msgspec_class",
    "attrs_class",
    "dataclass_class",
    "enum_class",
    "Codec",
    # registry
    "SchemaRegistry",
    # Kafka
    "Session",
    "Domain",
    "KafkaConfig",
    "Writer",
    "AsyncWriter",
    "Reader",
    "AsyncReader",
    "Received",
    # components
    "Controller",
    "Remote",
    "BaseCsc",
    "ConfigurableCsc",
    "SalRetCode",
    "State",
    "ExpectedError",
    # options
    # errors
    "SalKafkaError",
    "ConfigError",
    "XmlError",
    "UnknownComponentError",
    "UnknownTopicError",
    "UnknownFieldError",
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
        # to the namespaces of their packages, so that the core stays small (test_house.py)
        "FieldMap": "sal_kafka.schemas",
        "RegistryConfig": "sal_kafka.registry",
        "RegistrationResult": "sal_kafka.registry",
        "WriterStats": "sal_kafka.kafka",
        "ReaderStats": "sal_kafka.kafka",
        "LatencyHistogram": "sal_kafka.observe",
        "ReadTopic": "sal_kafka.components",
        "WriteTopic": "sal_kafka.components",
        "RemoteCommand": "sal_kafka.components",
        "ControllerCommand": "sal_kafka.components",
        "SetWriteResult": "sal_kafka.components",
        "Validation": "sal_kafka.options",
        "Postprocess": "sal_kafka.options",
        "Arrays": "sal_kafka.options",
        "Engine": "sal_kafka.options",
        "Acks": "sal_kafka.options",
        "Compatibility": "sal_kafka.options",
        "MAX_SEQ_NUM": "sal_kafka.wire",
        "TAI_MINUS_UTC": "sal_kafka.wire",
        "message_key": "sal_kafka.wire",
        "tai_now": "sal_kafka.wire",
        "utc_now": "sal_kafka.wire",
        "frame": "sal_kafka.wire",
        "unframe": "sal_kafka.wire",
        "schema_id_of": "sal_kafka.wire",
        "POSTPROCESS": "sal_kafka.options",
        "VALIDATION_MODES": "sal_kafka.options",
        "COMPATIBILITY_LEVELS": "sal_kafka.options",
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
