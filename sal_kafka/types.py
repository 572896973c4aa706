"""The options of the library as ``Literal`` types, and the tuples of their values."""

from ._types import *  # noqa: F403 - the options, as _types defines them
from ._types import __all__  # noqa: F401 - the same public names
