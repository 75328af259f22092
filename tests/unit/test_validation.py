"""Schema errors in JSON terms: every keyword the gateway's schemas use has a message of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

from gateway.api import schemas
from gateway.validation import _MESSAGES, Schema

#: Keywords that fail only through the subschemas they apply, whose own keywords give the
#: message; and words that describe or name rather than check.
NOT_CHECKS = frozenset(
    {"properties", "patternProperties", "items", "prefixItems", "propertyNames", "$ref"}
    | {"allOf", "if", "then", "else", "dependentSchemas", "$defs", "$schema", "$id", "title"}
    | {"description", "examples", "default", "writeOnly", "readOnly", "format", "$comment"}
)


def keywords(schema: Any) -> Iterator[str]:
    """Every keyword of ``schema`` and its subschemas (not the names of its properties)."""
    if isinstance(schema, list):
        for item in schema:
            yield from keywords(item)
    if not isinstance(schema, dict):
        return
    for keyword, value in schema.items():
        yield keyword
        if keyword in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            for subschema in value.values():
                yield from keywords(subschema)
        elif keyword not in (
            "enum",
            "const",
            "required",
            "dependentRequired",
            "examples",
            "default",
        ):
            yield from keywords(value)


def the_gateways_schemas() -> Iterator[Any]:
    yield from (value.schema for value in vars(schemas).values() if isinstance(value, Schema))
    for package in ("gateway.mapping", "gateway.connectors"):
        yield json.loads(files(package).joinpath("schema.json").read_text("utf-8"))


def test_every_keyword_the_schemas_check_has_a_message() -> None:
    used = {keyword for schema in the_gateways_schemas() for keyword in keywords(schema)}

    assert {"type", "required", "additionalProperties", "oneOf"} <= used  # the walk finds them
    assert used - NOT_CHECKS - _MESSAGES.keys() == set()
