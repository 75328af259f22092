"""Validate request bodies and documents against JSON Schemas, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from gateway.errors import Detail, ValidationFailed


def json_path(error: ValidationError) -> str:
    """``upserts[1].fields.Name`` from a jsonschema error's absolute path."""
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def whole_number(text: str, maximum: int) -> int | None:
    """``text`` as a whole number up to ``maximum``, or None when it is anything else.

    ASCII digits only: ``str.isdigit`` also takes '²', which ``int`` refuses; and no longer
    than ``maximum`` (leading zeros aside), since ``int`` refuses more than 4300 digits.
    """
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def details_of(errors: Iterable[ValidationError]) -> list[Detail]:
    return [
        Detail(json_path(e), e.message)
        for e in sorted(errors, key=lambda e: list(e.absolute_path).__repr__())
    ]


class Schema:
    """A compiled JSON Schema that raises the contract's 422 listing every problem."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)

    def validate(self, instance: Any, what: str = "request body") -> Any:
        errors = list(self._validator.iter_errors(instance))
        if errors:
            raise ValidationFailed(f"the {what} is not valid", details=details_of(errors))
        return instance
