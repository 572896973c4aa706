"""Data classes of topics, pure: msgspec Structs, attrs classes, stdlib dataclasses and
`enum.IntEnum`s, built at run time (cached) or written out as source (``sal-kafka codegen``)."""

from .._public import set_public_module
from ._build import attrs_class, data_class, dataclass_class, enum_class, msgspec_class
from ._source import class_source, enum_source, module_source

__all__ = [
    "msgspec_class",
    "attrs_class",
    "dataclass_class",
    "enum_class",
    "data_class",
    "class_source",
    "enum_source",
    "module_source",
]

set_public_module(__name__, globals(), __all__)
