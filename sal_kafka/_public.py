"""Helpers of the public namespaces: report public paths, deprecate moved names."""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["set_public_module", "moved_names"]


def set_public_module(module: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Make the classes and functions among ``names`` report ``module`` as theirs
    (``repr``, docs and error messages then show the path users import)."""
    for name in names:
        obj = namespace[name]
        if isinstance(obj, type) or callable(obj) and hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
            with contextlib.suppress(AttributeError, TypeError):  # builtins, C types, typing forms
                obj.__module__ = module


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still gives names moved elsewhere, with a
    `DeprecationWarning` naming the new place (``{old name: "new.module:new name"}``)."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - a module's __getattr__
        target = moved.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, new_name = target.partition(":")
        new_name = new_name or name
        warnings.warn(
            f"{module}.{name} moved: use {where}.{new_name}; the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(where), new_name)

    return __getattr__
