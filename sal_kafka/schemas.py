"""The schema side: loading definitions, the SAL type table, Avro schemas, the ``.avsc`` step."""

from ._avro import AVRO_TYPES, dumps_schema, field_schema, rev_code, topic_schema
from ._class_source import class_source, module_source
from ._classes import data_class as class_of_style
from ._kafka._session import ensure_topics
from ._loader import list_components, load_component, load_components
from ._model import ACKCMD_FIELDS, PRIVATE_FIELDS, default_xml_dir
from ._public import set_public_module
from ._saltypes import INT_RANGES, SAL_TYPE_TABLE, SAL_TYPES, SalType, sal_type
from ._schema_files import SchemaSummary, avro_schemas, check_schemas, render_schemas, write_schemas
from ._validation import explain
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
    "class_source",
    "module_source",
    "class_of_style",
    "explain",
    "ensure_topics",
    "clear_cache",
]

set_public_module(__name__, globals(), __all__)
