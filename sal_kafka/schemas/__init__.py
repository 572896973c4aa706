"""The schema side, pure: ts_xml and ``.avsc`` definitions -> model -> Avro schemas; the SAL
type table; the ``.avsc`` files step. Nothing here reads or writes Kafka."""

from .._public import moved_names, set_public_module
from ._avro import AVRO_TYPES, dumps_schema, field_schema, rev_code, topic_schema
from ._files import SchemaSummary, avro_schemas, check_schemas, render_schemas, write_schemas
from ._loader import list_components, load_component, load_components
from ._model import ACKCMD_FIELDS, PRIVATE_FIELDS, default_xml_dir
from ._saltypes import INT_RANGES, SAL_TYPE_TABLE, SAL_TYPES, SalType, sal_type
from ._xml import clear_cache

__all__ = [
    "load_component",
    "load_components",
    "list_components",
    "default_xml_dir",
    "SalType",
    "SAL_TYPE_TABLE",
    "SAL_TYPES",
    "INT_RANGES",
    "AVRO_TYPES",
    "sal_type",
    "PRIVATE_FIELDS",
    "ACKCMD_FIELDS",
    "topic_schema",
    "field_schema",
    "rev_code",
    "dumps_schema",
    "avro_schemas",
    "render_schemas",
    "write_schemas",
    "check_schemas",
    "SchemaSummary",
    "clear_cache",
]

set_public_module(__name__, globals(), __all__)

# what lay here before the pure core had packages of its own: still given, with a warning
__getattr__ = moved_names(
    __name__,
    {
        "class_source": "sal_kafka.classes",
        "module_source": "sal_kafka.classes",
        "class_of_style": "sal_kafka.classes:data_class",
        "explain": "sal_kafka.codec",
        "ensure_topics": "sal_kafka.kafka",
    },
)
