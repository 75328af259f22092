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
    """The standard JMESPath functions plus the ones integrations need.

    Each added function's docstring is its user documentation: docs/mappings.md is written from
    it (``python -m gateway.reference``), and its examples are checked by the tests.
    """

    @signature({"types": []})
    def _func_sf_date(self, value: Any) -> str | None:
        """Epoch milliseconds or an ISO-8601 date or date-time to a Salesforce date, `YYYY-MM-DD`,
        in UTC.

        sf_date(`1714557600000`) => "2024-05-01"
        sf_date('2024-05-01') => "2024-05-01"
        sf_date('2024-05-01T23:30:00-02:00') => "2024-05-02"
        sf_date('01/05/2024') => error: sf_date(): "01/05/2024" is not an ISO-8601 date or time

        An empty string is not a date either; where a provider sends `""` for "no date", write
        `sf_date(default(payload.DeliveryDate, null))`.
        """
        if value is None:
            return None
        return _instant("sf_date", value).date().isoformat()

    @signature({"types": []})
    def _func_sf_datetime(self, value: Any) -> str | None:
        """Epoch milliseconds or an ISO-8601 date-time to a Salesforce date-time,
        `YYYY-MM-DDTHH:MM:SS.sssZ`, in UTC.

        sf_datetime(`1714557600123`) => "2024-05-01T10:00:00.123Z"
        sf_datetime('2024-05-01T12:00:00+02:00') => "2024-05-01T10:00:00.000Z"
        sf_datetime('2024-05-01 10:00') => "2024-05-01T10:00:00.000Z"
        sf_datetime('5 May') => error: sf_datetime(): "5 May" is not an ISO-8601 date or time
        """
        if value is None:
            return None
        return _instant("sf_datetime", value).isoformat(timespec="milliseconds")[:-6] + "Z"

    @signature({"types": ["string", "null"]})
    def _func_upper(self, text: str | None) -> str | None:
        """The text in upper case.

        upper('se') => "SE"
        """
        return None if text is None else text.upper()

    @signature({"types": ["string", "null"]})
    def _func_lower(self, text: str | None) -> str | None:
        """The text in lower case.

        lower('Ada@Example.COM') => "ada@example.com"
        """
        return None if text is None else text.lower()

    @signature({"types": ["string", "null"]})
    def _func_trim(self, text: str | None) -> str | None:
        """The text without leading and trailing white space.

        trim('  Ada Lovelace ') => "Ada Lovelace"
        """
        return None if text is None else text.strip()

    @signature({"types": []}, {"types": [], "variadic": True})
    def _func_concat(self, *parts: Any) -> str:
        """Two or more strings and numbers joined into one text; nulls are left out. A whole number
        is written without `.0`.

        concat('RP-', `101`, null, '/', `2.0`) => "RP-101/2"
        concat(`null`, `null`) => ""
        concat('A', `true`) => error: concat(): true is not a string, number or null
        """
        for part in parts:
            if part is not None and not isinstance(part, str) and not is_number(part):
                raise _fail("concat", part, "is not a string, number or null")
        texts = [as_text(part) for part in parts if part is not None]
        _check_length("concat", sum(map(len, texts)))
        return "".join(texts)

    @signature({"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, text: str | None, old: str, new: str) -> str | None:
        """The text with every `old` replaced by `new`.

        replace('12-34-56', '-', '') => "123456"
        replace('abc', '', 'x') => error: replace(): the text to replace cannot be empty
        """
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
        """`fallback` when `value` is null or an empty string, otherwise `value`.

        default('', 'EUR') => "EUR"
        default('SEK', 'EUR') => "SEK"
        default('', null) => null
        """
        return fallback if value is None or value == "" else value

    @signature({"types": []}, {"types": [], "variadic": True})
    def _func_coalesce(self, *values: Any) -> Any:
        """The first argument that is not null (the standard `not_null`, under the name SQL uses).

        coalesce(null, 'DHL', 'UPS') => "DHL"
        coalesce('', 'DHL') => ""
        """
        return next((value for value in values if value is not None), None)

    @signature({"types": []})
    def _func_number(self, value: Any) -> int | float | None:
        """A number, or text that is exactly a number (`12.5`, `-3`, `1e3`), as a number. Unlike the
        standard `to_number`, which answers null, anything else is an error: thousands
        separators, decimal commas, spaces, an empty string.

        number('12.5') => 12.5
        number('-3') => -3
        number('1e3') => 1000.0
        number('1,234.50') => error: number(): "1,234.50" is not a number
        """
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
        """The text cut at every separator, as a list.

        split('A;B;C', ';') => ["A", "B", "C"]
        split('A;B;C', '') => error: split(): the separator cannot be empty
        """
        if separator == "":
            raise FunctionError("split(): the separator cannot be empty")
        return None if text is None else text.split(separator)

    @signature({"types": ["string", "null"]}, {"types": ["number"], "variadic": True})
    def _func_substring(self, text: str | None, start: Any, *length: Any) -> str | None:
        """Part of the text from `start` (counting from 0; a negative start counts from the end), at
        most `length` characters long, or up to the end without `length`.

        substring('ABCDEF', `1`, `3`) => "BCD"
        substring('ABCDEF', `-2`) => "EF"
        substring('ABC', `5`) => ""
        """
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
