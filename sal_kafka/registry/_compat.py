"""Avro schema compatibility, by the ``avro`` package's checker.

The checker implements Avro schema resolution (reader/writer rules); this
module only maps Confluent's levels onto reader/writer pairs and words the
result. BACKWARD: the new schema reads data written with the old one;
FORWARD: the old one reads the new one's data; FULL: both; the
``_TRANSITIVE`` forms check every live version, the others the latest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import avro.compatibility
import avro.schema

from ..options import COMPATIBILITY_LEVELS

__all__ = ["LEVELS", "canonical", "parse_avro", "incompatibilities"]

LEVELS: Final = COMPATIBILITY_LEVELS

_checker = avro.compatibility.ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]


def canonical(schema: Any) -> str:
    """The text under which equal schemas are one: compact JSON, keys sorted.

    Avro's Parsing Canonical Form is not used on purpose: it drops ``doc``,
    defaults and custom properties (``description``, ``units``), and a
    change of those must give a new version, as in Confluent's registry.
    """
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def parse_avro(schema: Any) -> avro.schema.Schema:
    """Parse an Avro schema given as JSON text or a decoded JSON value.

    Raises
    ------
    avro.errors.SchemaParseException, ValueError
        If it is not a valid Avro schema.
    """
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return avro.schema.parse(text)


def _pair(reader: avro.schema.Schema, writer: avro.schema.Schema, label: str) -> list[str]:
    result = _checker.get_compatibility(reader, writer)
    if result.compatibility is avro.compatibility.SchemaCompatibilityType.compatible:
        return []
    problems = []
    kinds = [k.value for k in result.incompatibilities]
    for kind, location, message in zip(kinds, sorted(result.locations), sorted(result.messages), strict=False):
        problems.append(f"{label}: {kind} at {location} ({message})")
    return problems or [f"{label}: incompatible"]


def incompatibilities(
    new: avro.schema.Schema, previous: Sequence[tuple[int, avro.schema.Schema]], level: str
) -> list[str]:
    """Why ``new`` breaks ``level`` against ``previous`` (oldest first); empty if it does not.

    ``previous`` holds ``(version, schema)`` pairs; non-transitive levels look
    at the last one only.
    """
    if level == "NONE" or not previous:
        return []
    against = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    base = level.removesuffix("_TRANSITIVE")
    problems: list[str] = []
    for version, old in against:
        if base in ("BACKWARD", "FULL"):
            problems += _pair(new, old, f"version {version}: the new schema cannot read its data")
        if base in ("FORWARD", "FULL"):
            problems += _pair(old, new, f"version {version} cannot read the new schema's data")
    return problems
