"""Validate request bodies and documents against JSON Schemas, reporting every problem at once."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
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


def strict_json(text: str | bytes) -> Any:
    """JSON an admin wrote, refusing what ``json.loads`` lets through silently: a key given
    twice in one object (only the last would count), NaN and infinite numbers, and a lone
    surrogate escape. ValueError (JSONDecodeError, with its position, for bad syntax) says
    what is wrong."""
    value = json.loads(
        text,
        object_pairs_hook=_object_of_unique_keys,
        parse_constant=refuse_constant,
        parse_float=finite_float,
    )
    _refuse_lone_surrogates(value)
    return value


def _refuse_lone_surrogates(value: Any) -> None:
    """``"\\ud800"`` parses to half of a UTF-16 pair, which no UTF-8 text can hold: neither
    database could store it."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        lone = exc.object[exc.start : exc.end]
        raise ValueError(f"{lone!r} is half of a UTF-16 surrogate pair, not a character") from None


def _object_of_unique_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise ValueError(f"the key {json.dumps(twice)} appears twice in one object")
    return found


def refuse_constant(name: str) -> float:
    """A ``parse_constant`` hook: NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """A ``parse_float`` hook: a number too large for a float is refused, not infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def details_of(errors: Iterable[ValidationError]) -> list[Detail]:
    return [
        Detail(json_path(e), _message(e))
        for e in sorted(errors, key=lambda e: list(e.absolute_path).__repr__())
    ]


#: The longest offending value a validation message repeats; longer ones are cut.
SHOWN_AT_MOST = 60


def _message(error: ValidationError) -> str:
    """jsonschema's message, which starts with the offending value: without it when its
    schema says ``writeOnly``, and cut short when long.

    A secret sent too long or of the wrong type would come back in the answer, and in whatever
    logs the client or a proxy keeps; a name of two megabytes would come back whole.
    """
    secret = isinstance(error.schema, Mapping) and bool(error.schema.get("writeOnly"))
    shown = repr(error.instance)
    if not secret and len(shown) <= SHOWN_AT_MOST:
        return error.message
    if not error.message.startswith(shown):
        return f"the value fails the {error.validator!r} check" if secret else error.message
    value = "the value" if secret else f"{shown[:SHOWN_AT_MOST]}… ({len(shown)} characters)"
    return value + error.message.removeprefix(shown)


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
