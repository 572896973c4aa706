"""Deprecated: the options' ``Literal`` types and their value tuples are in `sal_kafka.options`."""

from . import options as _options
from ._public import moved_names

__all__ = list(_options.__all__)
__getattr__ = moved_names(__name__, dict.fromkeys(_options.__all__, "sal_kafka.options"))
