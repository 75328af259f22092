"""JMESPath functions that integration mappings need and standard JMESPath lacks.

Every function refuses a value it cannot convert with a :class:`FunctionError` that names the
function and shows the value, so a bad payload fails its event loudly instead of writing garbage
into the CRM. Null passes through as null unless a function says otherwise. Numbers given as
dates are always epoch milliseconds, never seconds: guessing the unit from the size would put a
wrong date in a record one day.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jmespath
from jmespath.functions import Functions, signature

from gateway.expressions import MAX_VALUE_SIZE, FunctionError, check_size, is_number

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER_TEXT = re.compile(r"[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)
_SHOWN_CHARS = 80


def _check_length(function: str, length: int) -> None:
    """Refuse a text before making it, when it would be longer than MAX_VALUE_SIZE."""
    if length > MAX_VALUE_SIZE:
        raise FunctionError(
            f"{function}() would make a text of {length} characters; at most {MAX_VALUE_SIZE}"
        )


def as_text(value: str | float) -> str:
    """A string or number as text, integral floats without ``.0`` (ids arrive as ``42.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def show(value: Any) -> str:
    """A value as JSON for an error message, cut short so a whole payload never lands there."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _fail(function: str, value: Any, problem: str) -> FunctionError:
    return FunctionError(f"{function}(): {show(value)} {problem}")


def _instant(function: str, value: Any) -> datetime:
    """Epoch milliseconds or ISO-8601 text as an aware UTC datetime; naive text is UTC."""
    if isinstance(value, str):
        try:
            # RFC 3339 allows a lower-case t and z; Python reads only the t.
            parsed = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
        except ValueError as exc:
            raise _fail(function, value, "is not an ISO-8601 date or time") from exc
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise _fail(function, value, "is out of range once in UTC") from exc
    if is_number(value):
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except (ValueError, OverflowError) as exc:
            raise _fail(function, value, "is out of range for epoch milliseconds") from exc
    raise _fail(function, value, "is neither epoch milliseconds nor ISO-8601 text")


def _number_of(text: str) -> int | float | None:
    """The number a text matching _NUMBER_TEXT writes; None when too large to be finite."""
    if text.lstrip("+-").isdigit():
        return int(text)
    parsed = float(text)
    return parsed if math.isfinite(parsed) else None


class MappingFunctions(Functions):
    """The standard JMESPath functions plus the ones documented in the README."""

    @signature({"types": []})
    def _func_sf_date(self, value: Any) -> str | None:
        if value is None:
            return None
        return _instant("sf_date", value).date().isoformat()

    @signature({"types": []})
    def _func_sf_datetime(self, value: Any) -> str | None:
        if value is None:
            return None
        return _instant("sf_datetime", value).isoformat(timespec="milliseconds")[:-6] + "Z"

    @signature({"types": ["string", "null"]})
    def _func_upper(self, text: str | None) -> str | None:
        return None if text is None else text.upper()

    @signature({"types": ["string", "null"]})
    def _func_lower(self, text: str | None) -> str | None:
        return None if text is None else text.lower()

    @signature({"types": ["string", "null"]})
    def _func_trim(self, text: str | None) -> str | None:
        return None if text is None else text.strip()

    @signature({"types": []}, {"types": [], "variadic": True})
    def _func_concat(self, *parts: Any) -> str:
        for part in parts:
            if part is not None and not isinstance(part, str) and not is_number(part):
                raise _fail("concat", part, "is not a string, number or null")
        texts = [as_text(part) for part in parts if part is not None]
        _check_length("concat", sum(map(len, texts)))
        return "".join(texts)

    @signature({"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, text: str | None, old: str, new: str) -> str | None:
        if old == "":
            raise FunctionError("replace(): the text to replace cannot be empty")
        if text is None:
            return None
        _check_length("replace", len(text) + text.count(old) * (len(new) - len(old)))
        return text.replace(old, new)

    @signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator: str, texts: list[str]) -> str:
        _check_length("join", sum(map(len, texts)) + len(separator) * max(len(texts) - 1, 0))
        return separator.join(texts)

    @signature({"types": []})
    def _func_to_string(self, value: Any) -> str:
        check_size(value, "to_string()")
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"), default=str)

    @signature({"types": []}, {"types": []})
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None or value == "" else value

    @signature({"types": []}, {"types": [], "variadic": True})
    def _func_coalesce(self, *values: Any) -> Any:
        return next((value for value in values if value is not None), None)

    @signature({"types": []})
    def _func_number(self, value: Any) -> int | float | None:
        if value is None or is_number(value):
            return value
        if not isinstance(value, str) or not _NUMBER_TEXT.fullmatch(value):
            raise _fail("number", value, "is not a number")
        parsed = _number_of(value)
        if parsed is None:
            raise _fail("number", value, "is too large for a number")
        return parsed

    @signature({"types": []})
    def _func_to_number(self, value: Any) -> int | float | None:
        """JMESPath's ``to_number``, but null for text that is not a number as JSON writes one:
        jmespath's takes whatever Python does, ``"nan"``, ``"inf"`` and ``"1e400"`` included,
        and JSON cannot carry what those give to a record."""
        if is_number(value):
            return value
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            return _number_of(value)
        return None

    @signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_split(self, text: str | None, separator: str) -> list[str] | None:
        if separator == "":
            raise FunctionError("split(): the separator cannot be empty")
        return None if text is None else text.split(separator)

    @signature({"types": ["string", "null"]}, {"types": ["number"], "variadic": True})
    def _func_substring(self, text: str | None, start: Any, *length: Any) -> str | None:
        if len(length) > 1:
            raise FunctionError(arity_problem("substring", 2 + len(length)))
        if type(start) is not int:
            raise _fail("substring", start, "is not a whole number for start")
        if length and (type(length[0]) is not int or length[0] < 0):
            raise _fail("substring", length[0], "is not a length (a whole number from 0)")
        if text is None:
            return None
        tail = text[start:]
        return tail[: length[0]] if length else tail


#: The one options object every compile-time check and evaluation shares.
OPTIONS = jmespath.Options(custom_functions=MappingFunctions())


#: Functions whose last argument may be left out, declared variadic for want of a JMESPath
#: way to say "optional": at most one more argument than their signature lists.
_OPTIONAL_LAST = frozenset({"substring"})


def arity_problem(function: str, given: int) -> str | None:
    """Why ``function`` cannot be called with ``given`` arguments, or None when it can.

    JMESPath only finds this out when an event is evaluated; mappings are checked when saved.
    """
    spec = MappingFunctions.FUNCTION_TABLE.get(function)
    if spec is None:
        return f"unknown function {function}()"
    expected = len(spec["signature"])
    if function in _OPTIONAL_LAST and expected <= given <= expected + 1:
        return None
    if function in _OPTIONAL_LAST:
        return f"{function}() takes {expected} or {expected + 1} arguments, got {given}"
    if spec["signature"][-1].get("variadic"):
        if given < expected:
            return f"{function}() takes at least {expected} arguments, got {given}"
    elif given != expected:
        return f"{function}() takes {expected} argument{'s' * (expected != 1)}, got {given}"
    return None
