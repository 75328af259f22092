"""Validate request bodies and documents against JSON Schemas, reporting every problem at once."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from gateway.errors import Detail, ValidationFailed


def join_path(path: str, segment: str | int) -> str:
    """Extend a path such as ``upserts[1].fields`` by a key or an index."""
    if isinstance(segment, int):
        return f"{path}[{segment}]"
    return f"{path}.{segment}" if path else segment


def json_path(error: ValidationError) -> str:
    """``upserts[1].fields.Name`` from a jsonschema error's absolute path; ``$`` for the root."""
    return functools.reduce(join_path, error.absolute_path, "") or "$"


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
        Detail(json_path(e), schema_message(e))
        for e in sorted(errors, key=lambda e: list(e.absolute_path).__repr__())
    ]


#: The longest offending value a validation message repeats; longer ones are cut.
SHOWN_AT_MOST = 60
#: The most unknown keys one message names; a body of thousands would otherwise list them all.
KEYS_SHOWN_AT_MOST = 5
_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_SIZES = {
    "minLength": ("shorter than", "characters"),
    "maxLength": ("longer than", "characters"),
    "minItems": ("fewer than", "items"),
    "maxItems": ("more than", "items"),
    "minProperties": ("fewer than", "keys"),
    "maxProperties": ("more than", "keys"),
}
_BOUNDS = {
    "minimum": "is less than the minimum of",
    "maximum": "is greater than the maximum of",
    "exclusiveMinimum": "is not more than",
    "exclusiveMaximum": "is not less than",
    "multipleOf": "is not a multiple of",
}


def shown(value: Any) -> str:
    """A value as JSON for a message (``null``, ``true``, ``"text"``), cut short when long.

    A name of two megabytes would otherwise come back whole, and land in the client's logs.
    """
    if isinstance(value, str) and len(value) > SHOWN_AT_MOST:  # the length a maxLength counts
        cut = json.dumps(value[:SHOWN_AT_MOST], ensure_ascii=False)
        return f'{cut[:-1]}…" ({len(value)} characters)'
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= SHOWN_AT_MOST:
        return text
    return f"{text[:SHOWN_AT_MOST]}… ({len(text)} characters of JSON)"


def schema_details(error: ValidationError, path: str, *, by_key: bool = False) -> list[Detail]:
    """One schema error as details at ``path``, the failing value's.

    ``by_key``: keys missing, unknown or badly named are reported each at its own path rather
    than all at the object's, as mapping documents report them.
    """
    keys = _KEY_PROBLEMS.get(str(error.validator))
    if by_key and keys is not None:
        return [Detail(join_path(path, key), keys.one) for key in keys.find(error)]
    if by_key and "propertyNames" in error.relative_schema_path:
        return [Detail(join_path(path, error.instance), schema_message(error))]  # type: ignore[arg-type]
    return [Detail(path, schema_message(error))]


@dataclass(frozen=True)
class _Failure:
    """A schema error, as its message needs it."""

    error: ValidationError
    #: The failing value as messages name it: never a secret's (``writeOnly``) value, which
    #: would come back in the answer and in whatever logs the client or a proxy keeps.
    subject: str
    secret: bool
    instance: Any
    expected: Any

    @classmethod
    def of(cls, error: ValidationError) -> _Failure:
        secret = isinstance(error.schema, Mapping) and bool(error.schema.get("writeOnly"))
        subject = "the value" if secret else shown(error.instance)
        if "propertyNames" in error.relative_schema_path:
            subject = f"the key {subject}"
        return cls(error, subject, secret, error.instance, error.validator_value)


def schema_message(error: ValidationError) -> str:
    """A JSON Schema error in JSON terms, for request bodies and documents alike.

    jsonschema's own messages spell values the Python way (``None is not of type 'string'``).
    """
    return _MESSAGES.get(str(error.validator), _other_message)(_Failure.of(error))


def _type_message(f: _Failure) -> str:
    names = [_TYPE_NAMES.get(name, name) for name in _as_list(f.expected)]
    must = f"must be {_either(names, 'or')}"
    return must if f.secret else f"{must}, not {shown(f.instance)}"


def _size_message(f: _Failure) -> str:
    keyword = str(f.error.validator)
    if f.expected == 1 and keyword.startswith("min"):
        return "must not be empty"
    than, unit = _SIZES[keyword]
    verb = "is" if keyword.endswith("Length") else "has"
    return f"{f.subject} {verb} {than} {f.expected} {unit}"


def _bound_message(f: _Failure) -> str:
    return f"{f.subject} {_BOUNDS[str(f.error.validator)]} {shown(f.expected)}"


def _dependency_message(f: _Failure) -> str:
    return "; ".join(
        f"{shown(key)} is given, so {shown(needed)} is required"
        for key, needs in f.expected.items()
        if key in f.instance
        for needed in needs
        if needed not in f.instance
    )


def _forms_message(f: _Failure) -> str:
    # oneOf without context: more than one form matched, none failed
    how = "none of" if f.error.context else "more than one of"
    return f"{f.subject} matches {how} the allowed forms"


def _not_message(f: _Failure) -> str:
    """``not`` is only used here to forbid keys (``{"not": {"required": [...]}}``)."""
    keys = f.expected.get("required", []) if isinstance(f.expected, Mapping) else []
    if not keys:
        return f"{f.subject} matches a form that is not allowed"
    return f"{f.subject} must not have {_either([shown(k) for k in keys], 'or')} here"


def _other_message(f: _Failure) -> str:
    """A keyword no schema here uses: jsonschema's words, without the Python value."""
    python = repr(f.instance)
    if f.error.message.startswith(python):
        return f.subject + f.error.message.removeprefix(python)
    return f"the value fails the {f.error.validator!r} check" if f.secret else f.error.message


@dataclass(frozen=True)
class _KeyProblem:
    """Keys of an object that are wrong the same way, and what is wrong with one, or several."""

    find: Callable[[ValidationError], list[str]]
    one: str
    several: str

    def message(self, f: _Failure) -> str:
        keys = self.find(f.error)
        named = [shown(key) for key in keys[:KEYS_SHOWN_AT_MOST]]
        if len(keys) > KEYS_SHOWN_AT_MOST:
            named.append(f"{len(keys) - KEYS_SHOWN_AT_MOST} more")
        return f"{_either(named, 'and')} {self.one if len(keys) == 1 else self.several}"


def _missing_keys(error: ValidationError) -> list[str]:
    required: Any = error.validator_value
    instance: Any = error.instance
    return [key for key in required if key not in instance]


def _unknown_keys(error: ValidationError) -> list[str]:
    schema: Any = error.schema  # additionalProperties only sits in an object schema
    instance: Any = error.instance
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [
        key
        for key in instance
        if key not in schema.get("properties", {}) and not any(p.search(key) for p in patterns)
    ]


_KEY_PROBLEMS = {
    "required": _KeyProblem(_missing_keys, "is required", "are required"),
    "additionalProperties": _KeyProblem(_unknown_keys, "is not a known key", "are not known keys"),
}
#: Each validator keyword the schemas here use, and its message.
_MESSAGES: dict[str, Callable[[_Failure], str]] = {
    "type": _type_message,
    **dict.fromkeys(_SIZES, _size_message),
    **dict.fromkeys(_BOUNDS, _bound_message),
    "pattern": lambda f: f"{f.subject} does not match {f.expected}",
    "enum": lambda f: f"{f.subject} is not one of {_either([shown(v) for v in f.expected], 'or')}",
    "const": lambda f: f"{f.subject} is not {shown(f.expected)}",
    "uniqueItems": lambda f: f"{f.subject} holds the same value more than once",
    **{keyword: problem.message for keyword, problem in _KEY_PROBLEMS.items()},
    "dependentRequired": _dependency_message,
    "oneOf": _forms_message,
    "anyOf": _forms_message,
    "not": _not_message,
}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _either(words: Sequence[str], joiner: str) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {joiner} {words[-1]}"


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
